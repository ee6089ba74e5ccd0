"""Embedding models: Keras models that carry their metadata, and their loaders.

:class:`AudioEmbeddingModel` and :class:`ImageEmbeddingModel` are ``keras.Model`` subclasses
(``predict``, ``summary``, ``layers``, ``save``, ``input_shape`` / ``output_shape`` work as on
any Keras model) that also know what their weights need: input representation, frontend,
image scaling, width, and the name and sha256 of the weights they were loaded from. They are
what OpenL3 0.4.2's loaders return in openl3lite, and what every function that takes a model
takes.

Loaders take OpenL3's published weights by name (``openl3-mel256-music``, fetched into the
user's cache on first use, see :mod:`openl3lite.registry`), the shipped demonstration model by
name, or a weights file: OpenL3's ``.h5`` files or our model files.
"""

import functools
import os
import re

import keras
import numpy as np

from . import network, registry, weights
from .checks import check_choice
from .errors import OpenL3liteError
from .facts import (
    AUDIO_EMBEDDING_SIZES,
    CONTENT_TYPES,
    DEFAULT_CONTENT_TYPE,
    DEFAULT_INPUT_REPR,
    FRONTENDS,
    IMAGE_EMBEDDING_SIZES,
    INPUT_REPRS,
    WINDOW_LEN,
)
from .weights import ModelMetadata


def _check_embedding_size(modality, embedding_size, channels=network.EMBEDDING_CHANNELS):
    sizes = network.embedding_sizes(modality, channels)
    if isinstance(embedding_size, bool) or embedding_size not in sizes:
        raise OpenL3liteError(
            f"invalid {modality} embedding_size {embedding_size!r}: must be one of "
            f"{', '.join(map(str, sizes))}")


def _keras_name(text):
    return re.sub(r"[^0-9A-Za-z_]", "_", text)


def _keep_untracked(model, attribute, value):
    """Set an attribute that Keras (and torch) do not track: the trunk is already one of the
    model's layers, and tracking it a second time under another name would list its weights
    twice in saved files."""
    object.__setattr__(model, attribute, value)


def _as_metadata(metadata):
    return metadata if isinstance(metadata, ModelMetadata) else ModelMetadata.from_dict(metadata)


