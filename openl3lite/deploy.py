"""Export an embedding network for deployment: ONNX, TFLite or a TensorFlow SavedModel.

:func:`export_model` writes one network, audio (waveform in, the spectrogram frontend inside)
or image (a 224x224 scaled image in), embedding out, with a dynamic batch, plus a JSON sidecar
``<path>.json`` telling how to feed it (sample rate, window and hop conventions, image size and
scaling, embedding size, source weights' sha256). Each export is loaded back in its own runtime
(ONNX Runtime, ``ai-edge-litert``, TensorFlow) and checked against the Keras model on real audio
and images before it is put in place (:func:`verify_export`); a file that fails is removed.

Not to be confused with :mod:`openl3lite.training.export`, which turns a *training run's*
checkpoint into an openl3lite model file (``l3embed export``). Exporting needs the TensorFlow
backend and ``pip install 'openl3lite[export]'`` (tf2onnx, onnxruntime, ai-edge-litert).

The audio frontend of an export is :class:`openl3lite.frontend.DFTSpectrogram`: the same
kapre-compatible spectrogram as exact mode computes, with the STFT as a convolution by fixed DFT
kernels, which every format and runtime supports.
"""

import hashlib
import json
import os
import shutil
from importlib import resources

import numpy as np

from .errors import OpenL3liteError
from .facts import (
    EXPORT_FORMATS,
    EXPORT_PARTS,
    EXPORT_SPEECH_TOLERANCE,
    EXPORT_TOLERANCE,
    TARGET_SR,
    WINDOW_LEN,
)
from .output import (
    place_atomic,
    temporary_folder,
    write_bytes_atomic,
    write_json_atomic,
)

#: Opset of the ONNX files (ONNX Runtime 1.17+ and OpenVINO read it).
ONNX_OPSET = 17
#: Version of the exported graph's layout; part of the engine cache's key.
GRAPH_VERSION = 1
_SUFFIX = {"onnx": ".onnx", "tflite": ".tflite", "saved_model": ""}
_IMAGE_SCALING_RULES = {
    "openl3": "OpenL3 0.4.2's: an image of exactly 224x224 is used as it is; otherwise the "
              "shorter side is resized to 256 (bilinear) and the centre 224x224 cropped; "
              "unsigned integers map to [-1, 1] when no resize happened, a resized image is "
              "float in [0, 1]; a batch whose magnitude exceeds 1 is divided by its maximum "
              "magnitude",
    "symmetric": "pixels to float in [0, 1], shorter side resized to 256 (anti-aliased), centre "
                 "224x224 crop, then mapped to [-1, 1] (x * 2 - 1)",
}


# ---------------------------------------------------------------- the graph

def _require_tensorflow_backend(what):
    import keras

    if keras.backend.backend() != "tensorflow":
        raise OpenL3liteError(f"{what} needs Keras's tensorflow backend (KERAS_BACKEND="
                              f"tensorflow); this process uses {keras.backend.backend()!r}")


def part_of(model):
    """``audio`` or ``image``: which embedding network ``model`` is."""
    from .models import AudioEmbeddingModel, ImageEmbeddingModel

    if isinstance(model, AudioEmbeddingModel):
        return "audio"
    if isinstance(model, ImageEmbeddingModel):
        return "image"
    raise OpenL3liteError(f"cannot export {type(model).__name__}: expected an openl3lite "
                          "AudioEmbeddingModel or ImageEmbeddingModel")


