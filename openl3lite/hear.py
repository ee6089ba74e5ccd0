"""HEAR 2021's common API: ``load_model``, ``get_timestamp_embeddings``, ``get_scene_embeddings``.

The HEAR benchmark (Holistic Evaluation of Audio Representations) calls these three functions
on a module; ``hear-validator openl3lite.hear --model NAME_OR_FILE`` checks them. The choices
are those of OpenL3's own HEAR 2021 entry:

- the model: ``openl3-mel256-music`` with 512-D embeddings by default; any openl3lite model
  name (``l3embed models`` lists them) or model file can be given instead;
- timestamp embeddings: one 1-second window every 50 ms, centred on its timestamp (the first
  window is centred on t=0, openl3lite's ``center=True``: half a window of zeros is prepended
  and the end is zero-padded), so window ``i``'s timestamp is ``i * 50`` ms;
- scene embeddings: the mean of the embeddings of windows 0.5 s apart, with the same centring.

Timestamps are in milliseconds, embeddings float32. The functions take a batch of sounds of one
length, ``(n_sounds, n_samples)`` at 48 kHz, as a numpy array, a TensorFlow tensor or a torch
tensor, and return the same kind (a torch tensor on the input's device). The windows of all the
sounds share the network's batches; memory holds the input, the output and one batch of
windows, so a 20-minute sound (HEAR's limit) is embedded in bounded memory.

The model object is a ``tf.Module`` under Keras' TensorFlow backend and a ``torch.nn.Module``
under its torch backend (what the validator checks), holding an
:class:`openl3lite.models.AudioEmbeddingModel`.
"""

import numbers

import keras
import numpy as np

from . import checks, framing
from .api import _array_blocks, _audio_predict
from .batching import batched, prefetch
from .errors import OpenL3liteError
from .facts import (
    DEFAULT_BATCH_SIZE,
    HEAR_DEFAULT_MODEL,
    HEAR_EMBEDDING_SIZE,
    HEAR_SCENE_HOP_SIZE,
    HEAR_TIMESTAMP_HOP_SIZE,
    TARGET_SR,
)
from .models import as_audio_model

#: Milliseconds in a second (HEAR's timestamps are in ms).
_MS = 1000.0


