"""The one exception type openl3lite raises for bad arguments and bad input, its warnings, and
the checks and wording shared by every reader of input files."""

import os
import warnings


class OpenL3liteError(ValueError):
    """Bad argument or bad input given to openl3lite.

    Messages name the problem and, where there is one, the file.
    """


#: Alias so code written for OpenL3 (``except openl3.OpenL3Error``) keeps working.
OpenL3Error = OpenL3liteError


class OpenL3liteWarning(UserWarning):
    """Suspicious but usable input (all-zero audio or images, audio shorter than a window)."""


#: Alias so code written for OpenL3 (``pytest.warns(openl3.OpenL3Warning)``) keeps working.
OpenL3Warning = OpenL3liteWarning


def warn(message):
    """Emit an :class:`OpenL3liteWarning` attributed to the caller of the public function.

    Parameters
    ----------
    message : str
        The warning text.
    """
    warnings.warn(message, OpenL3liteWarning, stacklevel=3)


def check_input_file(path):
    """Refuse an input path that cannot hold data: missing, a folder, or an empty file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    str
        ``os.fspath(path)``.

    Raises
    ------
    OpenL3liteError
        ``file not found``, ``is a folder, not a file`` or ``empty file (0 bytes)``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise OpenL3liteError(f"{path}: file not found")
    if os.path.isdir(path):
        raise OpenL3liteError(f"{path}: is a folder, not a file")
    if os.path.getsize(path) == 0:
        raise OpenL3liteError(f"{path}: empty file (0 bytes)")
    return path


def short_reason(exc, limit=200):
    """A dependency's exception as a short reason: the last line of its message (at most
    ``limit`` characters), or its type's name when it has no message.

    Parameters
    ----------
    exc : BaseException
    limit : int

    Returns
    -------
    str
    """
    lines = str(exc).strip().splitlines()
    return lines[-1][:limit] if lines else type(exc).__name__
