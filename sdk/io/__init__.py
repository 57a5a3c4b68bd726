"""Outside the pipeline: video and camera frames in, overlays out, outputs written atomically."""