def deployment_graph(model, waveform_input=True):
    """The network to export: a Keras model sharing ``model``'s weights.

    Parameters
    ----------
    model : AudioEmbeddingModel or ImageEmbeddingModel
    waveform_input : bool
        Audio only: take waveforms (the DFT frontend inside) or, if False, the (batch, n_freq,
        n_time, 1) spectrograms of the librosa frontend.

    Returns
    -------
    keras.Model
        Audio: (batch, 48000) float32 waveform at 48 kHz, input named ``waveform`` (or
        ``spectrogram``) -> (batch, D) float32. Image: (batch, 224, 224, 3) float32 scaled as
        the model's ``image_scaling`` says, named ``image`` -> (batch, D).
    """
    import keras

    from . import network
    from .frontend import DFTSpectrogram

    if part_of(model) == "image":
        return model
    spectrogram_model = network.build_audio_embedding_model(
        model.input_repr, model.embedding_size, frontend="librosa", trunk=model.trunk)
    if not waveform_input:
        return spectrogram_model
    waveform = keras.Input((WINDOW_LEN,), name="waveform")
    spectrogram = DFTSpectrogram(model.input_repr, name="dft_spectrogram")(waveform)
    return keras.Model(waveform, spectrogram_model(spectrogram), name="deployment_audio")


def _serving_function(graph):
    import tensorflow as tf

    name = graph.inputs[0].name.split(":")[0]
    spec = tf.TensorSpec([None] + list(graph.inputs[0].shape[1:]), tf.float32, name=name)

    @tf.function(input_signature=[spec])
    def serve(x):
        return {"embedding": graph(x, training=False)}

    return serve


def weights_sha256(model):
    """SHA-256 of a model's weights as they are in memory (names, shapes and float32 bytes).

    Returns
    -------
    str
        Hex digest; changes with any weight, unlike the source file's sha256.
    """
    digest = hashlib.sha256()
    for variable in model.weights:
        value = np.ascontiguousarray(np.asarray(variable.numpy(), dtype=np.float32))
        digest.update(variable.path.encode() + str(value.shape).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------- writing each format

def _write_onnx(serve, path):
    import tf2onnx

    tf2onnx.convert.from_function(serve, input_signature=serve.input_signature,
                                  opset=ONNX_OPSET, output_path=os.fspath(path))


def _write_tflite(serve, path):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], serve)
    write_bytes_atomic(path, converter.convert())


def _write_saved_model(serve, graph, path):
    import tensorflow as tf

    module = tf.Module()
    module.graph = graph
    module.serve = serve
    tf.saved_model.save(module, os.fspath(path), signatures={"serving_default": serve})


def _write(fmt, graph, path):
    serve = _serving_function(graph)
    if fmt == "onnx":
        _write_onnx(serve, path)
    elif fmt == "tflite":
        _write_tflite(serve, path)
    else:
        _write_saved_model(serve, graph, path)


# ---------------------------------------------------------------- running an export

