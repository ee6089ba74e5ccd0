"""L3-Net in Keras 3: the audio and image subnetworks, embedding pooling and the AVC head.

Built from ``keras`` and ``keras.ops`` only, so it runs on the TensorFlow, JAX and PyTorch
backends. One definition serves OpenL3's weights (``width=1``) and our reduced-width models.

Audio trunk, input (freq, time, 1) dB spectrogram::

    BN -> [conv3x3 BN ReLU conv3x3 BN ReLU maxpool2] x3 (64, 128, 256 filters)
       -> conv3x3(512) BN ReLU -> conv3x3(512) "embedding conv" (no BN, no ReLU)

Image trunk, input (224, 224, 3) in [-1, 1]: the same, except that block 1's second conv is
followed by ReLU *then* BN (as in OpenL3) and pools use "same" padding.

``width`` scales the filters of every conv except the embedding conv, which keeps
``embedding_channels`` (512) filters so that embedding sizes stay OpenL3's (6144 / 512 audio,
8192 / 512 image) for every width.

AVC network (training): each trunk -> pool4 (conv4_2's BN and ReLU, then a max over all
positions, as in the paper) -> 512-D vector; concat -> fusion head FC 128 BN ReLU -> FC 2
softmax (the BN is ours, see :func:`build_fusion_head`).
Embeddings are taken before that BN and ReLU, as OpenL3 takes them.

This module builds the parts; :class:`openl3lite.l3net.L3Net` holds a whole network's parts as
attributes and composes them. Only this module reaches a layer inside a part by its name.
"""

import keras
import numpy as np
from keras import layers

from .facts import WINDOW_LEN
from .frontend import Spectrogram, spectrogram_shape

BLOCK_FILTERS = (64, 128, 256, 512)
EMBEDDING_CHANNELS = 512
IMAGE_SIZE = 224

#: Pooled cells (rows, cols) of the embedding conv's output for the large embedding.
_LARGE_CELLS = {"audio": (4, 3), "image": (4, 4)}


def embedding_sizes(modality, channels=EMBEDDING_CHANNELS):
    """Embedding sizes a trunk supports: the large pooled grid and the global max.

    Parameters
    ----------
    modality : str
        ``audio`` or ``image``.
    channels : int
        Filters of the embedding conv.

    Returns
    -------
    tuple of int
        (large, small): (6144, 512) for audio and (8192, 512) for image at 512 channels.
    """
    rows, cols = _LARGE_CELLS[modality]
    return (rows * cols * channels, channels)


def embedding_cells(modality, embedding_size, channels=EMBEDDING_CHANNELS):
    """Grid of pooled cells giving ``embedding_size`` values.

    Returns
    -------
    tuple of int
        (rows, cols); raises ValueError for an unsupported size.
    """
    large, small = embedding_sizes(modality, channels)
    if embedding_size == large:
        return _LARGE_CELLS[modality]
    if embedding_size == small:
        return (1, 1)
    raise ValueError(f"unsupported {modality} embedding_size {embedding_size}")


def scaled_filters(filters, width):
    """Filters of a conv in a network of the given width multiplier.

    Parameters
    ----------
    filters : int
        Filters at full width.
    width : float
        Width multiplier in (0, 1].

    Returns
    -------
    int
        ``round(filters * width)``, at least 4.
    """
    return max(4, int(round(filters * width)))


def _conv(filters, name):
    return layers.Conv2D(filters, 3, padding="same", name=name)


