"""Output file names (as OpenL3 names them) and atomic ``.npz`` writing."""

import os
import tempfile

import numpy as np


def output_path(input_path, output_dir=None, suffix=None, modality=None):
    """Where the embedding of ``input_path`` is written.

    Parameters
    ----------
    input_path : str or os.PathLike
        The input file.
    output_dir : str, optional
        Output folder; the input's folder if None.
    suffix : str, optional
        Added after the base name with an underscore (``x.wav`` -> ``x_<suffix>.npz``).
    modality : str, optional
        ``audio`` or ``image`` for videos (``v.mp4`` -> ``v_audio.npz``, ``v_image.npz``).

    Returns
    -------
    str
    """
    input_path = os.fspath(input_path)
    base = os.path.splitext(os.path.basename(input_path))[0]
    parts = [base] + [p for p in (modality, suffix) if p]
    folder = output_dir if output_dir else os.path.dirname(input_path)
    return os.path.join(folder, "_".join(parts) + ".npz")


def write_npz_atomic(path, **arrays):
    """Write arrays to ``path`` as ``.npz`` so that no truncated file is ever visible.

    The data goes to a temporary file in the same folder, which is then renamed over
    ``path``; on any failure the temporary file is removed.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, ending in ``.npz``.
    **arrays : np.ndarray
        Arrays to store under their keyword names.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
