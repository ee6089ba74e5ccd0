"""Embedding on Ray Data: callable classes for ``Dataset.map_batches``, and the engine behind
``l3embed audio|image|video --ray``.

Each class loads its model once per actor and maps a batch (a dict of numpy arrays, Ray's
``batch_format="numpy"``) to the same batch with embeddings added::

    import ray
    from openl3lite.raydata import AudioEmbedder

    ds = ray.data.from_items([{"path": p} for p in paths])      # or ray.data.read_audio(...)
    ds = ds.map_batches(AudioEmbedder, fn_constructor_kwargs={"model": "openl3-mel256-music"},
                        concurrency=4, num_gpus=1, batch_size=16)

A batch holds either file paths (a ``path`` column: each file is read and embedded exactly as
``l3embed`` does it) or decoded data (``amplitude`` and ``sample_rate`` from
``ray.data.read_audio``; ``image`` from ``ray.data.read_images``). A file or row that cannot be
embedded does not stop the job: its ``error`` column says why (``""`` for rows that worked) and
its embedding is empty.

Ray is imported only by the functions that need it (:func:`require_ray`); the classes
themselves need Ray only to be run by it, and can be called directly on a dict of arrays.
"""

import logging
import math
import os
from dataclasses import replace

import numpy as np

from .errors import OpenL3liteError
from .facts import (AUDIO_EMBEDDING_SIZES, DEFAULT_BATCH_SIZE, DEFAULT_CONTENT_TYPE,
                    DEFAULT_FRONTEND, DEFAULT_HOP_SIZE, DEFAULT_MODE, DEFAULT_RESAMPLER,
                    IMAGE_EMBEDDING_SIZES)
from .jobs import AudioJob, ImageJob, Outcome, VideoJob, attempt, with_path

#: What to install when Ray is missing.
INSTALL_HINT = "pip install 'openl3lite[ray]'"

#: Environment variables a Ray worker needs to behave as the driver does (the weights cache,
#: offline mode, the Keras backend, TensorFlow's log level, how TensorFlow and JAX take GPU
#: memory); passed on when they are set.
WORKER_ENV_VARS = ("OPENL3LITE_HOME", "OPENL3LITE_OFFLINE", "KERAS_BACKEND",
                   "TF_CPP_MIN_LOG_LEVEL", "TF_FORCE_GPU_ALLOW_GROWTH",
                   "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION")

