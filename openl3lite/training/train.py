"""Train L3-Net (both subnetworks and the fusion head) on audio-visual correspondence (AVC).

The loop
--------
A manual step loop: step ``s`` (0-based) trains on batch ``k = s`` of the deterministic pair
sampler with ``model.train_on_batch``. Worker threads produce the next few batches while the model
trains (a bounded look-ahead), so the model is not starved and memory stays bounded.

Checkpoints and resume
----------------------
Every ``checkpoint_every`` steps, at the end and on Ctrl-C, ``run_dir/checkpoint/`` receives

* ``step-XXXXXXXX.npz``: every model variable (weights and BatchNorm statistics) and every
  optimizer variable (AdamW iteration, learning rate, first and second moments), in order;
* ``state.json``: the step, the metrics so far, the running train loss since the last log row,
  the elapsed training time, the learning rates used (``learning_rates``: ``[first_step, lr]``
  pairs, one more each time a run is resumed with a new ``learning_rate``; ``speed_jitters``
  likewise) and the run's config.

Both are written to temporary names and renamed (``os.replace``), ``state.json`` last, so a crash
or ``kill -9`` at any moment leaves the previous complete checkpoint in place. ``resume=True``
restores weights and optimizer state and continues with batch ``k = step``: the resumed run sees
exactly the batches, and computes exactly the updates, that the uninterrupted run would have.

Backends
--------
Only ``keras`` and ``keras.ops`` are used, so the loop runs on TensorFlow and on JAX. On
TensorFlow the train step is XLA-compiled (``jit_compile=True``): on a 2-core CPU it was about
15 % faster than the plain graph at width 0.25 (Keras' ``"auto"`` would switch XLA off on CPU).

Several accelerators
--------------------
With more than one local accelerator on the JAX backend, :func:`train` shards every batch over
them with ``keras.distribution.DataParallel`` (``batch_size`` must be divisible by their number).
On several machines (JAX backend), run the same script on every host, each calling first::

    import keras
    keras.distribution.initialize(
        job_addresses="host0:1234,host1:1234",  # coordinator first
        num_processes=2, process_id=i)           # i = this host's index

``DataParallel`` then spans every host's devices; each host feeds its own ``batch_size`` pairs per
step (sampled with the seed offset by its process index), so the global batch is
``batch_size * num_processes``, and only process 0 writes logs and checkpoints. (Keras'
TensorFlow distribution backend is a prototype, so on TensorFlow one device is used.)
"""

import csv
import datetime
import json
import os
import signal
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import OpenL3liteError
from ..weights import assign_avc_parts
from .prepare import load_manifest
from . import sampling
from .batchnorm import batchnorm_layers, recompute_batchnorm_statistics

#: Config keys that define the network: a resumed run must have the same.
ARCHITECTURE_KEYS = ("input_repr", "width")
#: Config keys that define the sequence of batches: changing them would not continue the run.
SAMPLER_KEYS = ("batch_size", "seed", "val_fraction", "negatives")
CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
CSV_FIELDS = ("step", "elapsed_s", "train_loss", "train_acc", "val_loss", "val_acc",
              "heldout_acc", "heldout_loss", "learning_rate")
#: Batch indices of the fixed validation batches (far from any training index).
VAL_BATCH_OFFSET = 1_000_000_007
#: Batch indices of the fixed training batches BatchNorm statistics are recomputed on.
BN_BATCH_OFFSET = 2_000_000_011
OPTIMIZER = "AdamW"


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json``)."""

    dataset_dir: str
    input_repr: str = "mel128"
    width: float = 0.25
    batch_size: int = 64
    steps: int = 10000
    val_fraction: float = 0.1
    seed: int = 0
    learning_rate: float = 1e-4
    weight_decay: float = 1e-5
    checkpoint_every: int = 200
    eval_every: int = 100
    val_batches: int = 8
    workers: int = 2
    progress: bool = True
    heldout_dir: str = None
    jit_compile: object = None
    optimizer: str = OPTIMIZER
    negatives: str = "sampled"
    head_init: str = "zeros"
    bn_batches: int = 16
    speed_jitter: float = 0.0
    init_from: str = None


@dataclass
class TrainResult:
    """Where a training run ended.

    Attributes
    ----------
    run_dir : str
    step : int
        Optimisation steps done.
    metrics : dict
        The last row of ``metrics.csv`` (empty if no evaluation happened yet).
    history : list of dict
        All rows of ``metrics.csv``.
    interrupted : bool
        True if stopped by Ctrl-C (a checkpoint was written).
    checkpoint : str
        The checkpoint file written last.
    """

    run_dir: str
    step: int
    metrics: dict
    history: list = field(default_factory=list)
    interrupted: bool = False
    checkpoint: str = None


# ---------------------------------------------------------------- backend set-up

def configure_threads(n_threads=None):
    """Let the backend use ``n_threads`` CPU cores (all of them by default).

    On TensorFlow this sets the intra- and inter-op thread pools; it only works before TensorFlow
    has run any op, and is silently skipped afterwards. JAX's XLA CPU runtime uses every core.

    Parameters
    ----------
    n_threads : int, optional
        Cores to use; ``os.cpu_count()`` if None.
    """
    import keras

    n_threads = int(n_threads or os.cpu_count() or 1)
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n_threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, n_threads))
    except RuntimeError:  # TensorFlow already initialised: keep its (all-core) defaults
        pass


def resolve_jit_compile(jit_compile=None):
    """The ``jit_compile`` to compile the model with.

    Parameters
    ----------
    jit_compile : bool or str, optional
        None: True on TensorFlow and JAX (XLA, measured faster on CPU too), ``"auto"`` elsewhere.

    Returns
    -------
    bool or str
    """
    import keras

    if jit_compile is not None:
        return jit_compile
    return True if keras.backend.backend() in ("tensorflow", "jax") else "auto"


def _accelerators():
    import keras

    try:
        devices = keras.distribution.list_devices()
    except Exception:  # backend without the distribution API
        return []
    return [d for d in devices if "cpu" not in str(d).lower()]


def configure_distribution(batch_size):
    """Shard batches over all accelerators with ``keras.distribution.DataParallel`` (JAX).

    Parameters
    ----------
    batch_size : int
        Per-process batch; must be divisible by the number of local accelerators.

    Returns
    -------
    int
        Devices a batch is split over (1 if no distribution was set).
    """
    import keras

    devices = _accelerators()
    if len(devices) < 2:
        return 1
    if keras.backend.backend() != "jax":
        warnings.warn(f"{len(devices)} accelerators found, but multi-device training needs the "
                      "JAX backend (KERAS_BACKEND=jax); using one device")
        return 1
    if batch_size % len(devices):
        raise OpenL3liteError(f"batch_size {batch_size} must be divisible by the number of "
                              f"accelerators ({len(devices)}) for data-parallel training")
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return len(devices)


def _process_index():
    """This process's index in a multi-host run (0 when single-host)."""
    import keras

    if keras.backend.backend() != "jax":
        return 0
    import jax

    return int(jax.process_index())


