"""Embedding models with their metadata: building, loading OpenL3's and our weight files, and the
released default models.

An :class:`AudioEmbeddingModel` / :class:`ImageEmbeddingModel` bundles the Keras model with what
its weights need (input representation, frontend, image scaling), so a model always gets the
preprocessing it was trained with.
"""

import functools
import os
from dataclasses import dataclass

import numpy as np

from . import network, weights
from .errors import OpenL3liteError
from .frontend import FRONTENDS, INPUT_REPRS
from .weights import ModelMetadata

CONTENT_TYPES = ("music", "env")


@dataclass
class AudioEmbeddingModel:
    """An audio embedding network and how to feed it.

    Attributes
    ----------
    keras_model : keras.Model
        (batch, 48000) waveforms (``frontend="kapre"``) or (batch, F, T, 1) spectrograms
        (``frontend="librosa"``) -> (batch, embedding_size).
    metadata : ModelMetadata
    embedding_size : int
    frontend : str
    """

    keras_model: object
    metadata: ModelMetadata
    embedding_size: int
    frontend: str

    @property
    def input_repr(self):
        """Input representation (``linear``, ``mel128`` or ``mel256``)."""
        return self.metadata.input_repr

    @property
    def trunk(self):
        """The audio trunk sub-model (spectrogram -> embedding conv feature map)."""
        return self.keras_model.get_layer("audio_trunk")


@dataclass
class ImageEmbeddingModel:
    """An image embedding network and how to scale its input.

    Attributes
    ----------
    keras_model : keras.Model
        (batch, 224, 224, 3) -> (batch, embedding_size).
    metadata : ModelMetadata
    embedding_size : int
    """

    keras_model: object
    metadata: ModelMetadata
    embedding_size: int

    @property
    def image_scaling(self):
        """``openl3`` or ``symmetric`` (see :mod:`openl3lite.image`)."""
        return self.metadata.image_scaling

    @property
    def trunk(self):
        """The image trunk sub-model."""
        return self.keras_model.get_layer("image_trunk")