def onnxruntime_session(path, threads=None):
    """An ONNX Runtime CPU session for an exported file, all graph optimisations on, no
    memory arena.

    Parameters
    ----------
    path : str or os.PathLike
    threads : int, optional
        Intra-op threads (default: ONNX Runtime's, one per physical core).

    Returns
    -------
    onnxruntime.InferenceSession
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no memory arena: with it, peak memory grew by about 800 MB a call on batches of 32
    # full-width images (activations of 400 MB a layer), and it was not faster
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = int(threads)
    return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])


#: OpenVINO's inference precision per engine name.
_OPENVINO_PRECISIONS = {"openvino": "f32", "openvino-bf16": "bf16"}


def runner(path, fmt):
    """A predict function for an exported network, in its own runtime.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.onnx`` / ``.tflite`` file or the SavedModel folder.
    fmt : str
        One of :data:`openl3lite.facts.EXPORT_FORMATS`, or ``openvino`` / ``openvino-bf16``
        (an ONNX file compiled by OpenVINO for the CPU, in float32 / in bfloat16 where the CPU
        has bfloat16 units, float32 elsewhere).

    Returns
    -------
    callable
        (batch, ...) float32 array -> (batch, D) float32 array.
    """
    path = os.fspath(path)
    if fmt == "onnx":
        session = onnxruntime_session(path)
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: np.asarray(x, np.float32)})[0]
    if fmt in _OPENVINO_PRECISIONS:
        import openvino

        compiled = openvino.Core().compile_model(path, "CPU", {
            "INFERENCE_PRECISION_HINT": _OPENVINO_PRECISIONS[fmt], "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()
        return lambda x: np.array(request.infer([np.asarray(x, np.float32)])[0])
    if fmt == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=path)

        def run_tflite(x):
            x = np.asarray(x, np.float32)
            detail = interpreter.get_input_details()[0]
            if tuple(detail["shape"]) != x.shape:
                interpreter.resize_tensor_input(detail["index"], x.shape)
                interpreter.allocate_tensors()
            interpreter.set_tensor(detail["index"], x)
            interpreter.invoke()
            return np.array(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))

        interpreter.allocate_tensors()
        return run_tflite
    if fmt == "saved_model":
        import tensorflow as tf

        serve = tf.saved_model.load(path).signatures["serving_default"]
        return lambda x: serve(tf.constant(np.asarray(x, np.float32)))["embedding"].numpy()
    raise OpenL3liteError(f"unknown format {fmt!r}")


# ---------------------------------------------------------------- verification

def _data_file(name):
    return resources.files("openl3lite").joinpath("verification_data", name)


def verification_inputs(model, waveform_input=True):
    """Real inputs to check a converted network on, by tolerance.

    Audio: a spoken digit (FSDD, shipped in the package) resampled to 48 kHz and placed in
    1-second windows at two gains and two offsets (tolerance
    :data:`~openl3lite.facts.EXPORT_SPEECH_TOLERANCE`), and two windows of white noise (every
    spectrogram bin above float32's round-off floor: :data:`~openl3lite.facts.EXPORT_TOLERANCE`).
    Image: the shipped video frame and its mirror image, scaled as the model scales, and one
    uniform-noise image (:data:`~openl3lite.facts.EXPORT_TOLERANCE`).

    Returns
    -------
    list of (str, np.ndarray float32, float)
        (label, batch as the exported network takes it, tolerance relative to the embedding's
        scale).
    """
    rng = np.random.default_rng(0)
    if part_of(model) == "image":
        from PIL import Image

        from .image import preprocess_images

        with _data_file("frame.png").open("rb") as f:
            frame = np.asarray(Image.open(f).convert("RGB"))
        frames = np.stack([frame, frame[:, ::-1]])
        noise = rng.integers(0, 256, (1,) + tuple(model.input_shape[1:]), dtype=np.uint8)
        return [("image", preprocess_images(frames, model.image_scaling).astype(np.float32),
                 EXPORT_TOLERANCE),
                ("noise", preprocess_images(noise, model.image_scaling).astype(np.float32),
                 EXPORT_TOLERANCE)]
    import soundfile as sf

    from .audio import resample

    with _data_file("speech.wav").open("rb") as f:
        samples, sr = sf.read(f, dtype="float64")
    speech = resample(samples, sr, TARGET_SR)[:WINDOW_LEN]
    windows = np.zeros((4, WINDOW_LEN), np.float64)
    for row, (gain, offset) in enumerate([(1.0, 0), (0.05, 0), (1.0, 12000), (0.5, 24000)]):
        part = speech[: WINDOW_LEN - offset]
        windows[row, offset : offset + len(part)] = gain * part
    noise = 0.1 * rng.standard_normal((2, WINDOW_LEN))
    batches = [("speech", windows, EXPORT_SPEECH_TOLERANCE[model.input_repr]),
               ("noise", noise, EXPORT_TOLERANCE)]
    if not waveform_input:
        from .frontend import librosa_spectrogram

        return [(label, librosa_spectrogram(x, model.input_repr), tol)
                for label, x, tol in batches]
    return [(label, x.astype(np.float32), tol) for label, x, tol in batches]


def _keras_reference(model, batch, waveform_input):
    if part_of(model) == "audio" and waveform_input:
        return np.asarray(model.predict_on_batch(batch[:, None, :]), np.float32)
    if part_of(model) == "audio":
        return np.asarray(deployment_graph(model, False).predict_on_batch(batch), np.float32)
    return np.asarray(model.predict_on_batch(batch), np.float32)


def compare(predict, model, waveform_input=True, extra_tolerance=0.0):
    """Compare a converted network with the Keras model on :func:`verification_inputs`.

    ``extra_tolerance`` is added to each input's tolerance (an approximate engine's own
    rounding, e.g. :data:`~openl3lite.facts.BF16_TOLERANCE`).

    Returns
    -------
    dict
        Per input label: ``max_abs_diff``, ``scale`` (max |Keras embedding|),
        ``max_rel_diff`` (their ratio), ``tolerance`` and ``ok``.
    """
    report = {}
    for label, batch, tolerance in verification_inputs(model, waveform_input):
        tolerance += extra_tolerance
        reference = _keras_reference(model, batch, waveform_input)
        got = np.asarray(predict(batch), np.float32)
        if got.shape != reference.shape or not np.all(np.isfinite(got)):
            report[label] = {"max_abs_diff": float("inf"), "scale": 0.0,
                             "max_rel_diff": float("inf"), "tolerance": tolerance, "ok": False,
                             "problem": f"output of shape {got.shape}, expected "
                                        f"{reference.shape}, or not finite"}
            continue
        max_abs = float(np.max(np.abs(got - reference)))
        scale = float(np.max(np.abs(reference))) or 1.0
        report[label] = {"max_abs_diff": max_abs, "scale": scale,
                         "max_rel_diff": max_abs / scale, "tolerance": tolerance,
                         "ok": bool(max_abs / scale <= tolerance)}
    return report


def _check_report(report, what):
    failed = {k: v for k, v in report.items() if not v["ok"]}
    if failed:
        details = "; ".join(
            v.get("problem") or f"{k}: max relative difference {v['max_rel_diff']:.3g} > "
                                f"tolerance {v['tolerance']:.3g}" for k, v in failed.items())
        raise OpenL3liteError(f"{what}: does not reproduce the Keras model ({details})")


def verify_export(path, model, fmt=None):
    """Run an exported network in its runtime and compare it with the Keras model.

    Parameters
    ----------
    path : str or os.PathLike
        An export of ``model``.
    model : AudioEmbeddingModel or ImageEmbeddingModel, or a model name or file
        What it was exported from (a name or file is loaded as the sidecar's ``part`` and
        ``embedding_size`` say).
    fmt : str, optional
        Format (read from the sidecar ``<path>.json``, or the file name, when not given).

    Returns
    -------
    dict
        :func:`compare`'s report.

    Raises
    ------
    OpenL3liteError
        If the file cannot be run or its outputs differ beyond tolerance.
    """
    path = os.fspath(path)
    sidecar = read_sidecar(path, required=False)
    fmt = fmt or (sidecar or {}).get("format") or _format_of_path(path)
    if isinstance(model, (str, os.PathLike)):
        if sidecar is None:
            raise OpenL3liteError(f"{path}: no sidecar {path}.json saying which part to check")
        model = load_part(model, sidecar["part"], sidecar["embedding_size"])
    try:
        predict = runner(path, fmt)
    except OpenL3liteError:
        raise
    except Exception as exc:
        raise OpenL3liteError(f"{path}: {fmt} runtime cannot load it: "
                              f"{type(exc).__name__}: {str(exc)[:300]}") from None
    try:
        report = compare(predict, model)
    except Exception as exc:
        raise OpenL3liteError(f"{path}: {fmt} runtime cannot run it: "
                              f"{type(exc).__name__}: {str(exc)[:300]}") from None
    _check_report(report, path)
    return report


def _format_of_path(path):
    if os.path.isdir(path):
        return "saved_model"
    for fmt, suffix in _SUFFIX.items():
        if suffix and path.endswith(suffix):
            return fmt
    raise OpenL3liteError(f"{path}: cannot tell its format; give fmt")


# ---------------------------------------------------------------- metadata

def sidecar_path(path):
    """``<path>.json``: the metadata file of an export."""
    return os.fspath(path).rstrip("/\\") + ".json"


def read_sidecar(path, required=True):
    """The metadata of an export as a dict (None if missing and not ``required``)."""
    side = sidecar_path(path)
    if not os.path.exists(side):
        if required:
            raise OpenL3liteError(f"{path}: metadata file {side} not found")
        return None
    try:
        with open(side, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise OpenL3liteError(f"{side}: unreadable metadata ({exc})") from None


def file_sha256(path):
    """Hex SHA-256 of a file, or of a folder's files (names and bytes, in sorted order)."""
    from .weights import sha256_of

    path = os.fspath(path)
    if not os.path.isdir(path):
        return sha256_of(path)
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            digest.update(os.path.relpath(full, path).encode() + b"\0")
            digest.update(sha256_of(full).encode())
    return digest.hexdigest()


