"""Output file names (as OpenL3 names them), what each output records about how it was made,
and atomic ``.npz`` writing."""

import os
import socket
import tempfile

import numpy as np

#: Start of the name of every temporary file an output is written to before it is renamed into
#: place: ``.tmp-<host>-<pid>-<random>.npz``. The host and process id let a later run tell the
#: leftovers of a killed process from files another live process is still writing.
TEMP_PREFIX = ".tmp-"

# Folders this process has already cleared of dead processes' temporary files.
_cleared_folders = set()

#: The keys every ``.npz`` output holds besides ``embedding`` and ``timestamps``.
PROVENANCE_KEYS = ("model", "weights_sha256", "openl3lite_version", "embedding_size",
                   "input_repr", "content_type", "frontend", "hop_size", "center", "resampler",
                   "mode")


def provenance(model, embedding, **params):
    """What made an embedding, as arrays an ``.npz`` holds without pickling.

    Parameters
    ----------
    model : keras.Model
        The embedding model (its metadata, where it has any, gives the name, weights' sha256,
        input representation, content type and frontend).
    embedding : np.ndarray, shape (T, D)
    **params
        Audio parameters that shape the embedding: ``hop_size`` (s), ``center``,
        ``resampler``, ``mode``.

    Returns
    -------
    dict of str -> np.ndarray
        0-d arrays: strings as numpy unicode, numbers as float64 / int64 / bool. Keys of
        :data:`PROVENANCE_KEYS` that do not apply (audio parameters of an image output) are
        left out.
    """
    from . import __version__
    from .models import model_info

    record = dict(model_info(model), openl3lite_version=__version__,
                  embedding_size=int(np.shape(embedding)[-1]), **params)
    return {key: np.asarray(record[key]) for key in PROVENANCE_KEYS if key in record}


def get_output_path(filepath, suffix, output_dir=None):
    """OpenL3 0.4.2's output naming: ``<basename>_<suffix>``, or ``<basename><suffix>`` when
    ``suffix`` starts with a dot, in ``output_dir`` (the input's folder if None).

    Parameters
    ----------
    filepath : str or os.PathLike
    suffix : str
        e.g. ``"audio.npz"`` -> ``x_audio.npz``; ``".npz"`` -> ``x.npz``.
    output_dir : str, optional

    Returns
    -------
    str
    """
    filepath = os.fspath(filepath)
    base = os.path.splitext(os.path.basename(filepath))[0]
    folder = output_dir if output_dir else os.path.dirname(filepath)
    name = base + suffix if suffix.startswith(".") else f"{base}_{suffix}"
    return os.path.join(folder, name)


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
    tag = "_".join(p for p in (modality, suffix) if p)
    return get_output_path(input_path, f"{tag}.npz" if tag else ".npz", output_dir)


def write_npz_atomic(path, **arrays):
    """Write arrays to ``path`` as ``.npz`` so that no truncated file is ever visible.

    The data goes to a temporary file in the same folder (named ``.tmp-<host>-<pid>-...``),
    which is flushed to disk and then renamed over ``path``; on any failure the temporary file
    is removed. A process killed outright (``kill -9``) cannot remove it: the first write into a
    folder removes such leftovers of dead processes of this host (see
    :func:`remove_stale_temporaries`).

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
    if folder not in _cleared_folders:
        remove_stale_temporaries(folder)
        _cleared_folders.add(folder)
    handle, tmp = tempfile.mkstemp(prefix=_temp_prefix(), suffix=".npz", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp's 0600 would hide it from others
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def remove_stale_temporaries(folder):
    """Remove the temporary output files that dead processes of this host left in ``folder``.

    Only files named ``.tmp-<this host>-<pid>-...`` whose process no longer exists are removed:
    files of live processes (another job writing into the same folder) and of other hosts (a
    shared file system) are left alone.

    Parameters
    ----------
    folder : str or os.PathLike

    Returns
    -------
    list of str
        The paths removed.
    """
    host_prefix = f"{TEMP_PREFIX}{socket.gethostname()}-"
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(host_prefix):
            continue
        pid_text = name[len(host_prefix):].split("-", 1)[0]
        if pid_text.isdigit() and not _process_exists(int(pid_text)):
            path = os.path.join(folder, name)
            try:
                os.remove(path)
                removed.append(path)
            except OSError:
                pass  # removed by another process meanwhile, or not ours to remove
    return removed


def _temp_prefix():
    return f"{TEMP_PREFIX}{socket.gethostname()}-{os.getpid()}-"


def _process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
