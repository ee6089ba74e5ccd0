"""Inference engines for exact mode: Keras itself, or the network converted to ONNX and run by
ONNX Runtime or OpenVINO.

A converted network is built once per set of weights and kept in the cache folder
(``$OPENL3LITE_HOME/engines``, see :func:`openl3lite.hub.cache_dir`), named by the sha256 of the
weights as they are in memory, the part, input representation, embedding size and graph
version. It is written and verified against the Keras model as :mod:`openl3lite.deploy` writes
an export (temporary file, check, rename), under a file lock so that concurrent processes
build it once; a cached file whose bytes no longer match its recorded sha256 is rebuilt.
Within a process, each engine's compiled network is kept per cached file.

``openvino-bf16`` runs the network in OpenVINO with bfloat16 inference precision (Intel AMX or
AVX-512 BF16; float32 on CPUs without them); for audio it runs the trunk only, on spectrograms
that the frontend layer computes in float32 (a bfloat16 spectrogram loses the quiet bins: 0.6
of the embedding's scale on speech). It is not exact: the first time a process
uses it for a network, its outputs on :func:`openl3lite.deploy.verification_inputs` are compared
with Keras' and refused beyond :data:`~openl3lite.facts.BF16_TOLERANCE` of the embedding's
scale on top of the float32 tolerances. ``benchmarks/network_ceiling.py`` measures its speed
and agreement; the ``.npz`` outputs record the engine that made them.

Each conversion is also recorded in ``engines/index/`` under the sha256 of the weights *file*
the model came from. :func:`cached_engine_model` looks a model name, weights file or the
default model up there, so that the API (:func:`openl3lite.api.as_audio_model`) can run a
network converted earlier as an :class:`EngineModel` without building the Keras model: that
path imports neither Keras nor TensorFlow (155 MB before the first call with OpenL3's full
audio network on OpenVINO, against 887 MB with Keras; ``benchmarks/backends.py``).

The audio network of an engine takes waveforms and computes the spectrogram inside
(:class:`openl3lite.frontend.DFTSpectrogram`); a model with the librosa frontend runs its
trunk on the librosa spectrograms. Fast mode always runs its trunk in Keras.
"""

import functools
import json
import os
from dataclasses import dataclass
from stat import S_ISREG

import numpy as np

from .checks import check_choice
from .errors import OpenL3liteError
from .facts import (
    APPROXIMATE_ENGINES,
    BF16_TOLERANCE,
    DEFAULT_ENGINE,
    DEFAULT_INPUT_REPR,
    DEFAULT_MODE,
    ENGINES,
)

#: Seconds to wait for another process that is converting the same network.
LOCK_TIMEOUT = 600
_ENGINE_PACKAGES = {"onnxruntime": ("onnxruntime", "onnxruntime"),
                    "openvino": ("openvino", "openvino"),
                    "openvino-bf16": ("openvino", "openvino")}
#: Engines verified in this process: (converted file, engine, its sha256) of approximate
#: engines whose outputs were compared with Keras' once.
_VERIFIED = set()


def check_engine(engine):
    """Raise OpenL3liteError unless ``engine`` is one of :data:`~openl3lite.facts.ENGINES`."""
    return check_choice("engine", engine, ENGINES)


def _require_packages(engine):
    import importlib.util

    needed = [_ENGINE_PACKAGES[engine][0], "tf2onnx"]
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise OpenL3liteError(f"engine {engine!r} needs {', '.join(missing)}: pip install "
                              "'openl3lite[export]'")


def engines_dir():
    """Folder of the converted networks: ``<cache_dir>/engines`` (not created here)."""
    from .hub import cache_dir

    return cache_dir() / "engines"


def cache_name(model, waveform_input=True):
    """File name of a model's converted network in :func:`engines_dir`.

    Parameters
    ----------
    model : AudioEmbeddingModel or ImageEmbeddingModel
    waveform_input : bool
        Audio: waveform in (DFT frontend inside) or spectrogram in.

    Returns
    -------
    str
        ``<part>-<repr>-<input>-<size>-v<graph version>-<weights sha256>.onnx``.
    """
    from . import deploy

    part = deploy.part_of(model)
    kind = ("waveform" if waveform_input else "spectrogram") if part == "audio" else "image"
    representation = model.input_repr if part == "audio" else model.image_scaling
    return (f"{part}-{representation}-{kind}-{model.embedding_size}-v{deploy.GRAPH_VERSION}-"
            f"{deploy.weights_sha256(model)}.onnx")


def _cached_file_is_sound(path):
    from . import deploy

    if not path.exists():
        return False
    sidecar = deploy.read_sidecar(path, required=False)
    return bool(sidecar) and sidecar.get("file_sha256") == deploy.file_sha256(path)