def export_metadata(model, fmt, waveform_input=True):
    """The sidecar's facts about an exported network.

    Returns
    -------
    dict
        JSON-compatible: format, part, input and output names and shapes, sample rate, window
        and hop conventions or image size and scaling, embedding size, source model and its
        weights' sha256s, openl3lite version.
    """
    from . import __version__
    from .facts import DEFAULT_HOP_SIZE

    part = part_of(model)
    metadata = model.metadata
    info = {"format": fmt, "part": part, "openl3lite_version": __version__,
            "graph_version": GRAPH_VERSION, "source_model": metadata.name,
            "source_sha256": metadata.sha256 or "", "weights_sha256": weights_sha256(model),
            "embedding_size": int(model.embedding_size),
            "output": {"name": "embedding", "shape": [None, int(model.embedding_size)],
                       "dtype": "float32"}}
    if part == "audio":
        from .frontend import spectrogram_shape

        if waveform_input:
            info["input"] = {"name": "waveform", "shape": [None, WINDOW_LEN], "dtype": "float32",
                             "description": "mono 1-second windows at 48 kHz, float in [-1, 1]"}
        else:
            info["input"] = {"name": "spectrogram",
                             "shape": [None] + list(spectrogram_shape(model.input_repr)),
                             "dtype": "float32"}
        info.update(
            input_repr=model.input_repr, sample_rate=TARGET_SR, window_samples=WINDOW_LEN,
            window_seconds=WINDOW_LEN / TARGET_SR, default_hop_seconds=DEFAULT_HOP_SIZE,
            framing=(f"OpenL3's: resample to {TARGET_SR // 1000} kHz (resampy kaiser_best "
                     f"for OpenL3's results); with center=True prepend {WINDOW_LEN // 2} zeros; "
                     "zero-pad the end so every sample falls in a window (a signal shorter "
                     "than a window is padded to one); window i covers samples [i * hop, "
                     f"i * hop + {WINDOW_LEN}) with hop = int(hop_seconds * {TARGET_SR}); "
                     "its timestamp is i * hop_seconds"),
            spectrogram=("in the graph: Hann-windowed STFT, 10*log10 of the magnitude (mel: "
                         "Slaney mel filterbank on the magnitude) minus the window's maximum, "
                         "clipped at -80 dB"))
    else:
        from .network import IMAGE_SIZE

        info["input"] = {"name": "image", "shape": [None, IMAGE_SIZE, IMAGE_SIZE, 3],
                         "dtype": "float32", "layout": "NHWC, RGB"}
        info.update(image_size=IMAGE_SIZE, image_scaling=model.image_scaling,
                    image_scaling_rule=_IMAGE_SCALING_RULES.get(model.image_scaling, ""))
    return info


