"""The per-file work of the embedding commands, shared by the single-process batch loop
(:func:`openl3lite.cli.run_job`) and the Ray actors (:mod:`openl3lite.raydata`).

A *job* (:class:`AudioJob`, :class:`ImageJob`, :class:`VideoJob`) holds everything that decides
an input's outputs: the model (a name or a file, loaded once, lazily) and the embedding and
output parameters. It is a small picklable object: pickling drops the loaded model, so the job
travels to Ray workers as its settings and each worker loads the model once. :func:`attempt`
runs one file through a job and says what happened, never raising for a bad file.

No Keras at import: the CLI imports this module before it starts a backend.
"""

import os
import warnings
from dataclasses import dataclass, field

from . import checks
from .errors import OpenL3liteError, OpenL3liteWarning
from .facts import (AUDIO_EMBEDDING_SIZES, CONTENT_TYPES, DEFAULT_BATCH_SIZE,
                    DEFAULT_CONTENT_TYPE, DEFAULT_ENGINE, DEFAULT_FRONTEND, DEFAULT_HOP_SIZE,
                    DEFAULT_INPUT_REPR, DEFAULT_MODE, DEFAULT_RESAMPLER, ENGINES, FRONTENDS,
                    IMAGE_EMBEDDING_SIZES, INPUT_REPRS, MODES, RESAMPLERS)


# ---------------------------------------------------------------- models

def load_audio_model(model_path, input_repr, content_type, embedding_size, frontend,
                     engine=DEFAULT_ENGINE, mode=DEFAULT_MODE):
    """The audio model of a command: ``model_path`` (a name or a file), else OpenL3's for
    ``input_repr`` (mel256 if None, as OpenL3's CLI chooses it, also for the librosa
    frontend) and ``content_type``.

    In exact mode with an engine that runs without Keras, the network converted by an earlier
    run is taken from the engines' cache when it is there
    (:func:`openl3lite.engines.cached_engine_model`): neither Keras nor TensorFlow is then
    imported. Otherwise the Keras model is loaded (and converted on first use).

    Raises
    ------
    OpenL3liteError
        A model that cannot be loaded.
    """
    from . import engines
    from .api import keras_models

    cached = engines.cached_engine_model(model_path, "audio", input_repr, embedding_size,
                                         frontend, content_type, engine, mode)
    if cached is not None:
        return cached
    models = keras_models()
    if model_path is None:
        return models.load_audio_embedding_model(input_repr or DEFAULT_INPUT_REPR, content_type,
                                                 embedding_size, frontend)
    return models.load_audio_embedding_model_from_path(model_path, input_repr, embedding_size,
                                                       frontend)


def prepare_engine(model, engine):
    """Convert (or find in the cache) ``model``'s network for ``engine`` now, so that a failure
    is one set-up error and not one per file; nothing to do for Keras.

    Raises
    ------
    OpenL3liteError
        The engine is not installed, or the conversion failed its verification.
    """
    from . import engines

    if engine == DEFAULT_ENGINE or isinstance(model, engines.EngineModel):
        return  # an EngineModel is a verified conversion already

    engines.predictor(model, engine,
                      waveform_input=getattr(model, "frontend", DEFAULT_FRONTEND) != "librosa")


def load_image_model(model_path, input_repr, content_type, embedding_size,
                     engine=DEFAULT_ENGINE):
    """The image model of a command: ``model_path`` (a name or a file), else OpenL3's image
    weights for ``input_repr`` / ``content_type``; from the engines' cache, without Keras,
    where :func:`load_audio_model` would take it from there."""
    from . import engines
    from .api import keras_models

    cached = engines.cached_engine_model(model_path, "image", input_repr, embedding_size, None,
                                         content_type, engine)
    if cached is not None:
        return cached
    models = keras_models()

    if model_path is None:
        return models.load_image_embedding_model(input_repr, content_type, embedding_size)
    return models.load_image_embedding_model_from_path(model_path, embedding_size)


# ---------------------------------------------------------------- jobs

