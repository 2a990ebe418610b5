"""The one exception type of :mod:`medfeat.io`."""

from __future__ import annotations

import os


class ImageReadError(ValueError):
    """A file could not be read as an image or dataset.

    The message always names the path and the cause, e.g. which transfer syntax has no decoder
    installed here and which package provides one.

    Parameters
    ----------
    path : str or os.PathLike
        The file or folder that failed.
    cause : str
        What went wrong, in words a user can act on.

    Examples
    --------
    >>> err = ImageReadError("scan.dcm", "no pixel data")
    >>> str(err)
    "'scan.dcm': no pixel data"
    >>> isinstance(err, ValueError)
    True
    """

    def __init__(self, path, cause):
        self.path = os.fspath(path)
        self.cause = str(cause)
        super().__init__(f"{self.path!r}: {self.cause}")

    def __reduce__(self):  # keeps the exception picklable (process pools, pytest-xdist)
        return type(self), (self.path, self.cause)


def check_file(path):
    """``path`` as a string, or :class:`ImageReadError` when it is missing or not a regular file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageReadError(path, "no such file")
    if os.path.isdir(path):
        raise ImageReadError(path, "is a folder, a file was expected")
    if not os.path.isfile(path):
        raise ImageReadError(path, "is not a regular file")
    return path


def check_folder(path):
    """``path`` as a string, or :class:`ImageReadError` when it is missing or not a folder."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageReadError(path, "no such folder")
    if not os.path.isdir(path):
        raise ImageReadError(path, "is a file, a folder was expected")
    return path