# ---------------------------------------------------------------- export

def check_format(fmt):
    """Raise OpenL3liteError unless ``fmt`` is one of :data:`~openl3lite.facts.EXPORT_FORMATS`."""
    from .checks import check_choice

    check_choice("format", fmt, EXPORT_FORMATS)


def load_part(model, part="audio", embedding_size=None):
    """An embedding model from a model name, a weights file or a loaded model.

    Parameters
    ----------
    model : str, os.PathLike, AudioEmbeddingModel or ImageEmbeddingModel
    part : str
        ``audio`` or ``image`` (for a name or file).
    embedding_size : int, optional
        Default 6144 (audio) or 8192 (image).

    Returns
    -------
    AudioEmbeddingModel or ImageEmbeddingModel
    """
    from .checks import check_choice
    from .models import (
        load_audio_embedding_model_from_path,
        load_image_embedding_model_from_path,
    )

    if not isinstance(model, (str, os.PathLike)):
        part_of(model)
        return model
    check_choice("part", part, EXPORT_PARTS)
    if part == "audio":
        return load_audio_embedding_model_from_path(model, None, embedding_size or 6144)
    return load_image_embedding_model_from_path(model, embedding_size or 8192)


def _atomic_place(temp, path, overwrite):
    """Move a finished file or folder ``temp`` to ``path`` (replacing it only if asked)."""
    if os.path.lexists(path) and not overwrite:
        raise OpenL3liteError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    place_atomic(temp, path)


