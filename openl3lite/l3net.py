"""The whole L3-Net as one object: both subnetworks, their pool4 stages and the fusion head.

:class:`L3Net` is what training trains, ``l3embed export`` writes, ``l3embed localize`` and
``l3embed evaluate-avc`` read, in the manner of KerasHub's backbones: the architecture comes in
as constructor arguments (``input_repr``, ``width``, ``embedding_channels``), the parts are
attributes (``spectrogram``, ``audio_trunk``, ``image_trunk``, ``audio_pool4``,
``image_pool4``, ``fusion``), the metadata travels with it, and it is made by
:meth:`L3Net.random` or :meth:`L3Net.from_file` and written by :meth:`L3Net.save`. The
embedding models it makes (:meth:`L3Net.audio_embedding_model`,
:meth:`L3Net.image_embedding_model`) share its trunks, and so its weights.

It is a plain Python object holding Keras models rather than a ``keras.Model`` itself: the AVC
network has two graphs over the same parts (one pair per row, :attr:`L3Net.avc_model`, and every
frame against every clip of a batch, :meth:`L3Net.all_pairs_model`), and training compiles and
checkpoints whichever one it steps.
"""

import os

import keras

from . import network, registry, weights
from .checks import check_choice
from .errors import OpenL3liteError
from .facts import INPUT_REPRS, WINDOW_LEN
from .frontend import Spectrogram
from .models import AudioEmbeddingModel, ImageEmbeddingModel
from .weights import AVC_PARTS, ModelMetadata


