"""Weight files: OpenL3's legacy Keras HDF5 files and our own model files (the named models
that use them are in :mod:`openl3lite.registry`).

Our model file is one HDF5 file holding any of the parts ``audio`` (audio trunk), ``image``
(image trunk), ``audio_pool4`` / ``image_pool4`` (conv4_2's BN and ReLU before the AVC pooling)
and ``fusion`` (AVC head), each as ``<part>/<layer name>/<index>`` datasets, and
the model's metadata (JSON in the root attribute ``openl3lite``): input representation, width,
frontend and image scaling, so a model always gets the preprocessing it was trained with.
"""

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import OpenL3liteError

FORMAT_VERSION = 1

#: How images are scaled for a model. ``openl3``: OpenL3 0.4.2's exact (inconsistent) rules,
#: for OpenL3's weights. ``symmetric``: shorter side resized to 256 (anti-aliased), centre
#: 224 crop, values mapped to [-1, 1] -- what our training uses.
IMAGE_SCALINGS = ("openl3", "symmetric")


@dataclass
class ModelMetadata:
    """What a set of weights needs to be used correctly.

    Attributes
    ----------
    name : str
        Model name (``openl3`` for OpenL3's files).
    input_repr : str
        Audio input representation the audio trunk was trained on.
    width : float
        Width multiplier of the trunks.
    embedding_channels : int
        Filters of the embedding conv.
    frontend : str
        Audio frontend: ``kapre`` (in-graph) or ``librosa``.
    image_scaling : str
        One of :data:`IMAGE_SCALINGS`.
    content_type : str or None
        OpenL3's ``music`` / ``env``, or None for our models.
    extra : dict
        Anything else (training details), kept as is.
    sha256 : str or None
        SHA-256 of the weights file the model was loaded from (set when loading; not stored in
        the file itself).
    """

    name: str = "openl3"
    input_repr: str = "mel256"
    width: float = 1.0
    embedding_channels: int = 512
    frontend: str = "kapre"
    image_scaling: str = "openl3"
    content_type: str = None
    extra: dict = field(default_factory=dict)
    sha256: str = None

    def to_dict(self):
        """The fields as a JSON-compatible dict."""
        return asdict(self)

    def to_json(self):
        """Serialise to a JSON string."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data):
        """Build from :meth:`to_dict`'s dict, ignoring unknown keys."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @classmethod
    def from_json(cls, text):
        """Parse what :meth:`to_json` wrote, ignoring unknown keys."""
        return cls.from_dict(json.loads(text))


def _h5py():
    import h5py

    return h5py


def is_openl3_weight_file(path):
    """Whether ``path`` is a legacy Keras HDF5 weight file as OpenL3 publishes them.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    bool
    """
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as f:
            return "layer_names" in f.attrs and "openl3lite" not in f.attrs
    except OSError:
        return False


#: OpenL3's weight files are named ``..._<input_repr>_<content_type>[-...].h5``; OpenL3's
#: loader documents that the configuration is read from the name.
_OPENL3_FILE_NAME = re.compile(r"_(linear|mel128|mel256)_(music|env)(?:[-.]|$)")


def openl3_file_facts(path):
    """The input representation and content type an OpenL3 weight file's name gives.

    Returns
    -------
    tuple
        ``(input_repr, content_type)``, each None when the name does not say.
    """
    match = _OPENL3_FILE_NAME.search(os.path.basename(os.fspath(path)))
    return (match.group(1), match.group(2)) if match else (None, None)


def read_openl3_weights(path):
    """Read the weighted layers of an OpenL3 weight file, in model order.

    Keras loads these files by position (``by_name=False``), so names are ignored: the n-th
    group with weights goes to the n-th weighted layer.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    list of list of np.ndarray
        For each weighted layer, its arrays in stored order (conv: kernel (3, 3, in, out) and
        bias; batch norm: gamma, beta, moving mean, moving variance), float32.

    Raises
    ------
    OpenL3liteError
        If the file is missing or not in that format.
    """
    h5py = _h5py()
    path = os.fspath(path)
    if not os.path.exists(path):
        raise OpenL3liteError(f"{path}: weight file not found")
    try:
        with h5py.File(path, "r") as f:
            if "layer_names" not in f.attrs:
                raise OpenL3liteError(f"{path}: not a Keras HDF5 weight file (no layer_names)")
            group = f["model_weights"] if "model_weights" in f else f
            layers = []
            for raw_name in f.attrs["layer_names"]:
                name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
                layer = group[name]
                names = [n.decode() if isinstance(n, bytes) else str(n)
                         for n in layer.attrs.get("weight_names", [])]
                if names:
                    layers.append([np.asarray(layer[n], dtype=np.float32) for n in names])
            return layers
    except OSError as exc:
        raise OpenL3liteError(f"{path}: not a readable HDF5 weight file ({exc})") from None


def weighted_layers(model):
    """Layers of a (possibly nested) Keras model that hold weights, in model order.

    Returns
    -------
    list of keras.layers.Layer
    """
    found = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            found.extend(weighted_layers(layer))
        elif layer.weights:
            found.append(layer)
    return found


