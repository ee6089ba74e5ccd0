"""Output file names (as OpenL3 names them), what each output records about how it was made,
and the one atomic writer every file this project writes goes through (:func:`atomic_path`,
:func:`atomic_write` and the ``write_*_atomic`` shorthands)."""

import contextlib
import json
import os
import secrets
import shutil
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
                   "mode", "engine")


def provenance(model, embedding, **params):
    """What made an embedding, as arrays an ``.npz`` holds without pickling.

    Parameters
    ----------
    model : keras.Model
        The embedding model (its metadata, where it has any, gives the name, weights' sha256,
        input representation, content type and frontend).
    embedding : np.ndarray, shape (T, D)
    **params
        Parameters that shape the embedding: ``engine`` (audio and images), and for audio
        ``hop_size`` (s), ``center``, ``resampler``, ``mode``.

    Returns
    -------
    dict of str -> np.ndarray
        0-d arrays: strings as numpy unicode, numbers as float64 / int64 / bool. Keys of
        :data:`PROVENANCE_KEYS` that do not apply (audio parameters of an image output) are
        left out.
    """
    from . import __version__

    record = dict(model_info(model), openl3lite_version=__version__,
                  embedding_size=int(np.shape(embedding)[-1]), **params)
    return {key: np.asarray(record[key]) for key in PROVENANCE_KEYS if key in record}


def model_info(model):
    """What an embedding model is, as the ``.npz`` outputs record it.

    Parameters
    ----------
    model : AudioEmbeddingModel, ImageEmbeddingModel, engines.EngineModel or keras.Model
        Its ``metadata`` (a :class:`~openl3lite.weights.ModelMetadata`), where it has one,
        names it; an audio model also has a ``frontend``.

    Returns
    -------
    dict
        ``model`` (name), ``weights_sha256`` ("" if unknown) and, for audio models,
        ``input_repr``, ``content_type`` and ``frontend``.
    """
    from .weights import ModelMetadata

    metadata = getattr(model, "metadata", None)
    if not isinstance(metadata, ModelMetadata):
        return {"model": getattr(model, "name", "keras"), "weights_sha256": ""}
    info = {"model": metadata.name, "weights_sha256": metadata.sha256 or ""}
    if getattr(model, "frontend", None) is not None:  # audio models know their frontend
        info.update(input_repr=metadata.input_repr, content_type=metadata.content_type or "",
                    frontend=model.frontend)
    return info


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


@contextlib.contextmanager
def atomic_path(path):
    """A fresh temporary path beside ``path`` that becomes ``path`` when the block ends well.

    The one way this project writes a file. The temporary file is created exclusively in the
    destination's folder (so the rename cannot cross file systems), named
    ``.tmp-<host>-<pid>-<random><ext>`` (``<ext>`` is the destination's, for writers that pick
    the format from the name), with mode ``0o666`` less the process's umask, applied by the
    kernel at creation (so it is read at the moment of writing, with no ``os.umask`` toggling
    that another thread could observe). The block writes to the yielded path (truncating or
    replacing the empty file); when it ends without an exception the file is fsynced, renamed
    over ``path`` (``os.replace``) and the folder fsynced, so a crash at any moment leaves either
    the old file or the complete new one. On any exception (``KeyboardInterrupt`` included) the
    temporary file is removed and the exception propagates. A process killed outright
    (``kill -9``) cannot remove it: the first write into a folder removes such leftovers of dead
    processes of this host (see :func:`remove_stale_temporaries`).

    Parameters
    ----------
    path : str or os.PathLike
        Destination file; its folder is created if missing.

    Yields
    ------
    str
        The temporary path to write to.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if folder not in _cleared_folders:
        remove_stale_temporaries(folder)
        _cleared_folders.add(folder)
    tmp = new_temporary(folder, os.path.splitext(path)[1])
    try:
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
    fsync_folder(folder)


@contextlib.contextmanager
def atomic_write(path, mode="wb", **open_kwargs):
    """Open a file that replaces ``path`` atomically when the block ends well.

    Same guarantees as :func:`atomic_path` (unique temporary name, umask permissions, flush and
    fsync, rename, folder fsync, clean-up on failure).

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    mode : str
        ``"wb"`` or ``"w"`` (text; pass ``encoding=`` / ``newline=`` in ``open_kwargs``).
    **open_kwargs
        Passed to :func:`open`.

    Yields
    ------
    file object
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', not {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as f:
        yield f
        f.flush()


def write_bytes_atomic(path, payload):
    """Write ``payload`` (bytes) to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_write(path, "wb") as f:
        f.write(payload)


def write_text_atomic(path, text, encoding="utf-8"):
    """Write ``text`` (str) to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_write(path, "w", encoding=encoding) as f:
        f.write(text)


def write_json_atomic(path, data, indent=1):
    """Write ``data`` as JSON (ending in a newline) to ``path`` atomically."""
    write_text_atomic(path, json.dumps(data, indent=indent) + "\n")


def write_npz_atomic(path, **arrays):
    """Write arrays to ``path`` as ``.npz`` so that no truncated file is ever visible.

    See :func:`atomic_path` for the guarantees (temporary ``.tmp-<host>-<pid>-...`` file in
    the same folder, fsync, rename, umask permissions, clean-up on failure).

    Parameters
    ----------
    path : str or os.PathLike
        Destination, ending in ``.npz``.
    **arrays : np.ndarray
        Arrays to store under their keyword names.
    """
    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)


def temporary_folder(folder):
    """Create a private work folder ``.tmp-<host>-<pid>-<random>`` in ``folder``.

    For outputs that are folders, or that a converter writes by itself: they are made inside
    it, then renamed into place (:func:`place_atomic`). It is named like the temporary files so
    that :func:`remove_stale_temporaries` clears it when its process was killed.

    Returns
    -------
    str
    """
    os.makedirs(folder, exist_ok=True)
    return tempfile.mkdtemp(prefix=_temp_prefix(), dir=folder)


def place_atomic(temp, path):
    """Rename a finished file or folder ``temp`` to ``path`` durably.

    A file is fsynced first; an existing folder at ``path`` is moved aside, replaced and then
    removed (a folder cannot be renamed over a non-empty one); the destination folder is
    fsynced after the rename.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    _fsync_path(temp)
    if os.path.isdir(path) and not os.path.islink(path):
        aside = temporary_folder(folder)
        os.rename(path, os.path.join(aside, "old"))
        os.rename(temp, path)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(temp, path)
    fsync_folder(folder)


def fsync_folder(folder):
    """Make renames in ``folder`` durable (POSIX; a no-op where a folder cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
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


def new_temporary(folder, suffix=""):
    """Create a new empty file ``.tmp-<host>-<pid>-<random><suffix>`` in ``folder``.

    ``O_EXCL`` makes the name unique even against another thread or process drawing the same
    random part; mode ``0o666`` is reduced by the umask in force, as for any new file. Callers
    that rename it into place themselves (the model cache of :mod:`openl3lite.hub`) use this;
    everything else uses :func:`atomic_path`.

    Returns
    -------
    str
        The path of the new file.
    """
    for _ in range(100):
        tmp = os.path.join(folder, f"{_temp_prefix()}{secrets.token_hex(4)}{suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"{folder}: no free temporary file name")


def _fsync_path(path):
    """Flush a closed file's data to disk (folders, e.g. a SavedModel, are left alone)."""
    if os.path.isdir(path):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path):
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
    except OSError:
        pass  # never created, or already renamed into place