# ---------------------------------------------------------------- model

HEAD_INITS = ("zeros", "matching")


def zero_output_layer(avc_model):
    """Start the fusion head's output layer at zero: every pair starts at p = 0.5.

    With a random output layer the head's initial outputs are noise, and the first thing
    training does is silence it, mostly by driving the 128 hidden ReLUs dead (measured: 81 of 128
    dead after 200 steps at width 0.125), after which the head can hardly learn. From zero, the
    output layer's first gradient is the difference between the hidden units' mean activity on
    corresponding and on non-corresponding pairs: the correspondence signal itself.

    Parameters
    ----------
    avc_model : keras.Model
        From :func:`openl3lite.network.build_avc_model`; changed in place.
    """
    output = avc_model.get_layer("fusion").get_layer("fusion_fc2")
    for variable in output.weights:
        variable.assign(np.zeros(tuple(variable.shape), "float32"))


def matching_head_init(avc_model, scale=0.1, seed=0):
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
    avc_model : keras.Model
        From :func:`openl3lite.network.build_avc_model`; changed in place.
    scale : float
        Output weight per hidden unit: the logit difference's spread at the start is about
        ``2 * scale * 4.8``.
    seed : int
    """
    fusion = avc_model.get_layer("fusion")
    hidden = fusion.get_layer("fusion_fc1")
    output = fusion.get_layer("fusion_fc2")
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
    """The compiled training model of a config and the AVC model it trains.

    Parameters
    ----------
    config : TrainConfig

    Returns
    -------
    train_model : keras.Model
        What the optimizer steps, compiled with AdamW (its variables created), sparse
        categorical cross-entropy and accuracy. With ``negatives="sampled"`` it is
        ``avc_model``; with ``"in-batch"`` it shares ``avc_model``'s layers and outputs the
        (B, B, 2) scores of every frame-clip combination
        (:func:`openl3lite.network.build_avc_all_pairs_model`). Checkpoints hold its variables.
    avc_model : keras.Model
        Inputs ``{"audio": (B, 48000) float32, "image": (B, 224, 224, 3) float32}``, output
        (B, 2) softmax; compiled with the same loss and metric for evaluation on pairs.
    """
    import keras

    from ..network import build_avc_all_pairs_model, build_avc_model

    keras.utils.set_random_seed(config.seed)
    jit_compile = resolve_jit_compile(config.jit_compile)
    avc_model = build_avc_model(config.input_repr, config.width)
    if config.head_init == "matching":
        matching_head_init(avc_model, seed=config.seed)
    else:
        zero_output_layer(avc_model)
    train_model = (build_avc_all_pairs_model(avc_model) if config.negatives == "in-batch"
                   else avc_model)
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
    return train_model, avc_model


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
        name -> arrays; for :func:`openl3lite.weights.assign_avc_parts`.
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


# ---------------------------------------------------------------- checkpoints

def _fsync_replace(tmp, path):
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_json_atomic(path, data):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    _fsync_replace(tmp, path)


def _to_numpy(variable):
    import keras

    return keras.ops.convert_to_numpy(variable.value)


def save_checkpoint(model, run_dir, state):
    """Write model and optimizer variables and ``state.json`` atomically; drop older files.

    Parameters
    ----------
    model : keras.Model
        The compiled AVC model.
    run_dir : str
    state : dict
        JSON-serialisable; must hold ``step`` (int). ``checkpoint`` (the file name) is added.

    Returns
    -------
    str
        Path of the checkpoint file.
    """
    folder = os.path.join(run_dir, CHECKPOINT_DIR)
    os.makedirs(folder, exist_ok=True)
    name = f"step-{int(state['step']):08d}.npz"
    arrays = {f"model_{i:04d}": _to_numpy(v) for i, v in enumerate(model.variables)}
    arrays.update({f"optimizer_{i:04d}": _to_numpy(v)
                   for i, v in enumerate(model.optimizer.variables)})
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{name}")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    _fsync_replace(tmp, os.path.join(folder, name))
    _write_json_atomic(os.path.join(folder, STATE_FILE), dict(state, checkpoint=name))
    for old in os.listdir(folder):
        if old != name and (old.startswith("step-") or old.startswith(".tmp-")):
            os.remove(os.path.join(folder, old))
    return os.path.join(folder, name)


def checkpoint_folder(run_dir_or_checkpoint):
    """The checkpoint folder of a run folder (or the folder itself if it is one).

    Returns
    -------
    str

    Raises
    ------
    OpenL3liteError
        If there is no complete checkpoint.
    """
    path = os.fspath(run_dir_or_checkpoint)
    for folder in (os.path.join(path, CHECKPOINT_DIR), path):
        if os.path.isfile(os.path.join(folder, STATE_FILE)):
            return folder
    raise OpenL3liteError(f"{path}: no checkpoint (expected {CHECKPOINT_DIR}/{STATE_FILE}); "
                          "has training written one yet?")


def read_checkpoint_state(run_dir_or_checkpoint):
    """The ``state.json`` of a run's latest complete checkpoint.

    Returns
    -------
    state : dict
        ``step``, ``history``, ``config``, ``checkpoint`` (file name), ...
    path : str
        The checkpoint ``.npz`` file.
    """
    state, path = _state_and_file(run_dir_or_checkpoint)
    if not os.path.isfile(path):
        raise _missing_checkpoint(state, path)
    return state, path


def _state_and_file(run_dir_or_checkpoint):
    """``state.json`` of a run's checkpoint folder and the checkpoint file it names."""
    folder = checkpoint_folder(run_dir_or_checkpoint)
    with open(os.path.join(folder, STATE_FILE)) as f:
        state = json.load(f)
    return state, os.path.join(folder, state["checkpoint"])


