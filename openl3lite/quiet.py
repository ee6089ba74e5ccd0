"""What reaches the terminal: native libraries' noise kept off it, warnings above progress bars
(keras-free).

Two native libraries write to file descriptor 2 directly, where Python's ``sys.stderr`` and
``warnings`` cannot filter them: TensorFlow at start-up (absl log lines such as "Could not find
cuda drivers on your machine" or "oneDNN custom operations are on", written before its logging
is set up, so ``TF_CPP_MIN_LOG_LEVEL`` does not reach them) and libmpg123 inside libsndfile when
it probes an MP3 ("Note: Illegal Audio-MPEG-Header ...", "Warning: Xing stream size off ...";
openl3lite decodes MP3s with ffmpeg, which reports real problems, so these say nothing).

:func:`filtered_native_stderr` points fd 2 at a private temporary file only around such a
call, restores it afterwards (also on an exception) and writes back to ``sys.stderr`` every line
that is not one of the known noise lines, so nothing else is lost: the host process's standard
error is never closed nor left redirected. A process-wide lock keeps two threads from nesting
redirections out of order.

:func:`progress_bar` makes the library's and the CLI's tqdm bars; while one is open, Python
warnings are written through ``tqdm.write`` (:func:`warnings_above_bars`), so each is a whole
line above the bars instead of text spliced into a bar's carriage-return line.
"""

import os
import re
import sys
import tempfile
import threading
import warnings
from contextlib import contextmanager

#: TensorFlow's start-up lines: absl's "before InitializeLog" notice and absl-formatted
#: information, warning and error lines (``I0000 00:00:1796121873.822224  7386 port.cc:153]``,
#: the date and time as TensorFlow 2.20 writes them before absl is initialised).
#: Fatal (``F``) lines are kept.
TENSORFLOW_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    r"STDERR|[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\] )")
#: libmpg123's messages while libsndfile probes an MP3.
MPG123_NOISE = re.compile(r"^(Note: |Warning: |\[src/libmpg123/)")

_LOCK = threading.RLock()


@contextmanager
def filtered_native_stderr(noise):
    """Capture what is written to fd 2 inside the block; re-emit all but the ``noise`` lines.

    Parameters
    ----------
    noise : re.Pattern
        Lines it matches (``noise.match``) are dropped.

    Notes
    -----
    Where fd 2 cannot be duplicated (no standard error at all), the block runs unchanged.
    """
    with _LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, AttributeError, ValueError):
            yield
            return
        try:
            with tempfile.TemporaryFile() as capture:
                os.dup2(capture.fileno(), 2)
                try:
                    yield
                finally:
                    try:
                        sys.stderr.flush()
                    except (OSError, AttributeError, ValueError):
                        pass
                    os.dup2(saved, 2)
                    capture.seek(0)
                    _reemit(capture.read().decode("utf-8", "replace"), noise)
        finally:
            os.close(saved)


def _reemit(text, noise):
    kept = [line for line in text.splitlines(keepends=True)
            if not noise.match(line.lstrip("\r"))]
    if kept:
        sys.stderr.write("".join(kept))
        sys.stderr.flush()


def wants_tensorflow_messages(user_level):
    """Whether the user's ``TF_CPP_MIN_LOG_LEVEL`` asks to see TensorFlow's start-up messages.

    Parameters
    ----------
    user_level : str or None
        The variable as the user set it (None if unset).

    Returns
    -------
    bool
        True for levels 0 and 1 (show information or warnings); False when unset and for 2 and
        3, the levels people set to quieten TensorFlow, and for values TensorFlow does not know.
    """
    return user_level is not None and user_level.strip() in ("0", "1")


def import_backend_quietly():
    """Import Keras, and with it its backend, without TensorFlow's start-up lines.

    Everything else written to standard error meanwhile is kept, and a Python exception raised
    by the import propagates. Nothing is filtered once Keras is imported, or when the user has
    asked for TensorFlow's messages (:func:`wants_tensorflow_messages`).
    """
    import openl3lite

    if "keras" in sys.modules or wants_tensorflow_messages(openl3lite._TF_LOG_LEVEL_FROM_USER):
        return
    with filtered_native_stderr(TENSORFLOW_NOISE):
        import keras  # noqa: F401


# ----------------------------------------------------------------------------- warnings and bars

_bars_lock = threading.Lock()
_bars_open = 0
_saved_showwarning = None


def _showwarning_above_bars(message, category, filename, lineno, file=None, line=None):
    """``warnings.showwarning`` while a progress bar is open: Python's text, written by
    ``tqdm.write`` (which clears the bars, writes the line and draws them again)."""
    from tqdm import tqdm

    text = warnings.formatwarning(message, category, filename, lineno, line)
    try:
        tqdm.write(text.rstrip("\n"), file=file or sys.stderr)
    except (OSError, AttributeError, ValueError):
        pass  # no standard error to write to, as Python's own showwarning


def _default_showwarning():
    """Whether warnings are shown Python's default way (not recorded by
    ``catch_warnings(record=True)`` or ``pytest.warns``, not routed by the host, e.g. to
    logging by ``logging.captureWarnings``): only then are they routed above the bars."""
    impl = getattr(warnings, "_showwarnmsg_impl", None)
    return (warnings.showwarning is getattr(warnings, "_showwarning_orig", None)
            and getattr(impl, "__name__", "") == "_showwarnmsg_impl")


@contextmanager
def warnings_above_bars():
    """Within the block, Python warnings print above tqdm's progress bars, not through them.

    Nested and concurrent blocks share one routing, restored when the last ends. Warnings that
    are being recorded, or that the host routes itself, are left alone.
    """
    global _bars_open, _saved_showwarning
    with _bars_lock:
        if _bars_open == 0 and _default_showwarning():
            _saved_showwarning = warnings.showwarning
            warnings.showwarning = _showwarning_above_bars
        _bars_open += 1
    try:
        yield
    finally:
        with _bars_lock:
            _bars_open -= 1
            if _bars_open == 0 and _saved_showwarning is not None:
                if warnings.showwarning is _showwarning_above_bars:
                    warnings.showwarning = _saved_showwarning
                _saved_showwarning = None


_bar_class = None


def progress_bar(**kwargs):
    """A ``tqdm.auto.tqdm`` bar that, while open, shows Python warnings above the bars
    (:func:`warnings_above_bars`).

    Parameters
    ----------
    **kwargs
        Passed to ``tqdm`` (``total``, ``desc``, ``unit``, ``leave``, ``disable``, ...).

    Returns
    -------
    tqdm
        Close it (``close()``) when done, also on an exception.
    """
    global _bar_class
    if _bar_class is None:
        from tqdm.auto import tqdm

        class _Bar(tqdm):
            def __init__(self, *args, **kw):
                self._routing = None
                super().__init__(*args, **kw)
                if not self.disable:
                    self._routing = warnings_above_bars()
                    self._routing.__enter__()

            def close(self):
                try:
                    super().close()
                finally:
                    routing, self._routing = self._routing, None
                    if routing is not None:
                        routing.__exit__(None, None, None)

        _bar_class = _Bar
    return _bar_class(**kwargs)
