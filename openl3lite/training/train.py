"""Train L3-Net on the audio-visual correspondence task.

A manual step loop feeds batch ``k`` of the deterministic sampler to ``train_on_batch``, with
upcoming batches produced by worker threads. Checkpoints (weights and optimizer state) are
written atomically, so ``resume=True`` continues at exactly the next batch, also after
``kill -9``; Ctrl-C writes a checkpoint before stopping.

Backends: only ``keras`` APIs are used, so the loop runs on TensorFlow and on JAX. With several
local accelerators, :func:`train` shards each batch over them with
``keras.distribution.DataParallel``. On several machines, call
``keras.distribution.initialize(job_addresses, num_processes, process_id)`` on every host first
(JAX backend); the same DataParallel distribution then spans all hosts' devices.
"""

import csv
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import OpenL3liteError
from .prepare import load_manifest
from .sampling import PairSampler, split_videos

#: Arguments that define the network; a resumed run must match them.
ARCHITECTURE_KEYS = ("input_repr", "width")
_VAL_SEED_OFFSET = 1_000_003


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
    heldout_dir: str = None


@dataclass
class TrainResult:
    """Where a run ended."""

    run_dir: str
    step: int
    metrics: dict
    interrupted: bool = False


def _configure_distribution():
    import keras

    try:
        devices = keras.distribution.list_devices()
    except Exception:  # backends without the distribution API
        return
    accelerators = [d for d in devices if "cpu" not in d.lower()]
    if len(accelerators) > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=accelerators))


def build_model(config):
    """The compiled AVC model for a config.

    Returns
    -------
    keras.Model
    """
    import keras

    from ..network import build_avc_model

    keras.utils.set_random_seed(config.seed)
    model = build_avc_model(config.input_repr, config.width)
    optimizer = keras.optimizers.AdamW(learning_rate=config.learning_rate,
                                       weight_decay=config.weight_decay)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


# ---------------------------------------------------------------- checkpoints

def _checkpoint_dir(run_dir):
    return os.path.join(run_dir, "checkpoint")


def save_checkpoint(model, run_dir, step, history):
    """Write weights + optimizer state for ``step`` atomically, then drop older checkpoints.

    The model goes to ``checkpoint/step-<step>.keras``; ``checkpoint/latest.json`` is replaced
    last, so a crash at any moment leaves the previous checkpoint intact.
    """
    folder = _checkpoint_dir(run_dir)
    os.makedirs(folder, exist_ok=True)
    name = f"step-{step:08d}.keras"
    tmp = os.path.join(folder, f".tmp-{name}")
    model.save(tmp)
    os.replace(tmp, os.path.join(folder, name))
    state = {"step": step, "model": name, "history": history}
    tmp_state = os.path.join(folder, ".tmp-latest.json")
    with open(tmp_state, "w") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp_state, os.path.join(folder, "latest.json"))
    for old in os.listdir(folder):
        if old.startswith("step-") and old != name:
            os.remove(os.path.join(folder, old))


def load_checkpoint(run_dir):
    """The latest checkpoint of a run.

    Returns
    -------
    model : keras.Model
        Compiled, with its optimizer state.
    state : dict
        ``{"step", "model", "history"}``.
    """
    import keras

    from .. import frontend  # noqa: F401  (registers the Spectrogram layer)

    path = os.path.join(_checkpoint_dir(run_dir), "latest.json")
    if not os.path.exists(path):
        raise OpenL3liteError(f"{run_dir}: no checkpoint to resume from")
    state = json.load(open(path))
    model = keras.saving.load_model(os.path.join(_checkpoint_dir(run_dir), state["model"]))
    return model, state


# ---------------------------------------------------------------- logging

_CSV_FIELDS = ("step", "elapsed_s", "train_loss", "train_acc", "val_loss", "val_acc",
               "heldout_acc")


def _write_metrics(run_dir, history):
    path = os.path.join(run_dir, "metrics.csv")
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, _CSV_FIELDS)
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k, "") for k in _CSV_FIELDS})
    os.replace(tmp, path)