def _trunk_layers(x, width, embedding_channels, image):
    """Apply the L3-Net trunk's layers to ``x``; the order of weighted layers is OpenL3's."""
    pool_padding = "same" if image else "valid"
    x = layers.BatchNormalization(name="input_bn")(x)
    for block, full in enumerate(BLOCK_FILTERS, start=1):
        filters = scaled_filters(full, width)
        x = _conv(filters, f"conv{block}_1")(x)
        x = layers.BatchNormalization(name=f"bn{block}_1")(x)
        x = layers.ReLU(name=f"relu{block}_1")(x)
        if block == 4:
            return _conv(embedding_channels, "embedding_conv")(x)
        x = _conv(filters, f"conv{block}_2")(x)
        if image and block == 1:  # OpenL3's image block 1: ReLU before BN
            x = layers.ReLU(name=f"relu{block}_2")(x)
            x = layers.BatchNormalization(name=f"bn{block}_2")(x)
        else:
            x = layers.BatchNormalization(name=f"bn{block}_2")(x)
            x = layers.ReLU(name=f"relu{block}_2")(x)
        x = layers.MaxPooling2D(2, strides=2, padding=pool_padding, name=f"pool{block}")(x)
    raise AssertionError("unreachable")


def build_audio_trunk(input_repr="mel256", width=1.0, embedding_channels=EMBEDDING_CHANNELS):
    """The audio subnetwork from spectrogram to the embedding conv's feature map.

    The time axis is left unspecified so the same trunk runs over 1-second windows or over
    longer spans of a spectrogram.

    Parameters
    ----------
    input_repr : str
        ``linear``, ``mel128`` or ``mel256`` (fixes the frequency size).
    width : float
        Width multiplier.
    embedding_channels : int
        Filters of the last conv.

    Returns
    -------
    keras.Model
        (batch, n_freq, time, 1) float32 -> (batch, n_freq // 8, time // 8, embedding_channels).
    """
    n_freq = spectrogram_shape(input_repr)[0]
    inputs = keras.Input((n_freq, None, 1), name="spectrogram")
    outputs = _trunk_layers(inputs, width, embedding_channels, image=False)
    return keras.Model(inputs, outputs, name="audio_trunk")


def build_image_trunk(width=1.0, embedding_channels=EMBEDDING_CHANNELS):
    """The image subnetwork from a 224x224 RGB image to the embedding conv's feature map.

    Parameters
    ----------
    width : float
        Width multiplier.
    embedding_channels : int
        Filters of the last conv.

    Returns
    -------
    keras.Model
        (batch, 224, 224, 3) float32 in [-1, 1] -> (batch, 28, 28, embedding_channels).
    """
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    outputs = _trunk_layers(inputs, width, embedding_channels, image=True)
    return keras.Model(inputs, outputs, name="image_trunk")


