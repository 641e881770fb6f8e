"""Project-level exceptions.

``InputError`` is what a user sees when the input itself is unusable (missing path, unreadable or empty video,
nobody to reconstruct). It subclasses ``ValueError`` and carries a one-line message meant for the user, so the
CLI can print it without a traceback.
"""
from __future__ import annotations


class InputError(ValueError):
    """The user's input cannot be processed; the message says why in one line."""