def _module_base():
    """The framework module class the HEAR harness expects for Keras' current backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.Module
    if backend == "torch":
        import torch

        return torch.nn.Module
    return object


class HearModel(_module_base()):
    """An embedding model with HEAR's attributes.

    A ``tf.Module`` under Keras' TensorFlow backend, a ``torch.nn.Module`` (holding the Keras
    network as a submodule, so ``.to(device)`` moves it) under the torch backend, a plain
    object under JAX.

    Attributes
    ----------
    sample_rate : int
        48000 Hz: what the audio given to the functions must be sampled at.
    scene_embedding_size, timestamp_embedding_size : int
        The network's embedding size (512 or 6144 for full-width networks).
    embedding_model : AudioEmbeddingModel
        The Keras network.
    timestamp_hop_size, scene_hop_size : float
        Hops in seconds of the timestamp embeddings and of the windows a scene embedding
        averages.
    batch_size : int
        Windows per network batch (all sounds' windows share batches).
    """

    sample_rate = TARGET_SR

    def __init__(self, embedding_model, timestamp_hop_size=HEAR_TIMESTAMP_HOP_SIZE,
                 scene_hop_size=HEAR_SCENE_HOP_SIZE, batch_size=DEFAULT_BATCH_SIZE):
        super().__init__()
        self.embedding_model = embedding_model
        self.scene_embedding_size = int(embedding_model.embedding_size)
        self.timestamp_embedding_size = int(embedding_model.embedding_size)
        self.timestamp_hop_size = float(timestamp_hop_size)
        self.scene_hop_size = float(scene_hop_size)
        self.batch_size = int(batch_size)

    def __repr__(self):
        return (f"HearModel({self.embedding_model.metadata.name!r}, "
                f"embedding_size={self.timestamp_embedding_size}, "
                f"timestamp_hop_size={self.timestamp_hop_size}, "
                f"scene_hop_size={self.scene_hop_size})")


def load_model(model_file_path="", embedding_size=HEAR_EMBEDDING_SIZE,
               timestamp_hop_size=HEAR_TIMESTAMP_HOP_SIZE, scene_hop_size=HEAR_SCENE_HOP_SIZE,
               batch_size=DEFAULT_BATCH_SIZE, frontend="kapre"):
    """Load a model for the HEAR functions (HEAR's ``load_model``).

    Parameters
    ----------
    model_file_path : str or os.PathLike
        A model name (``openl3-mel256-music``, ``avdigits-mel128-w0125``; ``l3embed models``
        lists them), an openl3lite model file or an OpenL3 weights file. Empty: OpenL3's
        ``openl3-mel256-music``, as OpenL3's HEAR 2021 entry used.
    embedding_size : int
        512 (default, as OpenL3's HEAR entry) or 6144 for full-width networks.
    timestamp_hop_size : float
        Seconds between timestamp embeddings (default 0.05: HEAR suggests 50 ms at most).
    scene_hop_size : float
        Seconds between the windows a scene embedding averages (default 0.5).
    batch_size : int
        Windows per network batch; memory grows with it.
    frontend : str
        ``kapre`` (in-graph spectrogram, default) or ``librosa``.

    Returns
    -------
    HearModel
    """
    checks.check_hop_size(timestamp_hop_size, "timestamp_hop_size")
    checks.check_hop_size(scene_hop_size, "scene_hop_size")
    batch_size = checks.check_batch_size(batch_size)
    name = HEAR_DEFAULT_MODEL if model_file_path in ("", None) else model_file_path
    embedding_model = as_audio_model(name, embedding_size=embedding_size, frontend=frontend)
    return HearModel(embedding_model, timestamp_hop_size, scene_hop_size, batch_size)


# ---------------------------------------------------------------- tensors in and out

def _framework_of(audio):
    """``torch``, ``tensorflow`` or ``numpy``: which kind of array ``audio`` is (by its type's
    module, so that neither framework is imported to find out)."""
    module = type(audio).__module__.split(".")[0]
    if module == "torch":
        return "torch"
    if module in ("tensorflow", "tf_keras"):
        return "tensorflow"
    return "numpy"


def _as_numpy(audio, framework):
    if framework == "torch":
        tensor = audio.detach().cpu()
        if tensor.is_floating_point() and tensor.element_size() == 2:  # bfloat16: no numpy
            tensor = tensor.float()
        return tensor.numpy()
    if framework == "tensorflow":
        return audio.numpy()
    return np.asarray(audio)


def _like_input(array, audio, framework):
    """``array`` as the same kind of array as the input ``audio`` (on its device)."""
    if framework == "torch":
        import torch

        return torch.from_numpy(array).to(audio.device)
    if framework == "tensorflow":
        import tensorflow as tf

        return tf.convert_to_tensor(array)
    return array


def _check_audio_batch(audio, model):
    """Validate HEAR's audio argument.

    Returns
    -------
    samples : np.ndarray, floating, shape (n_sounds, n_samples)
    framework : str
    """
    if not isinstance(model, HearModel):
        raise OpenL3liteError(f"model must come from openl3lite.hear.load_model; got "
                              f"{type(model).__name__}")
    framework = _framework_of(audio)
    if framework == "numpy" and not isinstance(audio, (np.ndarray, numbers.Number, list, tuple)):
        raise OpenL3liteError(f"audio must be a numpy array, a TensorFlow tensor or a torch "
                              f"tensor; got {type(audio).__name__}")
    samples = _as_numpy(audio, framework)
    if samples.ndim != 2:
        raise OpenL3liteError(f"audio must be 2-D (n_sounds, n_samples) at {TARGET_SR} Hz; got "
                              f"shape {samples.shape}")
    if not np.issubdtype(samples.dtype, np.floating):
        raise OpenL3liteError(f"audio must be floating point samples in [-1, 1]; got dtype "
                              f"{samples.dtype} (divide integer PCM by its full scale)")
    if samples.shape[0] == 0 or samples.shape[1] == 0:
        raise OpenL3liteError(f"got empty audio of shape {samples.shape}")
    if not np.all(np.isfinite(samples)):
        bad = sorted(set(np.nonzero(~np.isfinite(samples))[0].tolist()))
        raise OpenL3liteError(f"audio contains NaN or infinite samples (sounds {bad[:10]})")
    return samples, framework


# ---------------------------------------------------------------- embedding

def embed_sounds(samples, model, hop_size, batch_size):
    """Embed a batch of equally long 48 kHz sounds, one 1-second window every ``hop_size``.

    The windows of all the sounds share the network's batches: each step takes the next
    ``batch_size // n_sounds`` windows (at least one) of every sound, framed by
    :func:`openl3lite.framing.iter_window_batches` (``center=True``), so the result equals
    :func:`openl3lite.get_audio_embedding` of each sound with ``center=True`` and this hop.
    Memory: the input, the output and one step's windows, whatever the sounds' length.

    Parameters
    ----------
    samples : np.ndarray, floating, shape (n_sounds, n_samples)
        Sounds at 48 kHz.
    model : AudioEmbeddingModel
    hop_size : float
        Seconds.
    batch_size : int
        Windows per network batch.

    Returns
    -------
    embedding : np.ndarray, float32, shape (n_sounds, n_windows, embedding_size)
    timestamps : np.ndarray, float64, shape (n_windows,)
        Window centres in seconds.
    """
    n_sounds, n_samples = samples.shape
    n_windows = framing.count_windows(n_samples, hop_size, center=True)
    per_sound = max(1, batch_size // n_sounds)
    streams = [framing.iter_window_batches(_array_blocks(sound), n_samples, hop_size, True,
                                           per_sound) for sound in samples]
    steps = (np.concatenate(group) for group in zip(*streams))  # sound-major in each step
    predict = _audio_predict(model)
    embedding = np.empty((n_sounds, n_windows, model.embedding_size), dtype=np.float32)
    start = 0
    for windows in prefetch(steps):
        step = len(windows) // n_sounds
        result = np.concatenate([np.asarray(predict(chunk), dtype=np.float32)
                                 for chunk in batched(windows, batch_size)])
        embedding[:, start : start + step] = result.reshape(n_sounds, step, -1)
        start += step
    if start != n_windows:
        raise RuntimeError(f"expected {n_windows} windows per sound, got {start}")
    return embedding, framing.window_timestamps(n_windows, hop_size)


def get_timestamp_embeddings(audio, model):
    """Embeddings at regular timestamps (HEAR's ``get_timestamp_embeddings``).

    Parameters
    ----------
    audio : np.ndarray, tf.Tensor or torch.Tensor, floating, shape (n_sounds, n_samples)
        Sounds of one length at 48 kHz (``model.sample_rate``), samples in [-1, 1].
    model : HearModel
        From :func:`load_model`.

    Returns
    -------
    embeddings : float32, shape (n_sounds, n_timestamps, model.timestamp_embedding_size)
        One per 1-second window, ``model.timestamp_hop_size`` apart (50 ms by default).
    timestamps : float32, shape (n_sounds, n_timestamps)
        The windows' centres in milliseconds: ``0, 50, 100, ...``.

    Both are the input's kind of array: numpy, TensorFlow or torch (on the input's device).

    Raises
    ------
    OpenL3liteError
        Audio that is not 2-D, not floating point, empty or not finite.
    """
    samples, framework = _check_audio_batch(audio, model)
    embedding, seconds = embed_sounds(samples, model.embedding_model, model.timestamp_hop_size,
                                      model.batch_size)
    timestamps = np.broadcast_to((seconds * _MS).astype(np.float32),
                                 embedding.shape[:2]).copy()
    return _like_input(embedding, audio, framework), _like_input(timestamps, audio, framework)


def get_scene_embeddings(audio, model):
    """One embedding per sound (HEAR's ``get_scene_embeddings``): the mean of the embeddings
    of its 1-second windows, ``model.scene_hop_size`` apart (0.5 s by default), centred as in
    :func:`get_timestamp_embeddings`.

    Parameters
    ----------
    audio : np.ndarray, tf.Tensor or torch.Tensor, floating, shape (n_sounds, n_samples)
        Sounds of one length at 48 kHz, samples in [-1, 1].
    model : HearModel

    Returns
    -------
    float32, shape (n_sounds, model.scene_embedding_size)
        The input's kind of array.
    """
    samples, framework = _check_audio_batch(audio, model)
    embedding, _ = embed_sounds(samples, model.embedding_model, model.scene_hop_size,
                                model.batch_size)
    return _like_input(embedding.mean(axis=1, dtype=np.float64).astype(np.float32), audio,
                       framework)


__all__ = [
    "HearModel",
    "embed_sounds",
    "get_scene_embeddings",
    "get_timestamp_embeddings",
    "load_model",
]