def _check_model_choices(job):
    """The settings every job has: the input representation (or None), content type and
    engine, checked by :mod:`openl3lite.checks` when the job is made."""
    if job.input_repr is not None:
        checks.check_choice("input_repr", job.input_repr, INPUT_REPRS)
    checks.check_choice("content_type", job.content_type, CONTENT_TYPES)
    checks.check_choice("engine", job.engine, ENGINES)


@dataclass
class _Job:
    """Settings shared by every job: where outputs go and whether existing ones are replaced.

    Attributes
    ----------
    output_dir : str or None
        Folder for the outputs; beside each input if None.
    suffix : str or None
        Added to output names (``x.wav`` -> ``x_SUFFIX.npz``).
    overwrite : bool
        Replace existing outputs.
    verbose : bool
        Per-file progress bars over windows or frames.
    engine : str
        Where exact mode runs the network (:data:`openl3lite.facts.ENGINES`).
    """

    output_dir: str = None
    suffix: str = None
    overwrite: bool = False
    verbose: bool = False
    engine: str = DEFAULT_ENGINE
    _loaded: dict = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_loaded"] = None  # models travel as their names; each process loads its own
        return state

    def _model(self, key, load):
        if self._loaded is None:
            self._loaded = {}
        if key not in self._loaded:
            self._loaded[key] = load()
        return self._loaded[key]


@dataclass
class AudioJob(_Job):
    """Embed audio files into ``NAME[_SUFFIX].npz`` (``embedding`` (T, D) float32,
    ``timestamps`` (T,) float64 in seconds, and the provenance keys).

    Attributes
    ----------
    model : str or None
        A model name or weights file; None: OpenL3's for ``input_repr`` / ``content_type``.
    input_repr, content_type, embedding_size, frontend
        As :func:`load_audio_model`.
    center, hop_size, batch_size, resampler, mode
        As :func:`openl3lite.get_audio_embedding` (``hop_size`` in seconds).
    """

    model: str = None
    input_repr: str = None
    content_type: str = DEFAULT_CONTENT_TYPE
    embedding_size: int = AUDIO_EMBEDDING_SIZES[0]
    frontend: str = DEFAULT_FRONTEND
    center: bool = True
    hop_size: float = DEFAULT_HOP_SIZE
    batch_size: int = DEFAULT_BATCH_SIZE
    resampler: str = DEFAULT_RESAMPLER
    mode: str = DEFAULT_MODE

    def __post_init__(self):
        _check_model_choices(self)
        checks.check_embedding_size(self.embedding_size, AUDIO_EMBEDDING_SIZES)
        checks.check_choice("frontend", self.frontend, FRONTENDS)
        checks.check_hop_size(self.hop_size)
        checks.check_bool("center", self.center)
        checks.check_batch_size(self.batch_size)
        checks.check_choice("resampler", self.resampler, RESAMPLERS)
        checks.check_choice("mode", self.mode, MODES)

    @property
    def audio_model(self):
        """The loaded model (loaded on first use)."""
        return self._model("audio", lambda: load_audio_model(
            self.model, self.input_repr, self.content_type, int(self.embedding_size),
            self.frontend, self.engine, self.mode))

    def load(self):
        """Load the model (and its engine's conversion) now (raises :class:`OpenL3liteError`
        if it cannot be)."""
        prepare_engine(self.audio_model, self.engine)
        return self.audio_model

    def outputs(self, path):
        """The output file of ``path``, as a one-item list."""
        from .output import output_path

        return [output_path(path, self.output_dir, self.suffix)]

    def arrays(self, path):
        """The arrays the output of ``path`` holds: ``embedding``, ``timestamps`` and the
        provenance keys.

        Raises
        ------
        OpenL3liteError, OSError
            An unreadable or invalid file.
        """
        from . import api
        from .output import provenance

        model = self.audio_model
        embedding, timestamps = api.embed_audio_file(
            path, model, center=self.center, hop_size=self.hop_size,
            batch_size=self.batch_size, resampler=self.resampler, verbose=self.verbose,
            mode=self.mode, engine=self.engine)
        return {"embedding": embedding, "timestamps": timestamps,
                **provenance(model, embedding, hop_size=self.hop_size, center=self.center,
                             resampler=self.resampler, mode=self.mode, engine=self.engine)}

    def process(self, path):
        """Embed ``path`` and write its output atomically."""
        from .output import write_npz_atomic

        write_npz_atomic(self.outputs(path)[0], **self.arrays(path))