def _missing_checkpoint(state, path):
    return OpenL3liteError(f"{os.path.dirname(path)}: {STATE_FILE} names {state['checkpoint']}, "
                           "which is missing")


def _assign_all(variables, arrays, what, path):
    if len(variables) != len(arrays):
        raise OpenL3liteError(f"{path}: holds {len(arrays)} {what} variables, the model has "
                              f"{len(variables)} (different architecture or Keras version?)")
    for variable, array in zip(variables, arrays):
        if tuple(variable.shape) != array.shape:
            raise OpenL3liteError(f"{path}: {what} variable {variable.path} has shape "
                                  f"{tuple(variable.shape)}, checkpoint has {array.shape}")
        variable.assign(array)


def restore_checkpoint(model, path, optimizer=True):
    """Set a model's (and optionally its optimizer's) variables from a checkpoint file.

    Parameters
    ----------
    model : keras.Model
        The training model of the checkpointed run's config (:func:`build_models`).
    path : str
        A ``step-*.npz`` checkpoint.
    optimizer : bool
        Also restore the optimizer's variables.
    """
    with np.load(path, allow_pickle=False) as data:
        _assign_checkpoint(model, data, optimizer, path)


def _assign_checkpoint(model, data, optimizer, path):
    """Assign a checkpoint's arrays (a mapping of its ``model_*`` / ``optimizer_*`` keys)."""
    keys = sorted(data.keys())
    _assign_all(model.variables, [data[k] for k in keys if k.startswith("model_")], "model",
                path)
    if optimizer:
        _assign_all(model.optimizer.variables,
                    [data[k] for k in keys if k.startswith("optimizer_")], "optimizer", path)


def _read_latest_checkpoint(run_dir_or_checkpoint, attempts=5):
    """The latest checkpoint's state and arrays, read into memory at once.

    A run still training replaces its checkpoint (new file, then ``state.json``, then the old
    file is removed), so the file ``state.json`` names can vanish before it is read; the newer
    one is read instead.

    Returns
    -------
    state : dict
    path : str
    arrays : dict of str -> np.ndarray
    """
    for attempt in range(attempts):
        state, path = _state_and_file(run_dir_or_checkpoint)
        try:
            with np.load(path, allow_pickle=False) as data:
                return state, path, {k: data[k] for k in data.files}
        except FileNotFoundError:
            if attempt == attempts - 1:
                raise _missing_checkpoint(state, path) from None
            time.sleep(0.2)