def check_choice(name, value, choices):
    """Raise OpenL3liteError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise OpenL3liteError(
            f"invalid {name} {value!r}: must be one of {', '.join(map(repr, choices))}")


def _check_embedding_size(modality, embedding_size, channels):
    sizes = network.embedding_sizes(modality, channels)
    if isinstance(embedding_size, bool) or embedding_size not in sizes:
        raise OpenL3liteError(
            f"invalid {modality} embedding_size {embedding_size!r}: must be one of "
            f"{', '.join(map(str, sizes))}")


def build_audio_model(metadata, embedding_size, frontend, layer_weights=None, source=""):
    """Build an audio embedding model for ``metadata`` and optionally set its trunk weights.

    Parameters
    ----------
    metadata : ModelMetadata
    embedding_size : int
    frontend : str
    layer_weights : list (positional, OpenL3) or dict (by layer name, ours), optional
    source : str
        File name for error messages.

    Returns
    -------
    AudioEmbeddingModel
    """
    check_choice("input_repr", metadata.input_repr, INPUT_REPRS)
    check_choice("frontend", frontend, FRONTENDS)
    _check_embedding_size("audio", embedding_size, metadata.embedding_channels)
    trunk = network.build_audio_trunk(metadata.input_repr, metadata.width,
                                      metadata.embedding_channels)
    if isinstance(layer_weights, list):
        weights.assign_positional_weights(trunk, layer_weights, source)
    elif isinstance(layer_weights, dict):
        weights.assign_named_weights(trunk, layer_weights, source, "audio")
    keras_model = network.build_audio_embedding_model(
        metadata.input_repr, embedding_size, frontend=frontend, trunk=trunk)
    return AudioEmbeddingModel(keras_model, metadata, embedding_size, frontend)


def build_image_model(metadata, embedding_size, layer_weights=None, source=""):
    """Build an image embedding model for ``metadata`` and optionally set its trunk weights.

    Returns
    -------
    ImageEmbeddingModel
    """
    _check_embedding_size("image", embedding_size, metadata.embedding_channels)
    trunk = network.build_image_trunk(metadata.width, metadata.embedding_channels)
    if isinstance(layer_weights, list):
        weights.assign_positional_weights(trunk, layer_weights, source)
    elif isinstance(layer_weights, dict):
        weights.assign_named_weights(trunk, layer_weights, source, "image")
    keras_model = network.build_image_embedding_model(embedding_size, trunk=trunk)
    return ImageEmbeddingModel(keras_model, metadata, embedding_size)


def load_audio_embedding_model_from_path(model_path, input_repr=None, embedding_size=6144,
                                         frontend="kapre"):
    """Load an audio embedding model from a weight file: OpenL3's or ours.

    Parameters
    ----------
    model_path : str or os.PathLike
        OpenL3 ``.h5`` weight file (then ``input_repr`` is required: OpenL3's files do not
        record it) or an openl3lite model file (its recorded representation is used).
    input_repr : str, optional
        ``linear``, ``mel128`` or ``mel256``.
    embedding_size : int
        6144 or 512.
    frontend : str
        ``kapre`` (in-graph) or ``librosa`` (OpenL3's float64 frontend).

    Returns
    -------
    AudioEmbeddingModel
    """
    path = os.fspath(model_path)
    if input_repr is not None:
        check_choice("input_repr", input_repr, INPUT_REPRS)
    check_choice("frontend", frontend, FRONTENDS)
    if weights.is_openl3_weight_file(path):
        if input_repr is None:
            raise OpenL3liteError(f"{path}: OpenL3 weight files do not record their input "
                                  "representation; pass input_repr (linear, mel128 or mel256)")
        metadata = ModelMetadata(name=os.path.basename(path), input_repr=input_repr,
                                 frontend=frontend, image_scaling="openl3")
        return build_audio_model(metadata, embedding_size, frontend,
                                 weights.read_openl3_weights(path), path)
    metadata, parts = weights.read_model_file(path)
    if "audio" not in parts:
        raise OpenL3liteError(f"{path}: holds no audio network")
    if input_repr is not None and input_repr != metadata.input_repr:
        raise OpenL3liteError(f"{path}: these weights were trained on {metadata.input_repr!r} "
                              f"spectrograms, not {input_repr!r}")
    return build_audio_model(metadata, embedding_size, frontend, parts["audio"], path)


def load_image_embedding_model_from_path(model_path, embedding_size=8192):
    """Load an image embedding model from OpenL3's weight file or ours.

    Parameters
    ----------
    model_path : str or os.PathLike
    embedding_size : int
        8192 or 512.

    Returns
    -------
    ImageEmbeddingModel
    """
    path = os.fspath(model_path)
    if weights.is_openl3_weight_file(path):
        metadata = ModelMetadata(name=os.path.basename(path), image_scaling="openl3")
        return build_image_model(metadata, embedding_size, weights.read_openl3_weights(path), path)
    metadata, parts = weights.read_model_file(path)
    if "image" not in parts:
        raise OpenL3liteError(f"{path}: holds no image network")
    return build_image_model(metadata, embedding_size, parts["image"], path)


def _check_content_type(content_type):
    check_choice("content_type", content_type, CONTENT_TYPES)


@functools.lru_cache(maxsize=8)
def _cached_audio_model(name, input_repr, embedding_size, frontend):
    path = weights.released_model_path(name)
    return load_audio_embedding_model_from_path(path, input_repr, embedding_size, frontend)


@functools.lru_cache(maxsize=4)
def _cached_image_model(name, embedding_size):
    path = weights.released_model_path(name)
    return load_image_embedding_model_from_path(path, embedding_size)


def load_audio_embedding_model(input_repr=None, content_type="music", embedding_size=6144,
                               frontend="kapre", name=None):
    """Load a released audio model shipped with the package (the default one if no name).

    Parameters
    ----------
    input_repr : str, optional
        Must match the model's if given; None takes the model's.
    content_type : str
        ``music`` or ``env``; validated for OpenL3 compatibility. Our released models are not
        split by content type (their model cards say what they were trained on).
    embedding_size : int
        6144 or 512.
    frontend : str
        ``kapre`` or ``librosa``.
    name : str, optional
        A released model's name (``openl3lite.list_models()``).

    Returns
    -------
    AudioEmbeddingModel
    """
    _check_content_type(content_type)
    if input_repr is not None:
        check_choice("input_repr", input_repr, INPUT_REPRS)
    check_choice("frontend", frontend, FRONTENDS)
    _check_embedding_size("audio", embedding_size, network.EMBEDDING_CHANNELS)
    name = name or weights.load_registry().get("default")
    if input_repr is None:
        input_repr = weights.read_model_metadata(weights.released_model_path(name)).input_repr
    return _cached_audio_model(name, input_repr, embedding_size, frontend)


def load_image_embedding_model(input_repr=None, content_type="music", embedding_size=8192,
                               name=None):
    """Load a released image model shipped with the package (the default one if no name).

    ``input_repr`` and ``content_type`` are accepted for OpenL3 compatibility (OpenL3's image
    weights depend on them; ours do not).

    Returns
    -------
    ImageEmbeddingModel
    """
    _check_content_type(content_type)
    if input_repr is not None:
        check_choice("input_repr", input_repr, INPUT_REPRS)
    _check_embedding_size("image", embedding_size, network.EMBEDDING_CHANNELS)
    return _cached_image_model(name or weights.load_registry().get("default"), embedding_size)


def list_models():
    """Names of the released models shipped with the package, the default first.

    Returns
    -------
    list of str
    """
    registry = weights.load_registry()
    names = sorted(registry.get("models", {}))
    default = registry.get("default")
    if default in names:
        names.remove(default)
        names.insert(0, default)
    return names


def random_audio_model(input_repr="mel256", embedding_size=6144, width=1.0, seed=0):
    """An audio embedding model with freshly initialised (random) weights: a baseline.

    Returns
    -------
    AudioEmbeddingModel
    """
    import keras

    keras.utils.set_random_seed(seed)
    metadata = ModelMetadata(name=f"random-w{width}", input_repr=input_repr, width=width,
                             image_scaling="symmetric")
    return build_audio_model(metadata, embedding_size, "kapre")


def random_image_model(embedding_size=8192, width=1.0, seed=0):
    """An image embedding model with random weights (symmetric scaling): a baseline.

    Returns
    -------
    ImageEmbeddingModel
    """
    import keras

    keras.utils.set_random_seed(seed)
    metadata = ModelMetadata(name=f"random-w{width}", width=width, image_scaling="symmetric")
    return build_image_model(metadata, embedding_size)


def as_audio_model(model, input_repr, embedding_size, frontend):
    """Resolve the ``model`` argument of the audio API.

    Parameters
    ----------
    model : AudioEmbeddingModel, keras.Model or None
        None loads the default released model. A bare Keras model is accepted if it maps
        (batch, 48000) waveforms or (batch, F, T, 1) spectrograms to embeddings.

    Returns
    -------
    AudioEmbeddingModel
    """
    if model is None:
        return load_audio_embedding_model(input_repr, "music", embedding_size, frontend)
    if isinstance(model, AudioEmbeddingModel):
        if input_repr is not None and input_repr != model.input_repr:
            raise OpenL3liteError(f"input_repr {input_repr!r} does not match the model's "
                                  f"{model.input_repr!r}")
        return model
    shape = tuple(getattr(model, "input_shape", ()) or ())
    if len(shape) == 2 and shape[1] == 48000:
        guessed_frontend = "kapre"
    elif len(shape) == 4:
        guessed_frontend = "librosa"
    else:
        raise OpenL3liteError(f"model must be an openl3lite audio model or a Keras model taking "
                              f"waveforms or spectrograms; got input shape {shape}")
    if input_repr is None:
        freq = shape[1] if len(shape) == 4 else None
        input_repr = {257: "linear", 128: "mel128", 256: "mel256"}.get(freq, "mel256")
    metadata = ModelMetadata(name="keras", input_repr=input_repr, frontend=guessed_frontend)
    return AudioEmbeddingModel(model, metadata, int(model.output_shape[-1]), guessed_frontend)


def as_image_model(model, embedding_size):
    """Resolve the ``model`` argument of the image API (see :func:`as_audio_model`).

    Returns
    -------
    ImageEmbeddingModel
    """
    if model is None:
        return load_image_embedding_model(embedding_size=embedding_size)
    if isinstance(model, ImageEmbeddingModel):
        return model
    if hasattr(model, "predict") and hasattr(model, "output_shape"):
        return ImageEmbeddingModel(model, ModelMetadata(name="keras"),
                                   int(model.output_shape[-1]))
    raise OpenL3liteError("model must be an openl3lite image model or a Keras model")


def warm_up(model):
    """Run a model once on zeros so that the first real batch pays no tracing cost."""
    shape = (1,) + tuple(model.keras_model.input_shape[1:])
    model.keras_model.predict_on_batch(np.zeros(shape, np.float32))