@keras.saving.register_keras_serializable(package="openl3lite")
class AudioEmbeddingModel(keras.Model):
    """An L3-Net audio embedding network: a Keras model with its metadata.

    Input: (batch, 1, 48000) float32 waveforms at 48 kHz (``frontend="kapre"``, OpenL3's
    layout) or (batch, n_freq, n_time, 1) dB spectrograms (``frontend="librosa"``, as
    :func:`openl3lite.preprocess_audio` makes them). Output: (batch, embedding_size) float32.

    Parameters
    ----------
    metadata : ModelMetadata or dict
        Input representation, width and embedding channels select the architecture.
    embedding_size : int
        6144 or 512 for the full-width network (see :func:`openl3lite.network.embedding_sizes`).
    frontend : str
        ``kapre`` or ``librosa``.
    name : str, optional
        Keras name.
    trunk : keras.Model, optional
        An audio trunk to use (and share weights with), e.g. an
        :class:`~openl3lite.l3net.L3Net`'s; a new one if None.

    The weights are random until a loader sets them.
    """

    def __init__(self, metadata, embedding_size=6144, frontend="kapre", name=None, trunk=None,
                 **kwargs):
        metadata = _as_metadata(metadata)
        check_choice("input_repr", metadata.input_repr, INPUT_REPRS)
        check_choice("frontend", frontend, FRONTENDS)
        _check_embedding_size("audio", embedding_size, metadata.embedding_channels)
        if trunk is None:
            trunk = network.build_audio_trunk(metadata.input_repr, metadata.width,
                                              metadata.embedding_channels)
        graph = network.build_audio_embedding_model(metadata.input_repr, embedding_size,
                                                    frontend=frontend, trunk=trunk)
        # one input tensor, not a list of one: Keras' torch backend warns on every batch shape
        # that a tensor "doesn't match the expected structure" ['waveform'] otherwise
        super().__init__(graph.inputs[0], graph.outputs[0],
                         name=name or _keras_name(f"{metadata.name}_audio_{embedding_size}"),
                         **kwargs)
        self.metadata = metadata
        self.embedding_size = int(embedding_size)
        self.frontend = frontend
        _keep_untracked(self, "_trunk", trunk)

    @property
    def input_repr(self):
        """Input representation (``linear``, ``mel128`` or ``mel256``)."""
        return self.metadata.input_repr

    @property
    def trunk(self):
        """The audio trunk sub-model (spectrogram -> conv4_2 feature map)."""
        return self._trunk

    def get_config(self):
        return {"metadata": self.metadata.to_dict(), "embedding_size": self.embedding_size,
                "frontend": self.frontend, "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


@keras.saving.register_keras_serializable(package="openl3lite")
class ImageEmbeddingModel(keras.Model):
    """An L3-Net image embedding network: a Keras model with its metadata.

    Input: (batch, 224, 224, 3) float32 images scaled as the model's ``image_scaling`` says
    (see :mod:`openl3lite.image`). Output: (batch, embedding_size) float32.

    Parameters
    ----------
    metadata : ModelMetadata or dict
    embedding_size : int
        8192 or 512 for the full-width network.
    name : str, optional
    trunk : keras.Model, optional
        An image trunk to use (and share weights with); a new one if None.
    """

    def __init__(self, metadata, embedding_size=8192, name=None, trunk=None, **kwargs):
        metadata = _as_metadata(metadata)
        _check_embedding_size("image", embedding_size, metadata.embedding_channels)
        if trunk is None:
            trunk = network.build_image_trunk(metadata.width, metadata.embedding_channels)
        graph = network.build_image_embedding_model(embedding_size, trunk=trunk)
        super().__init__(graph.inputs[0], graph.outputs[0],  # one tensor: see AudioEmbeddingModel
                         name=name or _keras_name(f"{metadata.name}_image_{embedding_size}"),
                         **kwargs)
        self.metadata = metadata
        self.embedding_size = int(embedding_size)
        _keep_untracked(self, "_trunk", trunk)

    @property
    def image_scaling(self):
        """``openl3`` or ``symmetric`` (see :mod:`openl3lite.image`)."""
        return self.metadata.image_scaling

    @property
    def trunk(self):
        """The image trunk sub-model (image -> conv4_2 feature map)."""
        return self._trunk

    def get_config(self):
        return {"metadata": self.metadata.to_dict(), "embedding_size": self.embedding_size,
                "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


# ---------------------------------------------------------------- building from weights

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
    model = AudioEmbeddingModel(metadata, embedding_size, frontend)
    if isinstance(layer_weights, list):
        weights.assign_positional_weights(model.trunk, layer_weights, source)
    elif isinstance(layer_weights, dict):
        weights.assign_named_weights(model.trunk, layer_weights, source, "audio")
    return model


def build_image_model(metadata, embedding_size, layer_weights=None, source=""):
    """Build an image embedding model for ``metadata`` and optionally set its trunk weights.

    Returns
    -------
    ImageEmbeddingModel
    """
    model = ImageEmbeddingModel(metadata, embedding_size)
    if isinstance(layer_weights, list):
        weights.assign_positional_weights(model.trunk, layer_weights, source)
    elif isinstance(layer_weights, dict):
        weights.assign_named_weights(model.trunk, layer_weights, source, "image")
    return model


def _resolve_path(model_path, modality):
    """(path, name, sha256) for a weights file or a model name; a named model's file was just
    verified against its recorded sha256, which is not computed again."""
    if registry.is_model_name(model_path):
        path = registry.part_file(model_path, modality)
        return path, model_path, registry.part_sha256(model_path, modality)
    path = os.fspath(model_path)
    if not os.path.exists(path):
        raise OpenL3liteError(f"{path}: weight file not found (and not a model name; "
                              "`l3embed models` lists the names)")
    return path, os.path.basename(path), weights.sha256_of(path)


def load_audio_embedding_model_from_path(model_path, input_repr=None, embedding_size=6144,
                                         frontend="kapre"):
    """Load an audio embedding model from a weights file (OpenL3's or ours) or a model name.

    Parameters
    ----------
    model_path : str or os.PathLike
        An OpenL3 ``.h5`` weight file, an openl3lite model file, or a model name
        (``openl3-mel256-music``, ``avdigits-mel128-w0125``; ``l3embed models`` lists them).
    input_repr : str, optional
        ``linear``, ``mel128`` or ``mel256``. OpenL3's files do not record it: None reads it
        from an OpenL3 file name (``..._<repr>_<content_type>.h5``, as OpenL3 names them), else
        takes ``mel256`` as OpenL3 does; a librosa frontend needs it given. Our files record
        theirs, which a different value contradicts (error).
    embedding_size : int
        6144 or 512.
    frontend : str
        ``kapre`` (in-graph) or ``librosa`` (OpenL3's float64 frontend).

    Returns
    -------
    AudioEmbeddingModel
    """
    if input_repr is not None:
        check_choice("input_repr", input_repr, INPUT_REPRS)
    check_choice("frontend", frontend, FRONTENDS)
    _check_embedding_size("audio", embedding_size)
    path, name, sha256 = _resolve_path(model_path, "audio")
    if weights.is_openl3_weight_file(path):
        file_repr, content_type = weights.openl3_file_facts(path)
        if registry.is_model_name(model_path):
            entry = registry.get_model(model_path)
            file_repr, content_type = entry.input_repr, entry.content_type
        if input_repr is None:
            if file_repr is None and frontend == "librosa":
                raise OpenL3liteError(f"{path}: OpenL3 weight files do not record their input "
                                      "representation; a librosa frontend needs input_repr "
                                      "(linear, mel128 or mel256)")
            input_repr = file_repr or DEFAULT_INPUT_REPR
        metadata = ModelMetadata(name=name, input_repr=input_repr, frontend=frontend,
                                 image_scaling="openl3", content_type=content_type,
                                 sha256=sha256)
        return build_audio_model(metadata, embedding_size, frontend,
                                 weights.read_openl3_weights(path), path)
    metadata, parts = weights.read_model_file(path)
    if "audio" not in parts:
        raise OpenL3liteError(f"{path}: holds no audio network")
    if input_repr is not None and input_repr != metadata.input_repr:
        raise OpenL3liteError(f"{path}: these weights were trained on {metadata.input_repr!r} "
                              f"spectrograms, not {input_repr!r}")
    metadata.sha256 = sha256
    return build_audio_model(metadata, embedding_size, frontend, parts["audio"], path)


def load_image_embedding_model_from_path(model_path, embedding_size=8192):
    """Load an image embedding model from a weights file (OpenL3's or ours) or a model name.

    Parameters
    ----------
    model_path : str or os.PathLike
    embedding_size : int
        8192 or 512.

    Returns
    -------
    ImageEmbeddingModel
    """
    _check_embedding_size("image", embedding_size)
    path, name, sha256 = _resolve_path(model_path, "image")
    if weights.is_openl3_weight_file(path):
        file_repr, content_type = weights.openl3_file_facts(path)
        metadata = ModelMetadata(name=name, input_repr=file_repr or DEFAULT_INPUT_REPR,
                                 image_scaling="openl3", content_type=content_type,
                                 sha256=sha256)
        return build_image_model(metadata, embedding_size, weights.read_openl3_weights(path),
                                 path)
    metadata, parts = weights.read_model_file(path)
    if "image" not in parts:
        raise OpenL3liteError(f"{path}: holds no image network")
    metadata.sha256 = sha256
    return build_image_model(metadata, embedding_size, parts["image"], path)


# ---------------------------------------------------------------- named models

def _check_model_choice(input_repr, content_type, frontend):
    if input_repr is not None:
        check_choice("input_repr", input_repr, INPUT_REPRS)
    check_choice("content_type", content_type, CONTENT_TYPES)
    if frontend is not None:
        check_choice("frontend", frontend, FRONTENDS)


#: The model used when none is given (OpenL3 0.4.2's choice); defined in the registry, which
#: the API's Keras-free engine path reads too.
default_model_name = registry.default_model_name


def get_audio_embedding_model_path(input_repr, content_type):
    """Local path of OpenL3's audio weights for ``input_repr`` and ``content_type``, fetched
    into the cache first if needed (OpenL3 0.4.2's function of the same name).

    Returns
    -------
    str
        ``.../openl3_audio_<input_repr>_<content_type>.h5``.
    """
    return _openl3_part_file(input_repr, content_type, "audio")


def get_image_embedding_model_path(input_repr, content_type):
    """Local path of OpenL3's image weights (see :func:`get_audio_embedding_model_path`).

    Returns
    -------
    str
        ``.../openl3_image_<input_repr>_<content_type>.h5``.
    """
    return _openl3_part_file(input_repr, content_type, "image")


def _openl3_part_file(input_repr, content_type, modality):
    _check_model_choice(input_repr, content_type, None)
    return registry.part_file(registry.openl3_model_name(input_repr, content_type), modality)


def _named_audio_model(name, input_repr, embedding_size, frontend):
    entry = registry.get_model(name)
    if input_repr is not None and input_repr != entry.input_repr:
        raise OpenL3liteError(f"model {name!r} takes {entry.input_repr!r} spectrograms, not "
                              f"{input_repr!r}")
    return load_audio_embedding_model_from_path(name, entry.input_repr, embedding_size,
                                                frontend)


def load_audio_embedding_model(input_repr=None, content_type="music", embedding_size=6144,
                               frontend="kapre", name=None):
    """Load a named audio model: OpenL3's weights for ``input_repr`` / ``content_type`` by
    default (fetched on first use), as OpenL3 0.4.2's function of the same name does.

    Parameters
    ----------
    input_repr : str, optional
        ``linear``, ``mel128`` or ``mel256``; None means ``mel256`` (OpenL3's default) unless
        ``name`` is given, whose representation is then used.
    content_type : str
        ``music`` or ``env``.
    embedding_size : int
        6144 or 512.
    frontend : str
        ``kapre`` or ``librosa``.
    name : str, optional
        Any model name (``openl3lite.list_models()``), e.g. the shipped demonstration model
        ``avdigits-mel128-w0125``; overrides ``input_repr`` / ``content_type``.

    Returns
    -------
    AudioEmbeddingModel
        A new model each call.
    """
    _check_model_choice(input_repr, content_type, frontend)
    _check_embedding_size("audio", embedding_size)
    if name is None:
        name = default_model_name(input_repr, content_type, frontend)
    return _named_audio_model(name, input_repr, embedding_size, frontend)


def load_image_embedding_model(input_repr=None, content_type="music", embedding_size=8192,
                               name=None):
    """Load a named image model: OpenL3's image weights for ``input_repr`` / ``content_type``
    by default (OpenL3 trained one image network per audio representation and content type).

    Returns
    -------
    ImageEmbeddingModel
    """
    _check_model_choice(input_repr, content_type, None)
    _check_embedding_size("image", embedding_size)
    if name is None:
        name = default_model_name(input_repr, content_type)
    return load_image_embedding_model_from_path(name, embedding_size)


@functools.lru_cache(maxsize=8)
def _shared_audio_model(name, embedding_size, frontend):
    return _named_audio_model(name, None, embedding_size, frontend)


@functools.lru_cache(maxsize=4)
def _shared_image_model(name, embedding_size):
    return load_image_embedding_model_from_path(name, embedding_size)


def list_models():
    """Names of every model: the shipped ones, then OpenL3's (downloaded on first use).

    Returns
    -------
    list of str
    """
    return [entry.name for entry in registry.all_models()]


def random_audio_model(input_repr="mel256", embedding_size=6144, width=1.0, seed=0):
    """An audio embedding model with freshly initialised (random) weights: a baseline.

    Returns
    -------
    AudioEmbeddingModel
    """
    keras.utils.set_random_seed(seed)
    metadata = ModelMetadata(name=f"random-w{width:g}", input_repr=input_repr, width=width,
                             image_scaling="symmetric")
    return AudioEmbeddingModel(metadata, embedding_size, "kapre")


def random_image_model(embedding_size=8192, width=1.0, seed=0):
    """An image embedding model with random weights (symmetric scaling): a baseline.

    Returns
    -------
    ImageEmbeddingModel
    """
    keras.utils.set_random_seed(seed)
    metadata = ModelMetadata(name=f"random-w{width:g}", width=width, image_scaling="symmetric")
    return ImageEmbeddingModel(metadata, embedding_size)


# ---------------------------------------------------------------- the API's model argument

def _model_from_argument(model):
    """A model name or weights-file path given where a model is expected; refused if it is
    neither."""
    if registry.is_model_name(model) or os.path.isfile(os.fspath(model)):
        return model
    raise OpenL3liteError(f"invalid model {model!r}: not a model, a model name or a weights "
                          "file (`l3embed models` lists the names)")


def as_audio_model(model, input_repr=None, embedding_size=6144, frontend="kapre",
                   content_type=DEFAULT_CONTENT_TYPE):
    """Resolve the ``model`` argument of the audio API.

    Parameters
    ----------
    model : AudioEmbeddingModel, keras.Model, str or None
        None: the default model (:func:`default_model_name`). A string: a model name or a
        weights file. A bare Keras model is accepted if it maps (batch, 1, 48000) or
        (batch, 48000) waveforms, or (batch, F, T, 1) spectrograms, to embeddings.
    input_repr, embedding_size, frontend, content_type
        Choose the default model. A given model keeps its own frontend (a bare Keras model's
        is read off its input shape) and ``input_repr``, if given, must be its own.

    Returns
    -------
    AudioEmbeddingModel or keras.Model
        A bare Keras model comes back as it is, with ``frontend`` and ``input_repr``
        attributes set where it had none.
    """
    if model is None:
        name = default_model_name(input_repr, content_type, frontend)
        return _shared_audio_model(name, embedding_size, frontend)
    if isinstance(model, (str, os.PathLike)):
        name_or_path = _model_from_argument(model)
        if registry.is_model_name(name_or_path):
            return _shared_audio_model(name_or_path, embedding_size, frontend)
        return load_audio_embedding_model_from_path(name_or_path, input_repr, embedding_size,
                                                    frontend)
    if isinstance(model, AudioEmbeddingModel):  # its own frontend, whatever ``frontend`` says
        if input_repr is not None and input_repr != model.input_repr:
            raise OpenL3liteError(f"input_repr {input_repr!r} does not match the model's "
                                  f"{model.input_repr!r}")
        return model
    if not isinstance(model, keras.Model):
        raise OpenL3liteError(f"invalid model provided: must be a keras.Model (e.g. from "
                              f"openl3lite.models.load_audio_embedding_model), a model name or "
                              f"a weights file; got {type(model).__name__}")
    shape = tuple(model.input_shape or ())
    if shape[1:] in ((WINDOW_LEN,), (1, WINDOW_LEN)):
        model_frontend = "kapre"
    elif len(shape) == 4:
        model_frontend = "librosa"
    else:
        raise OpenL3liteError(f"invalid model input shape {shape}: an audio model takes "
                              "(batch, 1, 48000) waveforms or (batch, n_freq, n_time, 1) "
                              "spectrograms")
    if model_frontend == "librosa" and input_repr is None:
        input_repr = _repr_of_spectrogram_height(shape[1])
    return _tagged(model, frontend=model_frontend, input_repr=input_repr or DEFAULT_INPUT_REPR)


def _repr_of_spectrogram_height(n_freq):
    heights = {257: "linear", 128: "mel128", 256: "mel256"}
    if n_freq not in heights:
        raise OpenL3liteError(f"a model taking spectrograms of {n_freq} bins needs input_repr "
                              "(linear, mel128 or mel256)")
    return heights[n_freq]


def _tagged(model, **attributes):
    for key, value in attributes.items():
        if getattr(model, key, None) is None:
            setattr(model, key, value)
    return model


def as_image_model(model, embedding_size=8192, input_repr=None,
                   content_type=DEFAULT_CONTENT_TYPE):
    """Resolve the ``model`` argument of the image API (see :func:`as_audio_model`).

    Returns
    -------
    ImageEmbeddingModel or keras.Model
    """
    if model is None:
        return _shared_image_model(default_model_name(input_repr, content_type), embedding_size)
    if isinstance(model, (str, os.PathLike)):
        name_or_path = _model_from_argument(model)
        if registry.is_model_name(name_or_path):
            return _shared_image_model(name_or_path, embedding_size)
        return load_image_embedding_model_from_path(name_or_path, embedding_size)
    if isinstance(model, ImageEmbeddingModel):
        return model
    if isinstance(model, keras.Model):
        return _tagged(model, image_scaling="openl3")
    raise OpenL3liteError(f"invalid model provided: must be a keras.Model (e.g. from "
                          f"openl3lite.models.load_image_embedding_model), a model name or a "
                          f"weights file; got {type(model).__name__}")


def waveform_batch(model, windows):
    """Lay out (b, 48000) windows as ``model`` takes them: (b, 1, 48000) or (b, 48000).

    Returns
    -------
    np.ndarray, float32
    """
    windows = np.asarray(windows, dtype=np.float32)
    if len(model.input_shape) == 3:
        return windows[:, None, :]
    return windows


def warm_up(model):
    """Run a model once on zeros so that the first real batch pays no tracing cost."""
    shape = (1,) + tuple(model.input_shape[1:])
    model.predict_on_batch(np.zeros(shape, np.float32))


__all__ = ["AudioEmbeddingModel", "ImageEmbeddingModel", "load_audio_embedding_model",
           "load_audio_embedding_model_from_path", "load_image_embedding_model",
           "load_image_embedding_model_from_path", "get_audio_embedding_model_path",
           "get_image_embedding_model_path", "list_models", "random_audio_model",
           "random_image_model", "AUDIO_EMBEDDING_SIZES", "IMAGE_EMBEDDING_SIZES"]
