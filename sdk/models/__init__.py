"""Pose and person-detector models: one file per family on one interface (`models.base`), and the
family table (`models.families`) that says which class runs which family."""
