"""Errors the SDK raises on bad input. Each message is one line a user can act on."""

from __future__ import annotations


class EdgeposeError(Exception):
    """Base class: the CLI prints these as one line on stderr, without a traceback."""


class ImageError(EdgeposeError):
    """An image that cannot be decoded or is unsafe to decode."""


class VideoError(EdgeposeError):
    """A video or camera that cannot be opened or read."""


class ModelError(EdgeposeError):
    """A model file that is missing, corrupt, of the wrong kind, or fails its SHA-256 check."""


class BackendError(EdgeposeError):
    """No inference runtime can run the model here (runtime missing, delegate or device missing)."""