def plot_curves(history, path):
    """Draw loss and AVC accuracy curves (train, validation, held-out) to a PNG.

    Parameters
    ----------
    history : list of dict
        Rows as in ``metrics.csv``.
    path : str
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in [("train_loss", "train"), ("val_loss", "validation")]:
        ax_loss.plot(steps, [r.get(key, np.nan) for r in history], label=label)
    for key, label in [("train_acc", "train"), ("val_acc", "validation"),
                       ("heldout_acc", "held-out")]:
        values = [r.get(key, np.nan) for r in history]
        if any(v == v for v in values if v is not None):
            ax_acc.plot(steps, values, label=label)
    ax_loss.set(xlabel="step", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="step", ylabel="AVC accuracy", title="accuracy", ylim=(0.4, 1.0))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


# ---------------------------------------------------------------- evaluation

def evaluate_avc(model, batches):
    """Loss and accuracy of the AVC model on fixed batches.

    Parameters
    ----------
    model : keras.Model
    batches : list of (inputs, labels)

    Returns
    -------
    loss : float
    accuracy : float
    """
    losses, correct, total = [], 0, 0
    for inputs, labels in batches:
        probs = np.asarray(model.predict_on_batch(inputs))
        p = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)
        losses.append(-np.log(p).mean())
        correct += int((probs.argmax(1) == labels).sum())
        total += len(labels)
    return float(np.mean(losses)), correct / total


def fixed_batches(sampler, n_batches):
    """``n_batches`` batches that are the same every time they are asked for."""
    return [sampler.sample_batch(_VAL_SEED_OFFSET + i) for i in range(n_batches)]


# ---------------------------------------------------------------- the loop

def _check_config(config):
    from ..frontend import INPUT_REPRS

    if config.input_repr not in INPUT_REPRS:
        raise OpenL3liteError(f"invalid input_repr {config.input_repr!r}")
    if not 0 < config.width <= 1:
        raise OpenL3liteError(f"invalid width {config.width}: must be in (0, 1]")
    for name in ("batch_size", "steps", "checkpoint_every", "eval_every", "val_batches",
                 "workers"):
        if int(getattr(config, name)) < 1:
            raise OpenL3liteError(f"invalid {name} {getattr(config, name)}: must be >= 1")


def _prepare_run_dir(run_dir, config, resume):
    config_path = os.path.join(run_dir, "config.json")
    if resume:
        if not os.path.exists(config_path):
            raise OpenL3liteError(f"{run_dir}: nothing to resume (no config.json)")
        saved = json.load(open(config_path))
        for key in ARCHITECTURE_KEYS + ("batch_size", "seed", "dataset_dir"):
            if saved.get(key) != getattr(config, key):
                raise OpenL3liteError(f"{run_dir}: was started with {key}={saved.get(key)!r}, "
                                      f"not {getattr(config, key)!r}; resume with the same "
                                      "settings")
    elif os.path.isdir(run_dir) and os.listdir(run_dir):
        raise OpenL3liteError(f"{run_dir}: folder is not empty; use resume to continue that run "
                              "or choose a new folder")
    os.makedirs(run_dir, exist_ok=True)
    tmp = config_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(asdict(config), f, indent=1)
    os.replace(tmp, config_path)


def train(dataset_dir, run_dir, input_repr="mel128", width=0.25, batch_size=64, steps=10000,
          val_fraction=0.1, seed=0, learning_rate=1e-4, weight_decay=1e-5,
          checkpoint_every=200, eval_every=100, val_batches=8, resume=False, workers=2,
          progress=True, heldout_dir=None):
    """Train L3-Net (both subnetworks and the fusion head) on AVC.

    Parameters
    ----------
    dataset_dir : str
        A prepared dataset (``l3embed prepare``).
    run_dir : str
        Run folder: config, metrics.csv, curves.png, checkpoint/. Must be empty unless resuming.
    input_repr : str
        Audio representation.
    width : float
        Width multiplier.
    batch_size : int
        Pairs per step (half positive).
    steps : int
        Total optimisation steps.
    val_fraction : float
        Share of the dataset's videos held out for validation (split by video).
    seed : int
    learning_rate, weight_decay : float
        AdamW settings (the paper: Adam, 1e-4, weight decay 1e-5).
    checkpoint_every, eval_every : int
        Steps between checkpoints / validation passes.
    val_batches : int
        Fixed validation batches per pass.
    resume : bool
        Continue the run in ``run_dir`` from its latest checkpoint.
    workers : int
        Threads producing batches ahead of the model.
    progress : bool
        Show a progress bar.
    heldout_dir : str, optional
        A second prepared dataset (e.g. unseen speakers) whose AVC accuracy is also logged.

    Returns
    -------
    TrainResult
    """
    config = TrainConfig(dataset_dir=os.path.abspath(dataset_dir), input_repr=input_repr,
                         width=float(width), batch_size=int(batch_size), steps=int(steps),
                         val_fraction=val_fraction, seed=int(seed), learning_rate=learning_rate,
                         weight_decay=weight_decay, checkpoint_every=int(checkpoint_every),
                         eval_every=int(eval_every), val_batches=int(val_batches),
                         workers=int(workers),
                         heldout_dir=os.path.abspath(heldout_dir) if heldout_dir else None)
    _check_config(config)
    train_ids, val_ids = split_videos(load_manifest(dataset_dir), val_fraction, seed)
    train_sampler = PairSampler(dataset_dir, train_ids, batch_size, seed)
    val_sets = {}
    if val_ids:
        val_sets["val"] = fixed_batches(
            PairSampler(dataset_dir, val_ids, batch_size, seed, augment=False), val_batches)
    if heldout_dir:
        val_sets["heldout"] = fixed_batches(
            PairSampler(heldout_dir, None, batch_size, seed, augment=False), val_batches)
    _prepare_run_dir(run_dir, config, resume)
    _configure_distribution()
    if resume:
        model, state = load_checkpoint(run_dir)
        start, history = state["step"], state["history"]
    else:
        model, start, history = build_model(config), 0, []
    _write_metrics(run_dir, history)
    return _loop(model, config, run_dir, train_sampler, val_sets, start, history, progress)


def _loop(model, config, run_dir, sampler, val_sets, start, history, progress):
    from tqdm.auto import tqdm

    started = time.time() - (history[-1]["elapsed_s"] if history else 0.0)
    pool = ThreadPoolExecutor(max_workers=config.workers)
    ahead = max(2, 2 * config.workers)
    pending = {k: pool.submit(sampler.sample_batch, k)
               for k in range(start, min(config.steps, start + ahead))}
    losses, accs = [], []
    step = start
    bar = tqdm(total=config.steps, initial=start, unit="step", disable=not progress,
               desc="train")
    try:
        while step < config.steps:
            inputs, labels = pending.pop(step).result()
            nxt = step + ahead
            if nxt < config.steps:
                pending[nxt] = pool.submit(sampler.sample_batch, nxt)
            loss, acc = model.train_on_batch(inputs, labels)
            losses.append(float(loss))
            accs.append(float(acc))
            step += 1
            bar.update(1)
            if step % config.eval_every == 0 or step == config.steps:
                row = {"step": step, "elapsed_s": round(time.time() - started, 1),
                       "train_loss": float(np.mean(losses)), "train_acc": float(np.mean(accs))}
                for name, batches in val_sets.items():
                    loss_v, acc_v = evaluate_avc(model, batches)
                    if name == "val":
                        row["val_loss"], row["val_acc"] = loss_v, acc_v
                    else:
                        row["heldout_acc"] = acc_v
                history.append(row)
                losses, accs = [], []
                _write_metrics(run_dir, history)
                plot_curves(history, os.path.join(run_dir, "curves.png"))
                bar.set_postfix(loss=f"{row['train_loss']:.3f}",
                                val=f"{row.get('val_acc', float('nan')):.3f}")
            if step % config.checkpoint_every == 0 or step == config.steps:
                save_checkpoint(model, run_dir, step, history)
    except KeyboardInterrupt:
        save_checkpoint(model, run_dir, step, history)
        bar.close()
        pool.shutdown(wait=False, cancel_futures=True)
        return TrainResult(run_dir, step, history[-1] if history else {}, interrupted=True)
    bar.close()
    pool.shutdown(wait=False, cancel_futures=True)
    return TrainResult(run_dir, step, history[-1] if history else {})


def remove_run(run_dir):
    """Delete a run folder (used by tests and by users who ask for it explicitly)."""
    shutil.rmtree(run_dir, ignore_errors=True)