def load_checkpoint(run_dir_or_checkpoint, optimizer=True, bn_batches=0):
    """Rebuild a run's model from its latest checkpoint.

    Parameters
    ----------
    run_dir_or_checkpoint : str
        A run folder or its ``checkpoint`` folder.
    optimizer : bool
        Also restore the optimizer state.
    bn_batches : int
        If > 0, then recompute the BatchNorm statistics on this many fixed training batches of
        the run's dataset, as training does before every checkpoint (for checkpoints written
        with ``bn_batches=0``). The dataset must still be where the run's config says.

    Returns
    -------
    model : keras.Model
        Compiled AVC model (pairs in, (B, 2) probabilities out), whatever the run's negatives.
    state : dict
        The checkpoint's ``state.json``.
    """
    if not isinstance(bn_batches, (int, np.integer)) or bn_batches < 0:
        raise OpenL3liteError(f"invalid bn_batches {bn_batches!r}: must be an integer >= 0")
    state, path, arrays = _read_latest_checkpoint(run_dir_or_checkpoint)
    config = _config_from_dict(state["config"])
    train_model, avc_model = build_models(config)
    _assign_checkpoint(train_model, arrays, optimizer, path)
    if bn_batches:
        if not os.path.isdir(config.dataset_dir):
            raise OpenL3liteError(f"{config.dataset_dir}: the run's dataset is gone; BatchNorm "
                                  "statistics cannot be recomputed without it")
        train_ids, _ = sampling.split_videos(load_manifest(config.dataset_dir),
                                             config.val_fraction, config.seed)
        _refresh_batchnorm(train_model, avc_model, _batchnorm_sampler(config, train_ids),
                           int(bn_batches))
    return avc_model, state


# ---------------------------------------------------------------- logging

def write_metrics_csv(path, history):
    """Write the metric rows to a CSV file atomically.

    Parameters
    ----------
    path : str
    history : list of dict
        Rows with keys among :data:`CSV_FIELDS`: ``step``, ``elapsed_s`` (training wall time
        in seconds, summed over resumes), train loss / accuracy (running means since the
        previous row), validation and held-out loss / accuracy (blank when not computed) and
        ``learning_rate`` (the one in force at ``step``; blank in rows of older runs).
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, CSV_FIELDS)
        writer.writeheader()
        for row in history:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in CSV_FIELDS})
    os.replace(tmp, path)


def plot_curves(history, path):
    """Draw loss and AVC accuracy against step (train, validation, held-out) to a PNG.

    Parameters
    ----------
    history : list of dict
        Rows as in ``metrics.csv``.
    path : str
        PNG file, replaced atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [row["step"] for row in history]

    def series(key):
        return [np.nan if row.get(key) is None else row[key] for row in history]

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, keys in ((ax_loss, ("train_loss", "val_loss", "heldout_loss")),
                     (ax_acc, ("train_acc", "val_acc", "heldout_acc"))):
        for key in keys:
            values = series(key)
            if not np.all(np.isnan(values)):
                ax.plot(steps, values, marker=".", label=key.split("_")[0])
        ax.axhline(0.5 if ax is ax_acc else np.log(2), color="grey", lw=0.8, ls=":",
                   label="chance")
        ax.grid(alpha=0.3)
        ax.legend()
    ax_loss.set(xlabel="step", ylabel="cross-entropy", title="AVC loss")
    ax_acc.set(xlabel="step", ylabel="accuracy", title="AVC accuracy")
    fig.tight_layout()
    tmp = f"{path}.tmp-{os.getpid()}.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


# ---------------------------------------------------------------- data

def _batchnorm_sampler(config, train_ids):
    """The training batches BatchNorm statistics are recomputed on: augmented as in training,
    and the same on every process (seeded by ``config.seed`` alone), so replicated statistics
    stay identical."""
    return _pair_dataset(config.dataset_dir, train_ids, config.batch_size, config.seed, True,
                         config.negatives, config.speed_jitter)


def _pair_dataset(dataset_dir, video_ids, batch_size, seed, augment, negatives="sampled",
                  speed_jitter=0.0):
    """The sampler of AVC batches over some videos of a prepared dataset."""
    return sampling.PairSampler(dataset_dir, video_ids, batch_size, seed, augment=augment,
                                negatives=negatives, speed_jitter=speed_jitter)


def fixed_batches(dataset, n_batches):
    """``n_batches`` batches that are the same at every evaluation.

    Parameters
    ----------
    dataset : object with ``sample_batch(k)``
        Should not augment.
    n_batches : int

    Returns
    -------
    list of (dict, np.ndarray)
        ``({"audio": (B, 48000) float32, "image": (B, 224, 224, 3) float32}, labels int32 (B,))``.
    """
    return [dataset.sample_batch(VAL_BATCH_OFFSET + i) for i in range(n_batches)]