def write_verified(model, fmt, path, overwrite=False, waveform_input=True):
    """Convert, verify and place one export with its sidecar (the core of :func:`export_model`).

    Returns
    -------
    dict
        The sidecar's content, with the ``verification`` report.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if os.path.lexists(path) and not overwrite:
        raise OpenL3liteError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    graph = deployment_graph(model, waveform_input)
    work = temporary_folder(folder)
    try:
        temp = os.path.join(work, "model" + _SUFFIX[fmt])
        try:
            _write(fmt, graph, temp)
        except Exception as exc:
            raise OpenL3liteError(f"{path}: {fmt} conversion failed: {type(exc).__name__}: "
                                  f"{str(exc)[:300]}") from None
        predict = runner(temp, fmt)
        report = compare(predict, model, waveform_input)
        _check_report(report, f"{path} ({fmt} export)")
        metadata = export_metadata(model, fmt, waveform_input)
        metadata["file_sha256"] = file_sha256(temp)
        metadata["verification"] = report
        _atomic_place(temp, path, overwrite)
        write_json_atomic(sidecar_path(path), metadata, indent=2)
        return metadata
    finally:
        shutil.rmtree(work, ignore_errors=True)


def export_model(model, format="onnx", path=None, part="audio", embedding_size=None,
                 overwrite=False):
    """Export an audio or image embedding network, verified, with a JSON sidecar.

    Parameters
    ----------
    model : str, os.PathLike, AudioEmbeddingModel or ImageEmbeddingModel
        A model name (``l3embed models`` lists them, e.g. ``openl3-mel256-music`` or
        ``avdigits-mel128-w0125``), a weights file, or a loaded embedding model.
    format : str
        ``onnx`` (verified in ONNX Runtime), ``tflite`` (in ``ai-edge-litert``) or
        ``saved_model`` (a folder, in TensorFlow).
    path : str or os.PathLike
        Output file (folder for ``saved_model``); the sidecar is ``<path>.json``.
    part : str
        ``audio`` or ``image`` (for a name or file).
    embedding_size : int, optional
        6144 / 512 (audio) or 8192 / 512 (image); default the larger.
    overwrite : bool
        Replace an existing export.

    Returns
    -------
    dict
        The sidecar's content (see :func:`export_metadata`), with ``verification``: per input
        label, the max absolute and relative differences from the Keras model.

    Raises
    ------
    OpenL3liteError
        Bad arguments, an existing ``path`` without ``overwrite``, a failed conversion, or an
        export that does not reproduce the Keras model (nothing is left at ``path`` then).
    """
    check_format(format)
    if path is None:
        raise OpenL3liteError("export_model needs an output path")
    _require_tensorflow_backend("exporting")
    model = load_part(model, part, embedding_size)
    if part_of(model) == "audio" and model.frontend != "kapre":
        raise OpenL3liteError("export takes a model with the in-graph (kapre) frontend: load "
                              "it with frontend='kapre', or pass its name or file")
    return write_verified(model, format, path, overwrite)