#: For actors that share a GPU (``gpus_per_worker < 1``), unless set: TensorFlow and JAX take
#: GPU memory as needed instead of all (TensorFlow) or 75% (JAX) of it for the first actor.
SHARED_GPU_ENV = {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


def _start_backend():
    """Import Keras in a Ray worker without TensorFlow's start-up lines (the driver shows
    the worker's standard error)."""
    from .quiet import import_backend_quietly

    import_backend_quietly()


def require_ray():
    """Import Ray (with Ray Data), or say how to install it.

    Returns
    -------
    module
        ``ray``, with ``ray.data`` imported.

    Raises
    ------
    OpenL3liteError
        Ray or Ray Data is not installed.
    """
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise OpenL3liteError(f"Ray Data is not installed ({exc}); install it with: "
                              f"{INSTALL_HINT}") from None
    return ray


# ---------------------------------------------------------------- the map_batches classes

def _column(batch, name):
    values = batch[name]
    return list(values) if not isinstance(values, list) else values


def _with_columns(batch, drop, **columns):
    out = {key: value for key, value in batch.items() if key not in drop}
    out.update(columns)
    return out


def _text(value):
    return value.decode(errors="surrogateescape") if isinstance(value, bytes) else str(value)


def _row_error(source, exc):
    """The ``error`` text of a row that failed: the library's message, naming the source."""
    if isinstance(exc, (OpenL3liteError, OSError)):
        return with_path(source, exc)
    return f"{source}: unexpected {type(exc).__name__}: {exc}"


class AudioEmbedder:
    """Audio embeddings of a batch of files or decoded signals, for ``map_batches``.

    Parameters
    ----------
    model : str, optional
        A model name (``l3embed models``) or weights file, as ``l3embed audio --model``; None:
        OpenL3's weights for ``input_repr`` and ``content_type``. A file must be readable at
        the same path on every node.
    input_repr, content_type, embedding_size, frontend, center, hop_size, batch_size,
    resampler, mode
        As :func:`openl3lite.get_audio_embedding` (``hop_size`` in seconds; ``batch_size`` is
        windows per network batch).
    path_column : str
        Column of file paths.
    audio_column, sample_rate_column : str
        Columns of decoded audio (``ray.data.read_audio``'s names): per row an array of
        shape (channels, samples), as ``read_audio`` gives it, or (samples,) for mono, and
        the sample rate in Hz.

    Returns (of a call)
    -------------------
    dict of np.ndarray
        The batch's columns (less the audio column, which is not carried on) plus
        ``embedding`` (per row float32 (T, D)), ``timestamps`` (per row float64 (T,), window
        centres in seconds, or starts with ``center=False``) and ``error`` (str; ``""`` when
        the row worked, else what went wrong, naming the file; its embedding is then (0, D)).
    """

    def __init__(self, model=None, input_repr=None, content_type=DEFAULT_CONTENT_TYPE,
                 embedding_size=AUDIO_EMBEDDING_SIZES[0], frontend=DEFAULT_FRONTEND,
                 center=True, hop_size=DEFAULT_HOP_SIZE, batch_size=DEFAULT_BATCH_SIZE,
                 resampler=DEFAULT_RESAMPLER, mode=DEFAULT_MODE, path_column="path",
                 audio_column="amplitude", sample_rate_column="sample_rate"):
        _start_backend()
        self.job = AudioJob(model=model, input_repr=input_repr, content_type=content_type,
                            embedding_size=int(embedding_size), frontend=frontend,
                            center=center, hop_size=hop_size, batch_size=batch_size,
                            resampler=resampler, mode=mode)
        self.columns = (path_column, audio_column, sample_rate_column)
        self.dim = self.job.load().output_shape[-1]

    def __call__(self, batch):
        path_column, audio_column, rate_column = self.columns
        if audio_column in batch:
            sources = _column(batch, path_column) if path_column in batch else None
            rows = zip(_column(batch, audio_column), _column(batch, rate_column))
            results = [self._embed_signal(x, sr, _text(sources[i]) if sources else f"row {i}")
                       for i, (x, sr) in enumerate(rows)]
        elif path_column in batch:
            results = [self._embed_file(_text(p)) for p in _column(batch, path_column)]
        else:
            raise OpenL3liteError(f"AudioEmbedder: the batch has neither a {path_column!r} nor "
                                  f"an {audio_column!r} column (it has {sorted(batch)})")
        embeddings, timestamps, errors = zip(*results) if results else ((), (), ())
        return _with_columns(batch, {audio_column}, embedding=list(embeddings),
                             timestamps=list(timestamps), error=np.asarray(errors, dtype=str))

    def _failed(self, message):
        return np.zeros((0, self.dim), np.float32), np.zeros(0), message

    def _embed_file(self, path):
        try:
            arrays = self.job.arrays(path)
        except Exception as exc:
            return self._failed(_row_error(path, exc))
        return arrays["embedding"], arrays["timestamps"], ""

    def _embed_signal(self, samples, sr, source):
        from . import api

        try:
            samples = np.asarray(samples)
            if samples.ndim == 2:  # read_audio's (channels, samples) -> (samples, channels)
                samples = samples.T
            job = self.job
            embedding, timestamps = api.get_audio_embedding(
                samples, float(sr), model=job.audio_model, center=job.center,
                hop_size=job.hop_size, batch_size=job.batch_size, verbose=False,
                resampler=job.resampler, mode=job.mode)
        except Exception as exc:
            return self._failed(_row_error(source, exc))
        return embedding, timestamps, ""


class ImageEmbedder:
    """Image embeddings of a batch of files or decoded images, for ``map_batches``.

    Parameters
    ----------
    model : str, optional
        A model name or weights file, as ``l3embed image --model``; None: OpenL3's image
        weights for ``input_repr`` and ``content_type``.
    embedding_size : int
    batch_size : int
        Images per network batch within one image (a multi-frame array).
    path_column : str
        Column of file paths.
    image_column : str
        Column of decoded images (``ray.data.read_images``' name): per row (H, W, 3) (grey
        and RGBA are converted), at least 224 px on a side.

    Returns (of a call)
    -------------------
    dict of np.ndarray
        The batch's columns (less the image column) plus ``embedding`` (per row float32
        (D,), as ``l3embed image`` writes it as (1, D); zeros for a failed row) and ``error``
        (str, ``""`` when the row worked).
    """

    def __init__(self, model=None, input_repr=None, content_type=DEFAULT_CONTENT_TYPE,
                 embedding_size=IMAGE_EMBEDDING_SIZES[0], batch_size=DEFAULT_BATCH_SIZE,
                 path_column="path", image_column="image"):
        _start_backend()
        self.job = ImageJob(model=model, input_repr=input_repr, content_type=content_type,
                            embedding_size=int(embedding_size), batch_size=batch_size)
        self.columns = (path_column, image_column)
        self.dim = self.job.load().output_shape[-1]

    def __call__(self, batch):
        path_column, image_column = self.columns
        if image_column in batch:
            sources = _column(batch, path_column) if path_column in batch else None
            results = [self._embed(self.job.embed_image, image,
                                   _text(sources[i]) if sources else f"row {i}")
                       for i, image in enumerate(_column(batch, image_column))]
        elif path_column in batch:
            results = [self._embed(self._embed_file, path, path)
                       for path in map(_text, _column(batch, path_column))]
        else:
            raise OpenL3liteError(f"ImageEmbedder: the batch has neither a {path_column!r} nor "
                                  f"an {image_column!r} column (it has {sorted(batch)})")
        embeddings, errors = zip(*results) if results else ((), ())
        embedding = np.stack(embeddings) if results else np.zeros((0, self.dim), np.float32)
        return _with_columns(batch, {image_column}, embedding=embedding,
                             error=np.asarray(errors, dtype=str))

    def _embed_file(self, path, source):
        return self.job.arrays(path)["embedding"]

    def _embed(self, compute, item, source):
        """``compute(item, source)[0]`` and ``""``, or zeros and the error."""
        try:
            return compute(item, source)[0], ""
        except Exception as exc:  # a bad row must not stop the job: its error column says why
            return np.zeros(self.dim, np.float32), _row_error(source, exc)


class VideoEmbedder:
    """Audio and image embeddings of a batch of video files (a ``path`` column), for
    ``map_batches``: as ``l3embed video`` computes them.

    Parameters
    ----------
    model, image_model, input_repr, content_type, audio_embedding_size, image_embedding_size,
    frontend, center, hop_size, audio_batch_size, image_batch_size, mode
        As :class:`openl3lite.jobs.VideoJob` and ``l3embed video``.
    path_column : str

    Returns (of a call)
    -------------------
    dict of np.ndarray
        The batch plus ``audio_embedding`` (per row (T_a, D_a)), ``audio_timestamps``,
        ``image_embedding`` (per row (T_i, D_i)), ``image_timestamps`` (seconds) and
        ``error`` (``""`` when the row worked; the embeddings of a failed row are empty).
    """

    def __init__(self, model=None, image_model=None, input_repr=None,
                 content_type=DEFAULT_CONTENT_TYPE,
                 audio_embedding_size=AUDIO_EMBEDDING_SIZES[0],
                 image_embedding_size=IMAGE_EMBEDDING_SIZES[0], frontend=DEFAULT_FRONTEND,
                 center=True, hop_size=DEFAULT_HOP_SIZE, audio_batch_size=DEFAULT_BATCH_SIZE,
                 image_batch_size=DEFAULT_BATCH_SIZE, mode=DEFAULT_MODE, path_column="path"):
        _start_backend()
        self.job = VideoJob(model=model, image_model=image_model, input_repr=input_repr,
                            content_type=content_type,
                            audio_embedding_size=int(audio_embedding_size),
                            image_embedding_size=int(image_embedding_size), frontend=frontend,
                            center=center, hop_size=hop_size, audio_batch_size=audio_batch_size,
                            image_batch_size=image_batch_size, mode=mode)
        self.path_column = path_column
        self.dims = tuple(m.output_shape[-1] for m in self.job.load())

    def __call__(self, batch):
        keys = ("audio_embedding", "audio_timestamps", "image_embedding", "image_timestamps")
        columns = {key: [] for key in keys + ("error",)}
        for path in map(_text, _column(batch, self.path_column)):
            try:
                result, error = self.job.embed(path), ""
            except Exception as exc:
                (d_audio, d_image), error = self.dims, _row_error(path, exc)
                result = dict(zip(keys, (np.zeros((0, d_audio), np.float32), np.zeros(0),
                                         np.zeros((0, d_image), np.float32), np.zeros(0))))
            for key in keys:
                columns[key].append(result[key])
            columns["error"].append(error)
        columns["error"] = np.asarray(columns["error"], dtype=str)
        return _with_columns(batch, set(), **columns)


# ---------------------------------------------------------------- the CLI's engine

class JobActor:
    """Runs a job (:mod:`openl3lite.jobs`) over a batch of paths, writing each input's outputs
    as the single-process loop does (:func:`openl3lite.jobs.attempt`), and returns what
    happened: columns ``path``, ``reason``, ``message`` (``""`` for inputs that worked),
    ``warnings`` (the library's warnings, one a line) and ``setup_error``: why the model could
    not be loaded (then nothing was tried; ``""`` otherwise), for the driver to report in one
    line instead of Ray's traceback of a failed actor."""

    def __init__(self, job):
        _start_backend()
        self.job, self.setup_error = job, ""
        try:
            job.load()
        except OpenL3liteError as exc:
            self.setup_error = str(exc)

    def __call__(self, batch):
        paths = [_text(p) for p in _column(batch, "path")]
        if self.setup_error:
            outcomes = [Outcome(p) for p in paths]
        else:
            outcomes = [attempt(self.job.process, p) for p in paths]
        return {"path": np.asarray([o.path for o in outcomes], dtype=str),
                "reason": np.asarray([o.reason or "" for o in outcomes], dtype=str),
                "message": np.asarray([o.message or "" for o in outcomes], dtype=str),
                "warnings": np.asarray(["\n".join(o.warnings) for o in outcomes], dtype=str),
                "setup_error": np.asarray([self.setup_error] * len(outcomes), dtype=str)}


def _outcome(row):
    """The :class:`Outcome` of one of :class:`JobActor`'s rows.

    Raises
    ------
    OpenL3liteError
        The actor could not load the model.
    """
    if str(row["setup_error"]):
        raise OpenL3liteError(str(row["setup_error"]))
    return Outcome(str(row["path"]), reason=str(row["reason"]) or None,
                   message=str(row["message"]) or None,
                   warnings=[w for w in str(row["warnings"]).split("\n") if w])


def worker_env(gpus_per_worker=0.0):
    """The environment of the actors, for Ray's ``runtime_env``: the variables of
    :data:`WORKER_ENV_VARS` that are set here, and :data:`SHARED_GPU_ENV` (where not set) for
    actors that share a GPU.

    Parameters
    ----------
    gpus_per_worker : float

    Returns
    -------
    dict of str -> str
    """
    env = {name: os.environ[name] for name in WORKER_ENV_VARS if name in os.environ}
    if 0 < gpus_per_worker < 1:
        env = {**SHARED_GPU_ENV, **env}
    return env


def connect(address, workers, cpus_per_worker):
    """Start or join a Ray cluster for a job.

    Parameters
    ----------
    address : str
        ``local`` starts a cluster on this machine (with at least ``workers *
        cpus_per_worker`` CPUs); anything else is passed to ``ray.init(address=...)``
        (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``). If Ray is already initialised in this
        process, its cluster is used as it is.
    workers : int or None
    cpus_per_worker : float

    Returns
    -------
    bool
        Whether this call started Ray (and the caller should shut it down).
    """
    ray = require_ray()
    if ray.is_initialized():
        return False
    options = {"include_dashboard": False, "logging_level": logging.ERROR,
               "runtime_env": {"env_vars": worker_env()}}  # also for other tasks of the job
    if address == "local":
        options["num_cpus"] = max(os.cpu_count() or 1, math.ceil((workers or 1) *
                                                                 cpus_per_worker))
    try:
        ray.init(address=address, **options)
    except ConnectionError as exc:
        raise OpenL3liteError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None
    return True


def plan_workers(workers, cpus_per_worker, gpus_per_worker):
    """How many actors a job runs: ``workers`` if given and the cluster has room for them, else
    as many as its CPUs (or GPUs, with ``gpus_per_worker``) allow.

    Raises
    ------
    OpenL3liteError
        The cluster cannot hold ``workers`` actors of that size, or not even one.
    """
    import ray

    resources = ray.cluster_resources()
    limits = [("CPU", cpus_per_worker)] + ([("GPU", gpus_per_worker)] if gpus_per_worker else [])
    room = min(int(resources.get(name, 0) // need) for name, need in limits if need > 0) \
        if any(need > 0 for _, need in limits) else (workers or 1)
    wanted = workers or room
    if wanted < 1 or wanted > room:
        have = ", ".join(f"{resources.get(name, 0):g} {name}" for name, _ in limits)
        raise OpenL3liteError(
            f"the Ray cluster has {have}: not enough for {wanted or 1} worker(s) of "
            f"{cpus_per_worker:g} CPU" + (f" and {gpus_per_worker:g} GPU" if gpus_per_worker
                                          else "") + " each")
    return wanted


def files_per_batch(n_files, workers):
    """Files per Ray batch: enough batches (about 8 a worker) to balance the load and keep the
    progress bar moving, at most 16 files each."""
    return max(1, min(16, n_files // (8 * workers)))


def run_job_on_ray(job, paths, address="local", workers=None, cpus_per_worker=1.0,
                   gpus_per_worker=0.0):
    """Run ``job`` over ``paths`` on Ray actors, each loading the model once.

    Parameters
    ----------
    job : AudioJob, ImageJob or VideoJob
        Pickled to the actors without its loaded model.
    paths : list of str
        Inputs to process (the caller has left out those to skip); they and the output folder
        must be reachable at the same paths on every node.
    address, workers, cpus_per_worker
        As :func:`connect` and :func:`plan_workers`.
    gpus_per_worker : float
        GPUs each actor reserves (0: none).

    Yields
    ------
    Outcome
        One per path, in the order they finish.

    Raises
    ------
    OpenL3liteError
        Ray missing, the cluster unreachable or too small, or the Ray job failing as a whole.
    """
    if not paths:
        return
    ray = require_ray()
    started = connect(address, workers, cpus_per_worker)
    try:
        n_workers = plan_workers(workers, cpus_per_worker, gpus_per_worker)
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # no per-run notes
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the caller shows one over files
        context.print_on_execution_start = False
        dataset = ray.data.from_items([{"path": p} for p in paths])
        dataset = dataset.map_batches(
            JobActor, fn_constructor_kwargs={"job": replace(job, verbose=False)},
            compute=ray.data.ActorPoolStrategy(size=n_workers), num_cpus=cpus_per_worker,
            num_gpus=gpus_per_worker or None, batch_size=files_per_batch(len(paths), n_workers),
            batch_format="numpy", runtime_env={"env_vars": worker_env(gpus_per_worker)})
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                for i in range(len(batch["path"])):
                    yield _outcome({key: values[i] for key, values in batch.items()})
        except ray.exceptions.RayError as exc:
            raise OpenL3liteError(f"the Ray job failed: {_last_line(exc)}") from None
    finally:
        if started:
            ray.shutdown()


def _last_line(exc):
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