class BatchPrefetcher:
    """Produces batches ``k`` of a sampler in worker threads, a bounded number ahead.

    Parameters
    ----------
    sampler : object with ``sample_batch(k)``
        Deterministic in ``k`` and safe to call from several threads.
    start, stop : int
        Batches ``start .. stop - 1`` are produced, in order.
    workers : int
        Threads.
    ahead : int, optional
        Batches requested in advance (``2 * workers`` by default): bounds the memory.
    """

    def __init__(self, sampler, start, stop, workers=2, ahead=None):
        self._sampler = sampler
        self._stop = stop
        self._ahead = max(1, ahead or 2 * workers)
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers),
                                        thread_name_prefix="avc-batches")
        self._pending = {}
        for k in range(start, min(stop, start + self._ahead)):
            self._pending[k] = self._pool.submit(sampler.sample_batch, k)

    def get(self, k):
        """Batch ``k`` (waits for it); also requests batch ``k + ahead``.

        Returns
        -------
        inputs : dict
        labels : np.ndarray
        """
        future = self._pending.pop(k, None)
        if future is None:
            future = self._pool.submit(self._sampler.sample_batch, k)
        nxt = k + self._ahead
        if nxt < self._stop and nxt not in self._pending:
            self._pending[nxt] = self._pool.submit(self._sampler.sample_batch, nxt)
        return future.result()[:2]

    def close(self):
        """Stop the workers, dropping batches not yet started."""
        self._pool.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------- evaluation

def evaluate_avc(model, batches):
    """Mean loss and accuracy of the AVC model on fixed batches (inference mode).

    Parameters
    ----------
    model : keras.Model
        Compiled AVC model.
    batches : list of (inputs, labels)

    Returns
    -------
    loss : float
        Mean cross-entropy (nats).
    accuracy : float
        Share of pairs classified correctly.
    """
    losses, accuracies, sizes = [], [], []
    for inputs, labels in batches:
        result = model.test_on_batch(inputs, labels, return_dict=True)
        losses.append(float(result["loss"]))
        accuracies.append(float(result["accuracy"]))
        sizes.append(len(labels))
    return float(np.average(losses, weights=sizes)), float(np.average(accuracies, weights=sizes))


# ---------------------------------------------------------------- run folder

def _config_from_dict(data):
    known = {k: v for k, v in data.items() if k in TrainConfig.__dataclass_fields__}
    return TrainConfig(**known)


def check_config(config):
    """Raise OpenL3liteError for invalid training arguments.

    Parameters
    ----------
    config : TrainConfig
    """
    from ..frontend import INPUT_REPRS

    if config.input_repr not in INPUT_REPRS:
        raise OpenL3liteError(f"invalid input_repr {config.input_repr!r}: must be one of "
                              f"{', '.join(INPUT_REPRS)}")
    if not 0 < config.width <= 1:
        raise OpenL3liteError(f"invalid width {config.width}: must be in (0, 1]")
    if config.batch_size < 2 or config.batch_size % 2:
        raise OpenL3liteError(f"invalid batch_size {config.batch_size}: must be even and >= 2 "
                              "(half of each batch is positive)")
    for name in ("steps", "checkpoint_every", "eval_every", "val_batches", "workers"):
        if int(getattr(config, name)) < 1:
            raise OpenL3liteError(f"invalid {name} {getattr(config, name)}: must be >= 1")
    if int(config.bn_batches) < 0:
        raise OpenL3liteError(f"invalid bn_batches {config.bn_batches}: must be >= 0")
    if not 0 <= config.val_fraction < 1:
        raise OpenL3liteError(f"invalid val_fraction {config.val_fraction}: must be in [0, 1)")
    if config.negatives not in sampling.NEGATIVE_MODES:
        raise OpenL3liteError(f"invalid negatives {config.negatives!r}: must be one of "
                              f"{', '.join(sampling.NEGATIVE_MODES)}")
    if config.head_init not in HEAD_INITS:
        raise OpenL3liteError(f"invalid head_init {config.head_init!r}: must be one of "
                              f"{', '.join(HEAD_INITS)}")
    sampling.check_speed_jitter(config.speed_jitter)
    if not config.learning_rate > 0 or config.weight_decay < 0:
        raise OpenL3liteError(f"invalid learning_rate {config.learning_rate} / weight_decay "
                              f"{config.weight_decay}: need learning_rate > 0, weight_decay >= 0")


def _check_resumable(run_dir, saved, config):
    for key in ARCHITECTURE_KEYS + SAMPLER_KEYS:
        if saved.get(key, getattr(TrainConfig, key, None)) != getattr(config, key):
            kind = "architecture" if key in ARCHITECTURE_KEYS else "batch sequence"
            raise OpenL3liteError(
                f"{run_dir}: cannot resume with {key}={getattr(config, key)!r}: the run was "
                f"started with {key}={saved.get(key)!r} (it defines the {kind}); resume with "
                "the same value or start a new run folder")
    if saved.get("dataset_dir") != config.dataset_dir:
        warnings.warn(f"{run_dir}: resuming on {config.dataset_dir}, the run started on "
                      f"{saved.get('dataset_dir')}; batches are the same only if the datasets are")


