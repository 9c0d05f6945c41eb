"""Errors of the library that a program names in one line when they reach it, declared without
torch so that the command line can catch them before importing it."""


class UnreadableImageError(ValueError):
    """An image (a file, a zip member, a database record) that cannot be read faithfully: not
    decodable, or of a depth whose value range is unknown. A ValueError; a class of its own so
    that a program can name it in one line when a batch meets it in the middle of training
    (LSUN databases are read as they go, never scanned first)."""
