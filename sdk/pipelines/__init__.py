"""Pipelines: how models run on a frame. `single_crop` (MoveNet's one-person fast path), `topdown`
(person detector, then one crop per person), `bottomup` (everyone from one invoke); `build` picks one
from the family table."""
