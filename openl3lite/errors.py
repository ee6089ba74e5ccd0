"""The one exception type openl3lite raises for bad arguments and bad input, and its warnings."""

import warnings


class OpenL3liteError(ValueError):
    """Bad argument or bad input given to openl3lite.

    Messages name the problem and, where there is one, the file.
    """


#: Alias so code written for OpenL3 (``except openl3.OpenL3Error``) keeps working.
OpenL3Error = OpenL3liteError


class OpenL3liteWarning(UserWarning):
    """Suspicious but usable input (all-zero audio or images, audio shorter than a window)."""


def warn(message):
    """Emit an :class:`OpenL3liteWarning` attributed to the caller of the public function.

    Parameters
    ----------
    message : str
        The warning text.
    """
    warnings.warn(message, OpenL3liteWarning, stacklevel=3)
