"""OpenL3 0.4.2's ``openl3.openl3_warnings``: its warning under its own name.

``OpenL3Warning`` is :class:`openl3lite.errors.OpenL3liteWarning`, the warning for all-zero
audio or images and audio shorter than a window.
"""

from .errors import OpenL3Warning

__all__ = ["OpenL3Warning"]