def converted_model(model, waveform_input=True):
    """The model's network as a verified ONNX file in the cache, converting it if needed.

    Returns
    -------
    pathlib.Path
        The ``.onnx`` file (its sidecar is ``<file>.json``).

    Raises
    ------
    OpenL3liteError
        If the conversion fails or does not reproduce the Keras model.
    """
    import filelock

    from . import deploy

    folder = engines_dir()
    path = folder / cache_name(model, waveform_input)
    if _cached_file_is_sound(path):
        return path
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(os.fspath(path) + ".lock")
    try:
        with lock.acquire(timeout=LOCK_TIMEOUT):
            if not _cached_file_is_sound(path):
                deploy._require_tensorflow_backend("converting a model for an engine")
                deploy.write_verified(model, "onnx", path, overwrite=True,
                                      waveform_input=waveform_input)
    except filelock.Timeout:
        raise OpenL3liteError(f"{path}: another process has been converting this model for "
                              f"over {LOCK_TIMEOUT} s (remove {path}.lock if none is)") from None
    _record_in_index(model, waveform_input, path)
    return path


# ---------------------------------------------------------------- without Keras

def _index_path(file_sha256, part, input_repr, embedding_size, waveform_input):
    kind = ("waveform" if waveform_input else "spectrogram") if part == "audio" else "image"
    representation = input_repr if part == "audio" else "any"
    return (engines_dir() / "index" /
            f"{file_sha256}-{part}-{representation}-{kind}-{embedding_size}.json")


def _record_in_index(model, waveform_input, path):
    """Note which converted network a weights file (by its sha256) gave, so that a later
    process finds it without building the Keras model (:func:`cached_engine_model`)."""
    from . import deploy
    from .output import write_json_atomic

    metadata = getattr(model, "metadata", None)
    if metadata is None or not metadata.sha256:
        return
    part = deploy.part_of(model)
    entry = _index_path(metadata.sha256, part, metadata.input_repr, model.embedding_size,
                        waveform_input)
    record = {"file": path.name, "metadata": metadata.to_dict(),
              "embedding_size": int(model.embedding_size),
              "frontend": getattr(model, "frontend", None) if part == "audio" else None}
    try:
        with open(entry, encoding="utf-8") as f:
            if json.load(f) == record:
                return
    except (OSError, ValueError):
        pass
    entry.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(entry, record)


@dataclass
class EngineModel:
    """An embedding network converted for an engine, found in the cache by the sha256 of the
    weights file it came from: what the API runs when neither Keras nor TensorFlow is needed.

    Attributes
    ----------
    path : str
        The verified ``.onnx`` file in :func:`engines_dir`.
    part : str
        ``audio`` or ``image``.
    metadata : ModelMetadata
        The source model's (name, input representation, image scaling, content type, sha256
        of its weights file).
    embedding_size : int
    frontend : str or None
        ``kapre`` for audio (waveforms in, the spectrogram inside the network); None for image.
    """

    path: str
    part: str
    metadata: object
    embedding_size: int
    frontend: str = None

    @property
    def name(self):
        """The source model's name."""
        return self.metadata.name

    @property
    def input_repr(self):
        """The audio network's input representation."""
        return self.metadata.input_repr

    @property
    def image_scaling(self):
        """How the image network wants images scaled (see :mod:`openl3lite.image`)."""
        return self.metadata.image_scaling


#: Engines :func:`cached_engine_model` serves without Keras: the converted ones, except the
#: approximate ones (checked against the Keras model when first used, so they need it).
_KERAS_FREE_ENGINES = tuple(engine for engine in ENGINES
                            if engine != DEFAULT_ENGINE and engine not in APPROXIMATE_ENGINES)


def _weights_file_facts(model, part, input_repr, content_type, frontend):
    """(sha256 of the weights file, its input representation) for the API's ``model``
    argument, or None where it is not a model name or file this path can serve."""
    from . import registry

    if model is None:
        try:
            model = registry.default_model_name(input_repr, content_type, frontend)
        except OpenL3liteError:  # the Keras path gives the error
            return None
    if not isinstance(model, (str, os.PathLike)):
        return None
    if registry.is_model_name(model):
        entry = registry.get_model(model)
        if part not in entry.parts or (input_repr not in (None, entry.input_repr)):
            return None
        sha256 = registry.part_sha256(model, part)
        return (sha256, entry.input_repr) if sha256 else None
    path = os.fspath(model)
    try:
        stat = os.stat(path)
    except OSError:
        return None
    if not S_ISREG(stat.st_mode):
        return None
    try:
        # the path as given (not resolved): an OpenL3 file's name tells its representation
        sha256, is_openl3, recorded_repr = _file_facts(os.path.abspath(path), stat.st_size,
                                                       stat.st_mtime_ns)
    except OpenL3liteError:
        return None
    file_repr = (input_repr or recorded_repr or DEFAULT_INPUT_REPR) if is_openl3 else recorded_repr
    if input_repr not in (None, file_repr):
        return None
    return sha256, file_repr


@functools.lru_cache(maxsize=64)
def _file_facts(path, size, mtime_ns):
    """(sha256, whether it is an OpenL3 weights file, the input representation it records or
    its name implies) of a weights file, read once per file version: the size and
    modification time in the key make a rewritten file read again, and repeated calls with
    the same file skip hashing it (about 20 ms for OpenL3's 18 MB audio weights)."""
    from . import weights

    if weights.is_openl3_weight_file(path):
        return weights.sha256_of(path), True, weights.openl3_file_facts(path)[0]
    return weights.sha256_of(path), False, weights.read_model_metadata(path).input_repr


