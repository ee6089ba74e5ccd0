"""The step loop: train, evaluate, log and checkpoint when due; Ctrl-C stops it cleanly.

A manual step loop: step ``s`` (0-based) trains on batch ``k = s`` of the deterministic pair
sampler with ``model.train_on_batch``. Worker threads produce the next few batches while the model
trains (:func:`openl3lite.training.batches.batch_stream`), so the model is not starved and
memory stays bounded. The first Ctrl-C finishes the current step, then the loop writes a
checkpoint and returns; a second one interrupts at once (the checkpoint is still written).
"""

import os
import signal
import threading
import time
from dataclasses import dataclass, field

from ..errors import OpenL3liteError
from ..evaluation import score_avc_batches
from ..plots import plot_curves
from . import sampling
from .batches import batch_stream, refresh_batchnorm
from .checkpoints import checkpoint_record, save_checkpoint
from .logs import CURVES_FILE, METRICS_FILE, metrics_row, write_metrics_csv
from .runtime import to_numpy


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


@dataclass
class Run:
    """What the loop works on: the models, the run's settings and data, and where to write.

    Attributes
    ----------
    model : keras.Model
        The compiled training model (the optimizer steps it; checkpoints hold its variables).
    network : openl3lite.l3net.L3Net
        The network it trains (the training model runs over its parts); its ``avc_model`` is
        scored on the evaluation sets.
    config : TrainConfig
    run_dir : str
    sampler : object with ``sample_batch(k)``
        Training batches.
    bn_sampler : object with ``sample_batch(k)``
        The fixed BatchNorm batches' sampler.
    eval_sets : dict of str -> list of (dict, np.ndarray)
        Fixed batches per evaluation set.
    chief : bool
        This process writes logs and checkpoints (process 0).
    """

    model: object
    network: object
    config: object
    run_dir: str
    sampler: object
    bn_sampler: object
    eval_sets: dict
    chief: bool = True


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


def train_step(model, inputs, labels):
    """One optimizer step on a batch.

    Parameters
    ----------
    model : keras.Model
        The compiled training model.
    inputs : dict
        ``{"audio": (B, 48000) float32, "image": (B, 224, 224, 3) float32}``.
    labels : np.ndarray
        int (B,) for sampled pairs; int (B, B) label grid for in-batch negatives
        (:func:`openl3lite.training.sampling.grid_targets` turns it into targets and weights).

    Returns
    -------
    loss, accuracy : float
        The batch's cross-entropy (nats) and accuracy.
    """
    if labels.ndim == 2:  # in-batch label grid
        targets, weights = sampling.grid_targets(labels)
        result = model.train_on_batch(inputs, targets, sample_weight=weights, return_dict=True)
    else:
        result = model.train_on_batch(inputs, labels, return_dict=True)
    return float(result["loss"]), float(result["accuracy"])


def _refresh(run):
    """Recompute the BatchNorm statistics on the run's fixed batches (if it asks for it)."""
    refresh_batchnorm(run.model, run.network.avc_model, run.bn_sampler, run.config.bn_batches)


def _checkpoint(run, state):
    """Write a checkpoint (chief only); returns its path, or None."""
    if not run.chief:
        return None
    return save_checkpoint(run.model, run.run_dir, checkpoint_record(state, run.config))


def log_row(run, state):
    """Score the evaluation sets, append the metrics row to the state (and its files).

    Parameters
    ----------
    run : Run
    state : dict
        Its ``history`` gains the row; ``pending`` is emptied.

    Returns
    -------
    dict
        The row (:func:`openl3lite.training.logs.metrics_row`).
    """
    scores = {name: score_avc_batches(run.network.avc_model, batches)
              for name, batches in run.eval_sets.items()}
    row = metrics_row(state, scores)
    state["history"].append(row)
    state["pending"] = []
    if run.chief:
        write_metrics_csv(os.path.join(run.run_dir, METRICS_FILE), state["history"])
        plot_curves(state["history"], os.path.join(run.run_dir, CURVES_FILE))
    return row


def _after_step(run, state, bar):
    """Evaluate, log and checkpoint when due, BatchNorm statistics recomputed first. Returns
    the checkpoint written, if any."""
    step, config = state["step"], run.config
    evaluate = step % config.eval_every == 0 or step == config.steps
    if evaluate or step % config.checkpoint_every == 0:
        _refresh(run)
    if evaluate:
        row = log_row(run, state)
        shown = {k: f"{row[k]:.3f}" for k in ("train_loss", "val_acc", "heldout_acc")
                 if row.get(k) is not None}
        bar.set_postfix(shown, refresh=False)
    if step % config.checkpoint_every == 0:
        return _checkpoint(run, state)
    return None


def sync_step_with_optimizer(model, state):
    """After an interruption, count the steps the optimizer really applied.

    A KeyboardInterrupt can surface after ``train_on_batch`` updated the weights but before the
    loop counted the step; the optimizer's iteration counter is updated in the same compiled
    step as the weights, so it is the truth.

    Parameters
    ----------
    model : keras.Model
        The compiled training model.
    state : dict
        Its ``step`` is corrected (by at most one).

    Raises
    ------
    OpenL3liteError
        The counts differ by more than one step (an internal error).
    """
    applied = int(to_numpy(model.optimizer.iterations))
    if applied == state["step"] + 1:
        state["step"] = applied
    elif applied != state["step"]:
        raise OpenL3liteError(f"internal error: optimizer applied {applied} steps, loop counted "
                              f"{state['step']}")


def run_loop(run, state):
    """The step loop from ``state["step"]`` to ``run.config.steps``.

    Parameters
    ----------
    run : Run
    state : dict
        The run's state (``step``, ``history``, ``pending``, ``elapsed_s``, schedules); updated
        in place.

    Returns
    -------
    TrainResult
        A checkpoint of the last step is always written (also when interrupted).
    """
    from tqdm.auto import tqdm

    config = run.config
    start = state["step"]
    bar = tqdm(total=config.steps, initial=start, unit="step", desc="train",
               disable=not (config.progress and run.chief), dynamic_ncols=True)
    checkpoint, interrupted = None, False
    clock = time.monotonic()
    try:
        with batch_stream(run.sampler, start, config.steps, config.workers) as batches, \
                _StopOnSigint() as stop:
            for inputs, labels in batches:
                state["pending"].append(list(train_step(run.model, inputs, labels)))
                state["step"] += 1
                now = time.monotonic()
                state["elapsed_s"] += now - clock
                clock = now
                bar.update(1)
                checkpoint = _after_step(run, state, bar) or checkpoint
                if stop.requested:
                    break
            interrupted = stop.requested
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    sync_step_with_optimizer(run.model, state)
    if not (checkpoint or "").endswith(f"step-{state['step']:08d}.npz"):
        _refresh(run)
        checkpoint = _checkpoint(run, state)
    history = state["history"]
    return TrainResult(run.run_dir, state["step"], history[-1] if history else {}, history,
                       interrupted, checkpoint)