def check_run_dir(run_dir, config, resume):
    """Refuse to clobber a run; on resume, refuse a different architecture or batch sequence.

    Parameters
    ----------
    run_dir : str
    config : TrainConfig
    resume : bool

    Returns
    -------
    bool
        True if ``run_dir`` holds a checkpoint to continue from.

    Raises
    ------
    OpenL3liteError
    """
    config_path = os.path.join(run_dir, "config.json")
    if not (os.path.isdir(run_dir) and os.listdir(run_dir)):
        if os.path.exists(run_dir) and not os.path.isdir(run_dir):
            raise OpenL3liteError(f"{run_dir}: exists and is not a folder")
        return False
    if not resume:
        raise OpenL3liteError(f"{run_dir}: folder is not empty; pass resume=True (--resume) to "
                              "continue the run in it, or choose a new folder")
    if not os.path.isfile(config_path):
        raise OpenL3liteError(f"{run_dir}: not a training run folder (no config.json); choose "
                              "a new folder")
    with open(config_path) as f:
        _check_resumable(run_dir, json.load(f), config)
    try:
        checkpoint_folder(run_dir)
        return True
    except OpenL3liteError:  # stopped before its first checkpoint: start at step 0
        return False


def _write_config(run_dir, config):
    os.makedirs(run_dir, exist_ok=True)
    saved = asdict(config)
    saved.update(backend=_backend_name(), keras_version=_keras_version())
    _write_json_atomic(os.path.join(run_dir, "config.json"), saved)


def _backend_name():
    import keras

    return keras.backend.backend()


def _keras_version():
    import keras

    return keras.__version__


# ---------------------------------------------------------------- stopping on Ctrl-C