def cached_engine_model(model, part, input_repr, embedding_size, frontend, content_type,
                        engine, mode=DEFAULT_MODE):
    """The converted network the API can run for its ``model`` argument without Keras.

    Parameters
    ----------
    model : None, str or os.PathLike
        The API's ``model`` argument: None (the default model), a model name or a weights
        file. Loaded models are not looked up.
    part : str
        ``audio`` or ``image``.
    input_repr, embedding_size, frontend, content_type
        The API's arguments (``frontend`` for audio only).
    engine : str
    mode : str
        ``exact`` or ``fast``; fast mode runs its trunk in Keras, so it needs the Keras model.

    Returns
    -------
    EngineModel or None
        None unless the mode is exact, ``engine`` is ``onnxruntime`` or ``openvino``, audio
        comes with the kapre frontend, and an earlier conversion of this weights file (same sha256, input
        representation and embedding size) is in the cache and sound; the caller then loads
        the Keras model, which converts (and records) the network on first use.
    """
    if (mode != "exact" or engine not in _KERAS_FREE_ENGINES
            or (part == "audio" and frontend != "kapre")):
        return None
    facts = _weights_file_facts(model, part, input_repr, content_type, frontend)
    if facts is None:
        return None
    sha256, file_repr = facts
    entry = _index_path(sha256, part, file_repr, embedding_size, True)
    try:
        with open(entry, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    path = engines_dir() / record["file"]
    if not _cached_file_is_sound(path):
        return None
    from .weights import ModelMetadata

    return EngineModel(os.fspath(path), part, ModelMetadata.from_dict(record["metadata"]),
                       int(record["embedding_size"]), record["frontend"])


@functools.lru_cache(maxsize=8)
def _compiled(path, engine, file_sha256):
    from . import deploy

    return deploy.runner(path, "onnx" if engine == "onnxruntime" else engine)


def _verified_approximation(predict, model, waveform_input, key):
    """Check an approximate engine against Keras once per process (its converted file was
    checked in float32 when it was written; its own rounding is checked here)."""
    from . import deploy

    if key not in _VERIFIED:
        report = deploy.compare(predict, model, waveform_input, extra_tolerance=BF16_TOLERANCE)
        deploy._check_report(report, f"engine {key[1]!r} on {key[0]}")
        _VERIFIED.add(key)
    return predict


def predictor(model, engine=DEFAULT_ENGINE, waveform_input=True):
    """A predict function for ``model`` on ``engine``.

    Parameters
    ----------
    model : AudioEmbeddingModel, ImageEmbeddingModel or keras.Model
        Any Keras model for ``keras``; an openl3lite embedding model for the other engines.
    engine : str
        One of :data:`~openl3lite.facts.ENGINES`.
    waveform_input : bool
        Audio: the function takes (batch, 48000) waveforms (else (batch, n_freq, n_time, 1)
        spectrograms).

    Returns
    -------
    callable
        (batch, ...) float32 array -> (batch, D) float32 array.
    """
    from .batching import keras_predict

    check_engine(engine)
    if isinstance(model, EngineModel):
        from . import deploy

        return _compiled(model.path, engine, deploy.read_sidecar(model.path)["file_sha256"])
    if engine == "keras":
        if waveform_input and len(getattr(model, "input_shape", ())) == 3:
            predict = keras_predict(model)
            return lambda windows: predict(np.asarray(windows, np.float32)[:, None, :])
        return keras_predict(model)
    from .models import AudioEmbeddingModel, ImageEmbeddingModel

    if not isinstance(model, (AudioEmbeddingModel, ImageEmbeddingModel)):
        raise OpenL3liteError(f"engine {engine!r} runs openl3lite embedding models (a model "
                              "name, a weights file or a loaded openl3lite model), not a bare "
                              f"{type(model).__name__}")
    _require_packages(engine)
    from . import deploy

    # bfloat16 keeps 8 significant bits: in the spectrogram that loses the quiet bins (0.6 of
    # the embedding's scale on speech), so an approximate engine gets the trunk only and the
    # spectrogram is computed in float32 by the model's own frontend layer
    spectrogram_first = (engine in APPROXIMATE_ENGINES and waveform_input
                         and deploy.part_of(model) == "audio")
    path = converted_model(model, waveform_input and not spectrogram_first)
    key = (os.fspath(path), engine, deploy.read_sidecar(path)["file_sha256"])
    predict = _compiled(*key)
    if spectrogram_first:
        predict = _after_float32_spectrogram(predict, model.input_repr)
    if engine in APPROXIMATE_ENGINES:
        return _verified_approximation(predict, model, waveform_input, key)
    return predict


def _after_float32_spectrogram(predict, input_repr):
    """(batch, 48000) waveforms -> the in-graph frontend's float32 dB spectrograms ->
    ``predict``."""
    import keras

    from .frontend import Spectrogram

    layer = Spectrogram(input_repr)
    return lambda windows: predict(keras.ops.convert_to_numpy(
        layer(np.asarray(windows, np.float32))))