def embedding_pool_size(feature_shape, cells):
    """Max-pool size that turns a feature map into the requested grid of cells.

    Parameters
    ----------
    feature_shape : tuple of int
        (rows, cols) of the embedding conv's output.
    cells : tuple of int
        (rows, cols) of pooled cells.

    Returns
    -------
    tuple of int
    """
    return (feature_shape[0] // cells[0], feature_shape[1] // cells[1])


def _pooled_embedding(features, feature_shape, cells):
    pool = embedding_pool_size(feature_shape, cells)
    x = layers.MaxPooling2D(pool, strides=pool, padding="same", name="embedding_pool")(features)
    return layers.Flatten(name="embedding")(x)


def build_audio_embedding_model(input_repr="mel256", embedding_size=6144, width=1.0,
                                frontend="kapre", trunk=None):
    """Audio embedding model: 1-second windows (or spectrograms) to embeddings.

    Parameters
    ----------
    input_repr : str
        ``linear``, ``mel128`` or ``mel256``.
    embedding_size : int
        6144 (max-pooled to 4x3 cells of 512 channels) or 512 (global max).
    width : float
        Width multiplier of the trunk.
    frontend : str
        ``kapre``: the model takes (batch, 1, 48000) float32 waveforms (OpenL3's layout:
        one channel of 48,000 samples) and computes the spectrogram in-graph. ``librosa``: it takes (batch, n_freq, n_time, 1) spectrograms.
    trunk : keras.Model, optional
        An existing trunk to share weights with (built fresh if None).

    Returns
    -------
    keras.Model
        Output (batch, embedding_size) float32.
    """
    trunk = trunk if trunk is not None else build_audio_trunk(input_repr, width)
    spec_shape = spectrogram_shape(input_repr)
    if frontend == "kapre":
        inputs = keras.Input((1, WINDOW_LEN), name="waveform")
        waveform = layers.Reshape((WINDOW_LEN,), name="mono")(inputs)
        spectrogram = Spectrogram(input_repr, name="spectrogram")(waveform)
    else:
        inputs = keras.Input(spec_shape, name="spectrogram")
        spectrogram = inputs
    features = trunk(spectrogram)
    feature_shape = (spec_shape[0] // 8, spec_shape[1] // 8)
    cells = embedding_cells("audio", embedding_size, trunk.output_shape[-1])
    outputs = _pooled_embedding(features, feature_shape, cells)
    return keras.Model(inputs, outputs, name=f"audio_embedding_{input_repr}_{embedding_size}")


def build_image_embedding_model(embedding_size=8192, width=1.0, trunk=None):
    """Image embedding model: 224x224 RGB images in [-1, 1] to embeddings.

    Parameters
    ----------
    embedding_size : int
        8192 (max-pooled to 4x4 cells of 512 channels) or 512 (global max).
    width : float
        Width multiplier of the trunk.
    trunk : keras.Model, optional
        An existing trunk to share weights with.

    Returns
    -------
    keras.Model
        (batch, 224, 224, 3) -> (batch, embedding_size) float32.
    """
    trunk = trunk if trunk is not None else build_image_trunk(width)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    features = trunk(inputs)
    cells = embedding_cells("image", embedding_size, trunk.output_shape[-1])
    outputs = _pooled_embedding(features, (28, 28), cells)
    return keras.Model(inputs, outputs, name=f"image_embedding_{embedding_size}")


def build_fusion_head(embedding_channels=EMBEDDING_CHANNELS):
    """The fusion head: concat(audio 512, image 512) -> FC 128 -> BN -> ReLU -> FC 2 softmax.

    The paper's head is FC 128 ReLU FC 2; the BatchNorm between FC 128 and its ReLU is ours. Its
    inputs are max-pooled ReLU outputs, all positive with a large common part, so without it most
    hidden units are inactive for every input from the start and training kills the rest
    (measured at width 0.125: 105 of 128 units dead after 200 steps, AVC at chance); with it each
    unit stays active for part of every batch.

    Returns
    -------
    keras.Model
        (batch, 2 * embedding_channels) -> (batch, 2) probabilities; index 1 = "corresponds".
    """
    inputs = keras.Input((2 * embedding_channels,), name="audio_image_vector")
    x = layers.Dense(128, name="fusion_fc1")(inputs)
    x = layers.BatchNormalization(name="fusion_bn1")(x)
    x = layers.ReLU(name="fusion_relu1")(x)
    outputs = layers.Dense(2, activation="softmax", name="fusion_fc2")(x)
    return keras.Model(inputs, outputs, name="fusion")


def build_pool4(modality, embedding_channels=EMBEDDING_CHANNELS):
    """The end of the paper's 4th block for the AVC task: conv4_2's BatchNorm and ReLU, then a
    max-pool over all positions (pool4).

    The trunks stop at conv4_2's output (OpenL3's embedding layer, before BN and ReLU); in the
    AVC network, as in the paper, BN and ReLU follow it before the global pool. Without them the
    pooled vectors barely differ between inputs and the fusion head's units die early in
    training.

    Parameters
    ----------
    modality : str
        ``audio`` or ``image`` (names the model ``<modality>_pool4``).
    embedding_channels : int

    Returns
    -------
    keras.Model
        (batch, rows, cols, C) -> (batch, C); layers ``bn4_2``, ``relu4_2``, ``pool4``.
    """
    inputs = keras.Input((None, None, embedding_channels), name=f"{modality}_conv4_2")
    x = layers.BatchNormalization(name="bn4_2")(inputs)
    x = layers.ReLU(name="relu4_2")(x)
    outputs = layers.GlobalMaxPooling2D(name="pool4")(x)
    return keras.Model(inputs, outputs, name=f"{modality}_pool4")


def pool4_activations(pool4, features):
    """conv4_2's BN and ReLU (inference mode) at every position of a feature map: what pool4
    takes the maximum of.

    Parameters
    ----------
    pool4 : keras.Model
        From :func:`build_pool4`.
    features : array-like, float32, shape (batch, rows, cols, C)
        A trunk's output.

    Returns
    -------
    np.ndarray, float32, shape (batch, rows, cols, C)
    """
    x = pool4.get_layer("bn4_2")(features, training=False)
    return keras.ops.convert_to_numpy(pool4.get_layer("relu4_2")(x))


def fusion_head_layers(fusion):
    """The weighted layers of a fusion head.

    Parameters
    ----------
    fusion : keras.Model
        From :func:`build_fusion_head`.

    Returns
    -------
    tuple of keras.layers.Layer
        ``(fc1, bn1, fc2)``: Dense(128), its BatchNormalization and the Dense(2) output layer.
    """
    return tuple(fusion.get_layer(f"fusion_{name}") for name in ("fc1", "bn1", "fc2"))


def fusion_head_arrays(fusion):
    """A fusion head's weights as numpy arrays, its BatchNorm (inference mode) folded into the
    first layer.

    Parameters
    ----------
    fusion : keras.Model
        A fusion head; its layers are read with :func:`fusion_head_layers`.

    Returns
    -------
    tuple of np.ndarray, float32
        ``(w1 (2C, 128), b1 (128,), w2 (128, 2), b2 (2,))`` with C the embedding channels: the
        head is ``softmax(relu(x @ w1 + b1) @ w2 + b2)``.
    """
    fc1, bn, fc2 = fusion_head_layers(fusion)
    w1, b1 = (np.asarray(a, np.float64) for a in fc1.get_weights())
    gamma, beta, mean, var = (np.asarray(a, np.float64) for a in bn.get_weights())
    scale = gamma / np.sqrt(var + bn.epsilon)
    w1, b1 = w1 * scale, (b1 - mean) * scale + beta
    w2, b2 = fc2.get_weights()
    return tuple(np.asarray(a, np.float32) for a in (w1, b1, w2, b2))


class PairwiseFusion(layers.Layer):
    """Apply the fusion head to every (image, audio) combination of a batch.

    Row ``i``, column ``j`` of the output scores image ``i`` against audio clip ``j``: the
    head sees ``concat(audio_vec[j], image_vec[i])``, the same order as
    :attr:`openl3lite.l3net.L3Net.avc_model`.

    Parameters
    ----------
    fusion : keras.Model
        The fusion head (:func:`build_fusion_head`), shared, not copied.
    """

    def __init__(self, fusion, **kwargs):
        super().__init__(**kwargs)
        self.fusion = fusion

    def call(self, audio_vec, image_vec):
        """(B, D) audio and (B, D) image vectors -> (B, B, 2) probabilities."""
        n = keras.ops.shape(image_vec)[0]
        depth = audio_vec.shape[-1] + image_vec.shape[-1]
        audio_grid = keras.ops.broadcast_to(audio_vec[None, :, :], (n, n, audio_vec.shape[-1]))
        image_grid = keras.ops.broadcast_to(image_vec[:, None, :], (n, n, image_vec.shape[-1]))
        pairs = keras.ops.concatenate([audio_grid, image_grid], axis=-1)
        scores = self.fusion(keras.ops.reshape(pairs, (-1, depth)))
        return keras.ops.reshape(scores, (n, n, -1))

    def compute_output_shape(self, audio_vec_shape, image_vec_shape):
        return (image_vec_shape[0], image_vec_shape[0], 2)