@dataclass
class ImageJob(_Job):
    """Embed image files into ``NAME[_SUFFIX].npz`` (``embedding`` (1, D) float32 and the
    provenance keys).

    Attributes
    ----------
    model : str or None
        A model name or weights file; None: OpenL3's image weights for ``input_repr`` /
        ``content_type``.
    """

    model: str = None
    input_repr: str = None
    content_type: str = DEFAULT_CONTENT_TYPE
    embedding_size: int = IMAGE_EMBEDDING_SIZES[0]
    batch_size: int = DEFAULT_BATCH_SIZE

    def __post_init__(self):
        _check_model_choices(self)
        checks.check_embedding_size(self.embedding_size, IMAGE_EMBEDDING_SIZES)
        checks.check_batch_size(self.batch_size)

    @property
    def image_model(self):
        """The loaded model (loaded on first use)."""
        return self._model("image", lambda: load_image_model(
            self.model, self.input_repr, self.content_type, int(self.embedding_size),
            self.engine))

    def load(self):
        """Load the model (and its engine's conversion) now (raises :class:`OpenL3liteError`
        if it cannot be)."""
        prepare_engine(self.image_model, self.engine)
        return self.image_model

    def outputs(self, path):
        """The output file of ``path``, as a one-item list."""
        from .output import output_path

        return [output_path(path, self.output_dir, self.suffix)]

    def embed_image(self, image, source):
        """Embedding of one decoded image (H, W, 3) (or a batch (N, H, W, 3)): (N, D)."""
        from . import api
        from . import image as image_io

        batch = image_io.as_image_batch(image, source)
        return api.embed_images(batch, self.image_model, self.batch_size, False, source,
                                self.engine)

    def arrays(self, path):
        """The arrays the output of ``path`` holds: ``embedding`` (1, D) and the provenance
        keys."""
        from . import image as image_io
        from .output import provenance

        embedding = self.embed_image(image_io.read_image(path), os.fspath(path))
        return {"embedding": embedding, **provenance(self.image_model, embedding,
                                                     engine=self.engine)}

    def process(self, path):
        """Embed ``path`` and write its output atomically."""
        from .output import write_npz_atomic

        write_npz_atomic(self.outputs(path)[0], **self.arrays(path))


