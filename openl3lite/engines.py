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

The audio network of an engine takes waveforms and computes the spectrogram inside
(:class:`openl3lite.frontend.DFTSpectrogram`); a model with the librosa frontend runs its
trunk on the librosa spectrograms. Fast mode always runs its trunk in Keras.
"""

import functools
import os

import numpy as np

from .checks import check_choice
from .errors import OpenL3liteError
from .facts import APPROXIMATE_ENGINES, BF16_TOLERANCE, DEFAULT_ENGINE, ENGINES

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
    return path


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
