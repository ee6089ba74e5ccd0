"""OpenL3 0.4.2's ``openl3.openl3_exceptions``: its exception under its own name.

``OpenL3Error`` is :class:`openl3lite.errors.OpenL3liteError` (a ``ValueError``), so
``except openl3lite.openl3_exceptions.OpenL3Error`` catches everything openl3lite raises for bad
arguments and input.
"""

from .errors import OpenL3Error

__all__ = ["OpenL3Error"]