class _StopOnSigint:
    """While active, the first Ctrl-C only sets ``requested``; a second one interrupts at once.

    Signal handlers can be set only in the main thread; elsewhere Ctrl-C raises
    KeyboardInterrupt as usual (the loop catches it too).
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


# ---------------------------------------------------------------- training

def train(dataset_dir, run_dir, input_repr="mel128", width=0.25, batch_size=64, steps=10000,
          val_fraction=0.1, seed=0, learning_rate=1e-4, weight_decay=1e-5,
          checkpoint_every=200, eval_every=100, val_batches=8, resume=False, workers=2,
          progress=True, heldout_dir=None, jit_compile=None, negatives="sampled",
          head_init="zeros", bn_batches=16, speed_jitter=0.0, init_from=None):
    """Train L3-Net (audio trunk, image trunk and fusion head) on AVC.

    Optimiser: ``keras.optimizers.AdamW`` (Adam with decoupled weight decay), loss: sparse
    categorical cross-entropy, metric: accuracy.

    Parameters
    ----------
    dataset_dir : str
        A prepared dataset (:func:`openl3lite.training.prepare.prepare_dataset`).
    run_dir : str
        Run folder: ``config.json``, ``metrics.csv``, ``curves.png``, ``checkpoint/``. Must be
        empty or absent unless ``resume``.
    input_repr : str
        ``linear``, ``mel128`` or ``mel256``.
    width : float
        Width multiplier of both trunks, in (0, 1].
    batch_size : int
        Pairs per step (even; half of them corresponding).
    steps : int
        Total optimisation steps (a resumed run may raise it to train longer).
    val_fraction : float
        Share of the dataset's videos held out for validation (split by video), in [0, 1).
    seed : int
        Seeds the initial weights, the video split and the batch sequence.
    learning_rate : float
        Adam learning rate (the paper: 1e-4).
    weight_decay : float
        Decoupled weight decay (the paper: 1e-5).
    checkpoint_every : int
        Steps between checkpoints (one is also written at the end and on Ctrl-C).
    eval_every : int
        Steps between rows of ``metrics.csv`` (validation pass, curves redrawn).
    val_batches : int
        Fixed validation (and held-out) batches per evaluation.
    resume : bool
        Continue the run in ``run_dir`` from its latest complete checkpoint (from step 0 if
        none was written yet; a fresh run if ``run_dir`` is empty). Refused if the input
        representation, width, batch size, seed or validation fraction differ.
    workers : int
        Threads producing batches ahead of the model.
    progress : bool
        Show a tqdm progress bar.
    heldout_dir : str, optional
        A second prepared dataset (e.g. unseen speakers); its AVC loss and accuracy on fixed
        batches are logged too.
    jit_compile : bool or str, optional
        Passed to ``model.compile``; None: XLA on TensorFlow and JAX (see
        :func:`resolve_jit_compile`).
    negatives : str
        ``sampled``: the paper's batches, half corresponding pairs and half pairs of different
        videos. ``in-batch``: each batch is ``batch_size`` corresponding pairs from different
        videos and the fusion head scores every frame against every clip of the batch (the
        other videos' clips are the negatives), positives and negatives weighted 50/50: many
        more negatives for the same compute. Validation always uses sampled pairs, so AVC
        accuracies are comparable.
    head_init : str
        How a new run's fusion head starts: ``zeros`` (output layer at zero,
        :func:`zero_output_layer`) or ``matching`` (a distance between the two vectors,
        :func:`matching_head_init`). Ignored when resuming: the checkpoint's weights are loaded.
    bn_batches : int
        Before every evaluation and checkpoint, BatchNorm moving statistics are recomputed
        with the current weights over this many fixed training batches
        (:mod:`openl3lite.training.batchnorm`), so logged accuracies and exported weights do
        not depend on a moving average of older weights; 0 keeps the moving averages.
    speed_jitter : float
        Play each training clip at a random speed in ``[1 - speed_jitter, 1 + speed_jitter]``
        (tempo and pitch together; :mod:`openl3lite.training.sampling`), an addition to the
        paper's augmentation; 0 (default) is the paper's. It may change on resume.
    init_from : str or os.PathLike, optional
        Start a new run from the weights of this model file (``l3embed export``'s, or a
        released model's) instead of random ones, with a fresh optimizer: fine-tuning, or
        continuing a run whose folder is gone. Its input representation and width must be the
        run's. The file's path, sha256, name and training steps are recorded in the run's state
        and in exported metadata (``init_from``). Ignored when resuming from a checkpoint.

    Returns
    -------
    TrainResult

    Raises
    ------
    OpenL3liteError
        Bad arguments, a non-empty ``run_dir`` without ``resume``, a resume with a different
        architecture or batch sequence, or a dataset that is not prepared.
    """
    config = TrainConfig(
        dataset_dir=os.path.abspath(os.fspath(dataset_dir)), input_repr=input_repr,
        width=float(width), batch_size=int(batch_size), steps=int(steps),
        val_fraction=float(val_fraction), seed=int(seed), learning_rate=float(learning_rate),
        weight_decay=float(weight_decay), checkpoint_every=int(checkpoint_every),
        eval_every=int(eval_every), val_batches=int(val_batches), workers=int(workers),
        progress=bool(progress), jit_compile=jit_compile, negatives=negatives,
        head_init=head_init, bn_batches=int(bn_batches), speed_jitter=float(speed_jitter),
        heldout_dir=os.path.abspath(os.fspath(heldout_dir)) if heldout_dir else None,
        init_from=os.fspath(init_from) if init_from else None)
    check_config(config)
    run_dir = os.fspath(run_dir)
    configure_threads()
    has_checkpoint = check_run_dir(run_dir, config, resume)
    initial = (read_initial_weights(config.init_from, config)
               if config.init_from and not has_checkpoint else None)
    train_ids, val_ids = sampling.split_videos(load_manifest(config.dataset_dir),
                                               config.val_fraction, config.seed)
    chief = _process_index() == 0
    sampler = _pair_dataset(config.dataset_dir, train_ids, config.batch_size,
                            config.seed + 7919 * _process_index(), True, config.negatives,
                            config.speed_jitter)
    bn_sampler = _batchnorm_sampler(config, train_ids)
    eval_sets = _evaluation_sets(config, val_ids)
    if chief:
        _write_config(run_dir, config)
    configure_distribution(config.batch_size)
    model, avc_model = build_models(config)
    state = {"step": 0, "history": [], "pending": [], "elapsed_s": 0.0}
    if has_checkpoint:
        state, path = read_checkpoint_state(run_dir)
        restore_checkpoint(model, path)
        model.optimizer.learning_rate = config.learning_rate  # may differ on resume
    elif initial:
        assign_avc_parts(avc_model, initial[0], config.init_from)
        state["init_from"] = initial[1]
    for name in RESUMABLE_SETTINGS:
        record_setting(state, name, getattr(config, name))
    if chief:
        write_metrics_csv(os.path.join(run_dir, "metrics.csv"), state["history"])
    return _run(model, avc_model, config, run_dir, sampler, eval_sets, state, chief,
                bn_sampler)


def _evaluation_sets(config, val_ids):
    """Fixed batches for validation (held-out videos) and for the held-out dataset."""
    sets = {}
    if val_ids:
        if len(val_ids) < 2:
            raise OpenL3liteError(f"validation needs at least 2 videos (negatives pair different "
                                  f"videos), val_fraction {config.val_fraction} gives "
                                  f"{len(val_ids)}; raise it or use val_fraction=0")
        sets["val"] = fixed_batches(_pair_dataset(
            config.dataset_dir, val_ids, config.batch_size, config.seed, False),
            config.val_batches)
    if config.heldout_dir:
        sets["heldout"] = fixed_batches(_pair_dataset(
            config.heldout_dir, None, config.batch_size, config.seed, False),
            config.val_batches)
    return sets


#: Settings that may change when a run is resumed, and the state key of each one's schedule.
RESUMABLE_SETTINGS = {"learning_rate": "learning_rates", "speed_jitter": "speed_jitters"}


def record_setting(state, name, value):
    """Note in a run's state the value of a setting its next steps train with.

    Parameters
    ----------
    state : dict
        The run's state (``step``, ...); its schedule for ``name`` (a list of
        ``[first_step, value]``, ``first_step`` 1-based as in ``metrics.csv``, under the key
        :data:`RESUMABLE_SETTINGS` gives) gains an entry when ``value`` differs from the last
        one. An entry that no step has used yet is replaced. Runs whose checkpoints predate
        the record start it at their resume step.
    name : str
        A key of :data:`RESUMABLE_SETTINGS`.
    value : float
    """
    schedule = state.setdefault(RESUMABLE_SETTINGS[name], [])
    first_step = state["step"] + 1
    if schedule and schedule[-1][0] >= first_step:
        schedule.pop()
    if not schedule or schedule[-1][1] != value:
        schedule.append([first_step, value])


def _log_row(model, state, eval_sets):
    """Close the running train means into a metrics row and run the evaluations."""
    pending = np.asarray(state["pending"], dtype=np.float64).reshape(-1, 2)
    row = {"step": state["step"], "elapsed_s": round(state["elapsed_s"], 2),
           "train_loss": float(pending[:, 0].mean()) if len(pending) else None,
           "train_acc": float(pending[:, 1].mean()) if len(pending) else None,
           "learning_rate": state["learning_rates"][-1][1]}
    for name, batches in eval_sets.items():
        row[f"{name}_loss"], row[f"{name}_acc"] = evaluate_avc(model, batches)
    state["history"].append(row)
    state["pending"] = []
    return row


def _checkpoint(model, config, run_dir, state, chief):
    if not chief:
        return None
    saved = dict(state, config=asdict(config), backend=_backend_name(),
                 keras_version=_keras_version(), optimizer=OPTIMIZER,
                 saved_at=datetime.datetime.now().isoformat(timespec="seconds"))
    return save_checkpoint(model, run_dir, saved)


def _train_step(model, inputs, labels):
    """One optimizer step on a batch; returns (loss, accuracy)."""
    if labels.ndim == 2:  # in-batch label grid
        targets, weights = sampling.grid_targets(labels)
        result = model.train_on_batch(inputs, targets, sample_weight=weights, return_dict=True)
    else:
        result = model.train_on_batch(inputs, labels, return_dict=True)
    return float(result["loss"]), float(result["accuracy"])


def _refresh_batchnorm(model, avc_model, sampler, n_batches):
    """Recompute the BatchNorm statistics of ``avc_model``'s layers, running the training
    ``model`` on the fixed batches ``BN_BATCH_OFFSET + i`` (i < ``n_batches``) of ``sampler``
    (nothing if ``n_batches`` is 0)."""
    if n_batches:
        batches = (sampler.sample_batch(BN_BATCH_OFFSET + i)[0] for i in range(n_batches))
        recompute_batchnorm_statistics(model, batches, batchnorm_layers(avc_model))


def _run(model, avc_model, config, run_dir, sampler, eval_sets, state, chief, bn_sampler):
    """The step loop from ``state["step"]`` to ``config.steps``."""
    from tqdm.auto import tqdm

    def refresh_batchnorm():
        _refresh_batchnorm(model, avc_model, bn_sampler, config.bn_batches)

    start = state["step"]
    prefetch = BatchPrefetcher(sampler, start, config.steps, config.workers)
    bar = tqdm(total=config.steps, initial=start, unit="step", desc="train",
               disable=not (config.progress and chief), dynamic_ncols=True)
    checkpoint, interrupted = None, False
    clock = time.monotonic()
    try:
        with _StopOnSigint() as stop:
            while state["step"] < config.steps and not stop.requested:
                inputs, labels = prefetch.get(state["step"])
                state["pending"].append(list(_train_step(model, inputs, labels)))
                state["step"] += 1
                now = time.monotonic()
                state["elapsed_s"] += now - clock
                clock = now
                bar.update(1)
                checkpoint = _after_step(model, avc_model, config, run_dir, state, eval_sets,
                                         bar, chief, refresh_batchnorm) or checkpoint
            interrupted = stop.requested
    except KeyboardInterrupt:
        interrupted = True
    finally:
        prefetch.close()
        bar.close()
    _sync_step_with_optimizer(model, state)
    if not (checkpoint or "").endswith(f"step-{state['step']:08d}.npz"):
        refresh_batchnorm()
        checkpoint = _checkpoint(model, config, run_dir, state, chief)
    history = state["history"]
    return TrainResult(run_dir, state["step"], history[-1] if history else {}, history,
                       interrupted, checkpoint)


def _after_step(model, avc_model, config, run_dir, state, eval_sets, bar, chief,
                refresh_batchnorm):
    """Evaluate, log and checkpoint when due, BatchNorm statistics recomputed first. Returns
    the checkpoint written, if any."""
    step = state["step"]
    evaluate = step % config.eval_every == 0 or step == config.steps
    if evaluate or step % config.checkpoint_every == 0:
        refresh_batchnorm()
    if evaluate:
        row = _log_row(avc_model, state, eval_sets)
        if chief:
            write_metrics_csv(os.path.join(run_dir, "metrics.csv"), state["history"])
            plot_curves(state["history"], os.path.join(run_dir, "curves.png"))
        shown = {k: f"{row[k]:.3f}" for k in ("train_loss", "val_acc", "heldout_acc")
                 if row.get(k) is not None}
        bar.set_postfix(shown, refresh=False)
    if step % config.checkpoint_every == 0:
        return _checkpoint(model, config, run_dir, state, chief)
    return None


def _sync_step_with_optimizer(model, state):
    """After an interruption, count the steps the optimizer really applied.

    A KeyboardInterrupt can surface after ``train_on_batch`` updated the weights but before the
    loop counted the step; the optimizer's iteration counter is updated in the same compiled
    step as the weights, so it is the truth.
    """
    applied = int(_to_numpy(model.optimizer.iterations))
    if applied == state["step"] + 1:
        state["step"] = applied
    elif applied != state["step"]:
        raise OpenL3liteError(f"internal error: optimizer applied {applied} steps, loop counted "
                              f"{state['step']}")