class L3Net:
    """The L3-Net audio-visual correspondence network with its parts as attributes.

    Parameters
    ----------
    input_repr : str
        ``linear``, ``mel128`` or ``mel256``: the audio trunk's spectrogram.
    width : float
        Width multiplier of both trunks, in (0, 1].
    embedding_channels : int
        Filters of the embedding conv (512 in OpenL3 and our models).
    metadata : ModelMetadata, optional
        The network's record (name, image scaling, training details, sha256 of its file). By
        default a new record for random symmetric-scaling weights; a given one must describe
        the same architecture.

    Attributes
    ----------
    spectrogram : keras.layers.Layer
        (B, 48000) float32 waveforms at 48 kHz -> (B, n_freq, n_time, 1) dB spectrograms.
    audio_trunk, image_trunk : keras.Model
        Spectrogram or (B, 224, 224, 3) image in [-1, 1] -> conv4_2 feature map (B, h, w, C).
    audio_pool4, image_pool4 : keras.Model
        conv4_2's BN and ReLU, then the max over all positions: (B, h, w, C) -> (B, C).
    fusion : keras.Model
        (B, 2C) concatenated audio and image vectors -> (B, 2) probabilities, index 1 =
        corresponds.
    avc_model : keras.Model
        Inputs ``{"audio": (B, 48000) float32, "image": (B, 224, 224, 3) float32}``, output
        (B, 2) float32 probabilities: one score per (clip, frame) pair.
    metadata : ModelMetadata
    """

    def __init__(self, input_repr="mel256", width=1.0,
                 embedding_channels=network.EMBEDDING_CHANNELS, metadata=None):
        check_choice("input_repr", input_repr, INPUT_REPRS)
        if metadata is None:
            metadata = ModelMetadata(name=f"l3net-{input_repr}-w{width:g}", input_repr=input_repr,
                                     width=float(width), embedding_channels=embedding_channels,
                                     image_scaling="symmetric", content_type=None)
        _check_architecture(metadata, (input_repr, float(width), embedding_channels))
        self.metadata = metadata
        self.spectrogram = Spectrogram(input_repr, name="spectrogram")
        self.audio_trunk = network.build_audio_trunk(input_repr, width, embedding_channels)
        self.image_trunk = network.build_image_trunk(width, embedding_channels)
        self.audio_pool4 = network.build_pool4("audio", embedding_channels)
        self.image_pool4 = network.build_pool4("image", embedding_channels)
        self.fusion = network.build_fusion_head(embedding_channels)
        self.avc_model = self._pair_graph()
        self._all_pairs = None

    # ------------------------------------------------------------ construction

    @classmethod
    def from_metadata(cls, metadata):
        """A network with random weights of the architecture ``metadata`` records."""
        return cls(metadata.input_repr, metadata.width, metadata.embedding_channels, metadata)

    @classmethod
    def random(cls, input_repr="mel256", width=1.0, seed=0, name=None):
        """A network with freshly initialised weights (Keras' initialisers, seeded).

        Parameters
        ----------
        input_repr : str
        width : float
        seed : int
            Seeds Keras' initialisers (``keras.utils.set_random_seed``): the same seed gives
            the same weights.
        name : str, optional
            Recorded in the metadata; default ``random-w<width>``.

        Returns
        -------
        L3Net
        """
        keras.utils.set_random_seed(seed)
        metadata = ModelMetadata(name=name or f"random-w{width:g}", input_repr=input_repr,
                                 width=float(width), image_scaling="symmetric",
                                 content_type=None)
        return cls.from_metadata(metadata)

    @classmethod
    def from_file(cls, path, purpose="the AVC network"):
        """Load a whole network from an openl3lite model file or a shipped model's name.

        Parameters
        ----------
        path : str or os.PathLike
            A model file written by ``l3embed export`` or :meth:`save` (parts ``audio``,
            ``image``, ``audio_pool4``, ``image_pool4``, ``fusion``), or the name of a shipped
            model (``l3embed models``), whose file is verified once per process.
        purpose : str
            What needs the whole network (``localisation``, ``training``), for messages.

        Returns
        -------
        L3Net
            ``metadata.sha256`` is the file's.

        Raises
        ------
        OpenL3liteError
            The file is missing or unreadable, is an OpenL3 weight file (one subnetwork, no
            fusion head), or lacks a part.
        """
        if registry.is_model_name(path):
            name = os.fspath(path)
            path, sha256 = registry.part_file(name, "audio"), registry.part_sha256(name, "audio")
        else:
            path = os.fspath(path)
            sha256 = None
        metadata, parts = weights.read_avc_model_file(path, purpose)
        metadata.sha256 = sha256 or weights.sha256_of(path)
        net = cls.from_metadata(metadata)
        net.set_parts(parts, path)
        return net

    def save(self, path, metadata=None):
        """Write every part and the metadata as one openl3lite model file (atomically).

        Parameters
        ----------
        path : str or os.PathLike
            Destination ``.h5``; :meth:`from_file` and the embedding-model loaders read it.
        metadata : ModelMetadata, optional
            What to record instead of :attr:`metadata` (e.g. with training details); it must
            describe this architecture.
        """
        metadata = metadata or self.metadata
        _check_architecture(metadata, _architecture(self.metadata))
        weights.save_model_file(os.fspath(path), self.parts(), metadata)

    # ------------------------------------------------------------ description

    @property
    def input_repr(self):
        """The audio trunk's input representation."""
        return self.metadata.input_repr

    @property
    def width(self):
        """Width multiplier of both trunks (float)."""
        return float(self.metadata.width)

    @property
    def embedding_channels(self):
        """Filters of the embedding conv: the pool4 vectors' size."""
        return self.metadata.embedding_channels

    def parts(self):
        """The parts as a model file holds them.

        Returns
        -------
        dict of str -> keras.Model
            :data:`openl3lite.weights.AVC_PARTS` (``audio``, ``image``, ``audio_pool4``,
            ``image_pool4``, ``fusion``) -> the part.
        """
        held = {"audio": self.audio_trunk, "image": self.image_trunk,
                "audio_pool4": self.audio_pool4, "image_pool4": self.image_pool4,
                "fusion": self.fusion}
        return {part: held[part] for part in AVC_PARTS}

    def set_parts(self, parts, source):
        """Set every part's weights, BatchNorm statistics included, from a model file's arrays.

        Parameters
        ----------
        parts : dict of str -> dict of str -> list of np.ndarray
            Part -> layer name -> arrays, as :func:`openl3lite.weights.read_avc_model_file`
            returns them.
        source : str
            Where they came from, for error messages.

        Raises
        ------
        OpenL3liteError
            A part or layer is missing, or a shape differs.
        """
        for part, model in self.parts().items():
            if part not in parts:
                raise OpenL3liteError(f"{source}: holds no {part} part")
            weights.assign_named_weights(model, parts[part], source, part)

    def fusion_layers(self):
        """The fusion head's ``(fc1, bn1, fc2)`` layers (Dense 128, its BatchNorm, Dense 2)."""
        return network.fusion_head_layers(self.fusion)

    def fusion_arrays(self):
        """The fusion head as numpy arrays, BatchNorm folded in
        (:func:`openl3lite.network.fusion_head_arrays`)."""
        return network.fusion_head_arrays(self.fusion)

    # ------------------------------------------------------------ graphs over the parts

    def _inputs(self):
        return (keras.Input((WINDOW_LEN,), name="audio"),
                keras.Input((network.IMAGE_SIZE, network.IMAGE_SIZE, 3), name="image"))

    def _pooled_vectors(self):
        """The graphs' inputs and the pool4 vectors of both subnetworks over them."""
        audio_in, image_in = self._inputs()
        audio_vec = self.audio_pool4(self.audio_trunk(self.spectrogram(audio_in)))
        image_vec = self.image_pool4(self.image_trunk(image_in))
        return audio_in, image_in, audio_vec, image_vec

    def _pair_graph(self):
        audio_in, image_in, audio_vec, image_vec = self._pooled_vectors()
        joint = keras.layers.Concatenate(name="audio_image_vector")([audio_vec, image_vec])
        return keras.Model({"audio": audio_in, "image": image_in}, self.fusion(joint),
                           name="l3net_avc")

    def all_pairs_model(self):
        """Every frame of a batch against every clip of it, over the same parts (made once).

        Used for training with in-batch negatives: B corresponding (frame, clip) pairs give B
        positives and up to B * (B - 1) negatives for the cost of B forward passes per
        subnetwork.

        Returns
        -------
        keras.Model
            Same inputs as :attr:`avc_model`; output (B, B, 2) float32 probabilities, ``[i, j]``
            for image ``i`` with audio clip ``j``.
        """
        if self._all_pairs is None:
            audio_in, image_in, audio_vec, image_vec = self._pooled_vectors()
            scores = network.PairwiseFusion(self.fusion, name="pairwise_fusion")(audio_vec,
                                                                                 image_vec)
            self._all_pairs = keras.Model({"audio": audio_in, "image": image_in}, scores,
                                          name="l3net_avc_all_pairs")
        return self._all_pairs

    def predict_on_batch(self, inputs):
        """:attr:`avc_model`'s probabilities for a batch of pairs (inference mode).

        Parameters
        ----------
        inputs : dict
            ``{"audio": (B, 48000) float32, "image": (B, 224, 224, 3) float32}``.

        Returns
        -------
        np.ndarray, float32, shape (B, 2)
        """
        return self.avc_model.predict_on_batch(inputs)

    # ------------------------------------------------------------ embedding models

    def audio_embedding_model(self, embedding_size=network.EMBEDDING_CHANNELS,
                              frontend="kapre"):
        """An audio embedding model over this network's audio trunk (shared weights).

        Parameters
        ----------
        embedding_size : int
            6144 (4x3 cells of the embedding conv's channels) or 512 (their global max) at
            512 channels.
        frontend : str
            ``kapre`` (waveforms in) or ``librosa`` (spectrograms in).

        Returns
        -------
        openl3lite.models.AudioEmbeddingModel
        """
        return AudioEmbeddingModel(self.metadata, embedding_size, frontend,
                                   trunk=self.audio_trunk)

    def image_embedding_model(self, embedding_size=network.EMBEDDING_CHANNELS):
        """An image embedding model over this network's image trunk (shared weights).

        Returns
        -------
        openl3lite.models.ImageEmbeddingModel
        """
        return ImageEmbeddingModel(self.metadata, embedding_size, trunk=self.image_trunk)

    def __repr__(self):
        return (f"L3Net({self.metadata.name!r}, input_repr={self.input_repr!r}, "
                f"width={self.width:g}, embedding_channels={self.embedding_channels})")


def _architecture(metadata):
    """What fixes a network's shapes: ``(input_repr, width, embedding_channels)``."""
    return (metadata.input_repr, float(metadata.width), metadata.embedding_channels)


def _check_architecture(metadata, architecture):
    """Raise ValueError unless ``metadata`` describes ``architecture``."""
    if _architecture(metadata) != architecture:
        raise ValueError(f"the metadata describes another architecture "
                         f"{_architecture(metadata)} than this network's {architecture}")
