"""The network a run trains: the fusion head's starting weights, the compiled training model,
and the model file a run may start from (fine-tuning)."""

import os

import numpy as np

from ..errors import OpenL3liteError
from .config import ARCHITECTURE_KEYS
from .runtime import resolve_jit_compile


def zero_output_layer(net):
    """Start the fusion head's output layer at zero: every pair starts at p = 0.5.

    With a random output layer the head's initial outputs are noise, and the first thing
    training does is silence it, mostly by driving the 128 hidden ReLUs dead (measured: 81 of 128
    dead after 200 steps at width 0.125), after which the head can hardly learn. From zero, the
    output layer's first gradient is the difference between the hidden units' mean activity on
    corresponding and on non-corresponding pairs: the correspondence signal itself.

    Parameters
    ----------
    net : openl3lite.l3net.L3Net
        Changed in place.
    """
    output = net.fusion_layers()[-1]
    for variable in output.weights:
        variable.assign(np.zeros(tuple(variable.shape), "float32"))


def matching_head_init(net, scale=0.1, seed=0):
    """Start the fusion head as a distance between the audio and the image vector.

    The head keeps the paper's shape (FC 128, BN, ReLU, FC 2); only its starting weights change.
    Hidden unit ``2k`` computes ``r_k . (audio - image)`` and unit ``2k + 1`` its negative, for 64
    random orthonormal directions ``r_k``, so after BN and ReLU the pair of units holds
    ``|r_k . (audio - image)|``; the output layer scores "corresponds" by minus their sum (and
    the bias puts the average pair at p = 0.5). From the first step, then, a corresponding pair is
    pulled together and a non-corresponding one pushed apart in those directions: the
    correspondence signal reaches both subnetworks without waiting for the head to discover which
    audio features go with which image features, which a randomly started head does slowly when
    the random features carry little of the content (the AV digits corpus on a CPU: AVC at
    chance for thousands of steps).

    Parameters
    ----------
    net : openl3lite.l3net.L3Net
        Changed in place.
    scale : float
        Output weight per hidden unit: the logit difference's spread at the start is about
        ``2 * scale * 4.8``.
    seed : int
    """
    hidden, _, output = net.fusion_layers()
    kernel = hidden.kernel
    depth, units = (int(d) for d in kernel.shape)
    channels = depth // 2
    pairs = units // 2
    rng = np.random.default_rng(seed)
    if channels >= pairs:  # orthonormal directions in the embedding space
        directions = np.linalg.qr(rng.standard_normal((channels, channels)))[0][:, :pairs]
    else:  # more directions than dimensions (width < 0.125): random unit vectors
        directions = rng.standard_normal((channels, pairs))
        directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    weights = np.zeros((depth, units), "float32")
    weights[:channels, 0::2] = directions      # audio half of the concatenation
    weights[channels:, 0::2] = -directions     # image half
    weights[:, 1::2] = -weights[:, 0::2]
    kernel.assign(weights)
    hidden.bias.assign(np.zeros(units, "float32"))
    mean_abs = np.sqrt(2.0 / np.pi) * pairs    # E sum |z| for z ~ N(0, 1) after BN
    out_kernel = np.zeros((units, 2), "float32")
    out_kernel[:, 0], out_kernel[:, 1] = scale, -scale
    output.kernel.assign(out_kernel)
    output.bias.assign(np.array([-scale * mean_abs, scale * mean_abs], "float32"))


def build_models(config):
    """The compiled training model of a config and the network it trains.

    Parameters
    ----------
    config : TrainConfig

    Returns
    -------
    train_model : keras.Model
        What the optimizer steps, compiled with AdamW (its variables created), sparse
        categorical cross-entropy and accuracy. With ``negatives="sampled"`` it is
        ``net.avc_model``; with ``"in-batch"`` it is ``net.all_pairs_model()``, over the same
        parts, which outputs the (B, B, 2) scores of every frame-clip combination. Checkpoints
        hold its variables.
    net : openl3lite.l3net.L3Net
        The network (random weights, head started as ``config.head_init`` says); its
        ``avc_model`` (inputs ``{"audio": (B, 48000) float32, "image": (B, 224, 224, 3)
        float32}``, output (B, 2) softmax) is compiled with the same loss and metric for
        evaluation on pairs.
    """
    import keras

    from ..l3net import L3Net

    jit_compile = resolve_jit_compile(config.jit_compile)
    net = L3Net.random(config.input_repr, config.width, seed=config.seed)
    if config.head_init == "matching":
        matching_head_init(net, seed=config.seed)
    else:
        zero_output_layer(net)
    avc_model = net.avc_model
    train_model = net.all_pairs_model() if config.negatives == "in-batch" else avc_model
    optimizer = keras.optimizers.AdamW(learning_rate=config.learning_rate,
                                       weight_decay=config.weight_decay)
    # in-batch steps weigh positives and negatives 50/50: the accuracy must use those weights
    accuracy = ({"weighted_metrics": ["accuracy"]} if train_model is not avc_model
                else {"metrics": ["accuracy"]})
    train_model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                        jit_compile=jit_compile, **accuracy)
    optimizer.build(train_model.trainable_variables)
    if avc_model is not train_model:
        avc_model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                          jit_compile=jit_compile)
    return train_model, net


def initial_model_metadata(model_path):
    """The metadata of a model file a run is to start from.

    Parameters
    ----------
    model_path : str

    Returns
    -------
    ModelMetadata

    Raises
    ------
    OpenL3liteError
        The file is missing, empty, a folder, unreadable, or an OpenL3 weight file (one
        subnetwork, no fusion head).
    """
    from .. import weights
    from ..errors import check_input_file

    model_path = check_input_file(model_path)
    weights.refuse_openl3_weight_file(model_path, "training")
    return weights.read_model_metadata(model_path)


def read_initial_weights(model_path, config):
    """Read and check the model file a new run starts from (fine-tuning).

    Parameters
    ----------
    model_path : str
        A model file written by ``l3embed export`` (or a released model), with the
        architecture of ``config``.
    config : TrainConfig

    Returns
    -------
    parts : dict of str -> dict of str -> list of np.ndarray
        Every part of the AVC network (both trunks, their pool4 stages, the fusion head), layer
        name -> arrays; for :meth:`openl3lite.l3net.L3Net.set_parts`.
    record : dict
        What the run starts from, kept in its state and exported metadata (``init_from``):
        ``path`` (absolute), ``sha256``, ``name`` and ``training_steps`` (of the file's own
        training; None if it does not say).

    Raises
    ------
    OpenL3liteError
        The file is missing, empty, a folder or unreadable, is an OpenL3 weight file (one
        subnetwork, no fusion head), lacks a part, or has another input representation or
        width.
    """
    from .. import weights
    from ..errors import check_input_file

    model_path = check_input_file(model_path)
    metadata, parts = weights.read_avc_model_file(model_path, "training")
    for key in ARCHITECTURE_KEYS:
        if getattr(metadata, key) != getattr(config, key):
            raise OpenL3liteError(
                f"{model_path}: has {key}={getattr(metadata, key)!r}, the run asks for "
                f"{key}={getattr(config, key)!r}; train with the file's {key}")
    record = {"path": os.path.abspath(model_path), "sha256": weights.sha256_of(model_path),
              "name": metadata.name, "training_steps": metadata.extra.get("training_steps")}
    return parts, record