@dataclass
class VideoJob(_Job):
    """Embed videos' sound and frames into ``NAME_audio[_SUFFIX].npz`` and
    ``NAME_image[_SUFFIX].npz``; an output that exists is kept unless ``overwrite``.

    Attributes
    ----------
    model : str or None
        Audio model (and image model unless ``image_model``).
    image_model : str or None
        Separate image weights.
    """

    model: str = None
    image_model: str = None
    input_repr: str = None
    content_type: str = DEFAULT_CONTENT_TYPE
    audio_embedding_size: int = AUDIO_EMBEDDING_SIZES[0]
    image_embedding_size: int = IMAGE_EMBEDDING_SIZES[0]
    frontend: str = DEFAULT_FRONTEND
    center: bool = True
    hop_size: float = DEFAULT_HOP_SIZE
    audio_batch_size: int = DEFAULT_BATCH_SIZE
    image_batch_size: int = DEFAULT_BATCH_SIZE
    mode: str = DEFAULT_MODE

    def __post_init__(self):
        _check_model_choices(self)
        checks.check_embedding_size(self.audio_embedding_size, AUDIO_EMBEDDING_SIZES,
                                    "audio_embedding_size")
        checks.check_embedding_size(self.image_embedding_size, IMAGE_EMBEDDING_SIZES,
                                    "image_embedding_size")
        checks.check_choice("frontend", self.frontend, FRONTENDS)
        checks.check_hop_size(self.hop_size)
        checks.check_bool("center", self.center)
        checks.check_batch_size(self.audio_batch_size, "audio_batch_size")
        checks.check_batch_size(self.image_batch_size, "image_batch_size")
        checks.check_choice("mode", self.mode, MODES)

    def models(self):
        """(audio model, image model), loaded on first use."""
        audio = self._model("audio", lambda: load_audio_model(
            self.model, self.input_repr, self.content_type, int(self.audio_embedding_size),
            self.frontend, self.engine, self.mode))
        image = self._model("image", lambda: load_image_model(
            self.image_model or self.model, self.input_repr, self.content_type,
            int(self.image_embedding_size), self.engine))
        return audio, image

    def load(self):
        """Load both models (and their engine's conversions) now (raises
        :class:`OpenL3liteError` if one cannot be)."""
        for model in self.models():
            prepare_engine(model, self.engine)
        return self.models()

    def outputs(self, path):
        """``[audio output, image output]`` of ``path``."""
        from .output import output_path

        return [output_path(path, self.output_dir, self.suffix, "audio"),
                output_path(path, self.output_dir, self.suffix, "image")]

    def embed(self, path, audio=True, image=True):
        """:func:`openl3lite.api.embed_video_file` of ``path`` with this job's settings."""
        from . import api

        audio_model, image_model = self.models()
        return api.embed_video_file(path, audio_model, image_model, self.center,
                                    self.hop_size, self.audio_batch_size,
                                    self.image_batch_size, verbose=self.verbose,
                                    audio_mode=self.mode, audio=audio, image=image,
                                    engine=self.engine)

    def process(self, path):
        """Embed ``path``'s missing outputs (all with ``overwrite``) and write them
        atomically."""
        from . import api

        audio_out, image_out = self.outputs(path)
        result = self.embed(path, audio=self.overwrite or not os.path.exists(audio_out),
                            image=self.overwrite or not os.path.exists(image_out))
        api.write_video_outputs(result, audio_out, image_out, *self.models(),
                                {"hop_size": self.hop_size, "center": self.center,
                                 "resampler": DEFAULT_RESAMPLER, "mode": self.mode,
                                 "engine": self.engine})


# ---------------------------------------------------------------- one file, never raising

@dataclass
class Outcome:
    """What happened to one input.

    Attributes
    ----------
    path : str
    reason : str or None
        Why it failed (None if it succeeded): what the job summary records.
    message : str or None
        The error line to print after ``error:`` (names the file).
    warnings : list of str
        The library's warnings about the input, each once, as ``PATH: message``.
    """

    path: str
    reason: str = None
    message: str = None
    warnings: list = field(default_factory=list)

    @property
    def ok(self):
        return self.reason is None


def with_path(path, text):
    """``text``, prefixed with ``path`` unless it already names it."""
    text = str(text)
    return text if os.fspath(path) in text else f"{path}: {text}"


def attempt(process, path):
    """Run ``process(path)``, catching what goes wrong with this one file.

    Parameters
    ----------
    process : callable
        path -> None; writes the outputs (atomically) or raises.
    path : str

    Returns
    -------
    Outcome
        Errors of the library and of the file system (``OpenL3liteError``, ``OSError``) are
        reported as they are; any other exception as ``unexpected TYPE: message``. The
        library's warnings about the input are collected; other warnings are shown as Python
        shows them.
    """
    outcome = Outcome(os.fspath(path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            process(path)
        except (OpenL3liteError, OSError) as exc:
            outcome.reason, outcome.message = str(exc), with_path(path, exc)
        except Exception as exc:  # an unexpected failure in one file must not stop the batch
            outcome.reason = f"{type(exc).__name__}: {exc}"
            outcome.message = f"{path}: unexpected {type(exc).__name__}: {exc}"
    for warning in caught:
        if not issubclass(warning.category, OpenL3liteWarning):
            warnings.showwarning(warning.message, warning.category, warning.filename,
                                 warning.lineno)
        else:
            text = with_path(path, warning.message)
            if text not in outcome.warnings:
                outcome.warnings.append(text)
    return outcome