def assign_positional_weights(model, layer_weights, source):
    """Set a model's weights from per-layer arrays given in model order.

    Parameters
    ----------
    model : keras.Model
    layer_weights : list of list of np.ndarray
    source : str
        File name for error messages.

    Raises
    ------
    OpenL3liteError
        If the number of layers or any shape differs.
    """
    targets = weighted_layers(model)
    if len(targets) != len(layer_weights):
        raise OpenL3liteError(
            f"{source}: holds {len(layer_weights)} weighted layers, the model has {len(targets)}")
    for layer, arrays in zip(targets, layer_weights):
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(a.shape) for a in arrays]
        if expected != got:
            raise OpenL3liteError(
                f"{source}: layer {layer.name} expects shapes {expected}, file has {got}")
        layer.set_weights(arrays)


#: The parts of a full model file (``l3embed export``), as :meth:`openl3lite.l3net.L3Net.parts`
#: names them: both trunks, their pool4 stages (conv4_2's BN and ReLU, which the AVC network
#: applies before pooling) and the fusion head.
AVC_PARTS = ("audio", "image", "audio_pool4", "image_pool4", "fusion")


def save_model_file(path, parts, metadata):
    """Write our model file atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination (``.h5``).
    parts : dict of str -> keras.Model
        Any of ``audio``, ``image`` (trunks), ``audio_pool4``, ``image_pool4`` (conv4_2's BN of
        the AVC network) and ``fusion`` (AVC head).
    metadata : ModelMetadata
    """
    from .output import atomic_path

    h5py = _h5py()
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["openl3lite"] = metadata.to_json()
        f.attrs["format_version"] = FORMAT_VERSION
        for part, model in parts.items():
            group = f.create_group(part)
            for layer in weighted_layers(model):
                layer_group = group.create_group(layer.name)
                for index, value in enumerate(layer.get_weights()):
                    layer_group.create_dataset(str(index), data=np.asarray(value, np.float32))


def read_model_file(path):
    """Read our model file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    metadata : ModelMetadata
    parts : dict of str -> dict of str -> list of np.ndarray
        For each part, layer name -> its arrays.
    """
    h5py = _h5py()
    path = os.fspath(path)
    if not os.path.exists(path):
        raise OpenL3liteError(f"{path}: model file not found")
    try:
        with h5py.File(path, "r") as f:
            if "openl3lite" not in f.attrs:
                raise OpenL3liteError(f"{path}: not an openl3lite model file")
            metadata = ModelMetadata.from_json(f.attrs["openl3lite"])
            parts = {}
            for part in f:
                parts[part] = {name: [np.asarray(f[part][name][str(i)])
                                      for i in range(len(f[part][name]))]
                               for name in f[part]}
            return metadata, parts
    except OSError as exc:
        raise OpenL3liteError(f"{path}: not a readable model file ({exc})") from None


def read_model_metadata(path):
    """Read only the metadata of our model file (see :func:`read_model_file`)."""
    h5py = _h5py()
    try:
        with h5py.File(os.fspath(path), "r") as f:
            if "openl3lite" not in f.attrs:
                raise OpenL3liteError(f"{os.fspath(path)}: not an openl3lite model file")
            return ModelMetadata.from_json(f.attrs["openl3lite"])
    except OSError as exc:
        raise OpenL3liteError(f"{os.fspath(path)}: not a readable model file ({exc})") from None


def assign_named_weights(model, layer_arrays, source, part):
    """Set a model's weights from layer name -> arrays (our format).

    Raises
    ------
    OpenL3liteError
        If a layer is missing from the file or a shape differs.
    """
    for layer in weighted_layers(model):
        if layer.name not in layer_arrays:
            raise OpenL3liteError(f"{source}: part {part!r} has no weights for layer {layer.name}")
        arrays = layer_arrays[layer.name]
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(a.shape) for a in arrays]
        if expected != got:
            raise OpenL3liteError(
                f"{source}: layer {layer.name} expects shapes {expected}, file has {got}")
        layer.set_weights(arrays)


def refuse_openl3_weight_file(path, purpose):
    """Raise if ``path`` is an OpenL3 weight file where ``purpose`` needs a fusion head.

    Parameters
    ----------
    path : str
    purpose : str
        What needs the whole AVC network (``localisation``, ``training``), for the message.

    Raises
    ------
    OpenL3liteError
    """
    if is_openl3_weight_file(path):
        raise OpenL3liteError(
            f"{path}: an OpenL3 weight file holds one subnetwork and no fusion head; "
            f"{purpose} needs a model file written by `l3embed export` (both subnetworks, "
            "their pool4 stages and the fusion head)")


def read_avc_model_file(path, purpose):
    """Read a model file that must hold the whole AVC network (every part of :data:`AVC_PARTS`).

    Parameters
    ----------
    path : str
    purpose : str
        What needs it (``localisation``, ``training``), for messages.

    Returns
    -------
    metadata : ModelMetadata
    parts : dict of str -> dict of str -> list of np.ndarray
        As :func:`read_model_file` returns them.

    Raises
    ------
    OpenL3liteError
        If the file is missing or unreadable, is an OpenL3 weight file or lacks a part.
    """
    refuse_openl3_weight_file(path, purpose)
    metadata, parts = read_model_file(path)
    missing = [part for part in AVC_PARTS if part not in parts]
    if missing:
        raise OpenL3liteError(
            f"{path}: holds no {' and no '.join(missing)} part; {purpose} needs the audio "
            "and image subnetworks, their pool4 stages and the fusion head, as `l3embed export` "
            "writes them (files exported before pool4 had BN and ReLU must be exported again)")
    return metadata, parts


def sha256_of(path):
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
