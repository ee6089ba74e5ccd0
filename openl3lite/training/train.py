"""Train L3-Net (both subnetworks and the fusion head) on audio-visual correspondence (AVC).

:func:`train` composes the parts, one module per concern:

* :mod:`~openl3lite.training.config`: :class:`TrainConfig`, the run's settings and their
  defaults (also those of ``l3embed train``), and their checks;
* :mod:`~openl3lite.training.runtime`: backend threads, XLA, distribution over devices;
* :mod:`~openl3lite.training.model`: the fusion head's start, the compiled models, a model file
  to start from;
* :mod:`~openl3lite.training.batches`: training, validation, held-out and BatchNorm batches;
* :mod:`~openl3lite.training.checkpoints`: ``config.json``, checkpoints, resume checks;
* :mod:`~openl3lite.training.logs`: ``metrics.csv`` (curves: :func:`openl3lite.plots.plot_curves`);
* :mod:`~openl3lite.training.loop`: the step loop and Ctrl-C.

The names below stay importable from here (``from openl3lite.training.train import ...``).
"""

import os

from ..plots import plot_curves
from .batches import (
    BN_BATCH_OFFSET,
    VAL_BATCH_OFFSET,
    batchnorm_sampler,
    evaluation_sets,
    fixed_batches,
    split,
    training_sampler,
)
from .checkpoints import (
    CHECKPOINT_DIR,
    RESUMABLE_SETTINGS,
    STATE_FILE,
    check_run_dir,
    checkpoint_folder,
    load_checkpoint,
    read_checkpoint_state,
    record_setting,
    restore_checkpoint,
    save_checkpoint,
    write_config,
)
from .config import (
    ARCHITECTURE_KEYS,
    HEAD_INITS,
    OPTIMIZER,
    SAMPLER_KEYS,
    TrainConfig,
    check_config,
    document_options,
    make_config,
)
from .logs import CSV_FIELDS, METRICS_FILE, write_metrics_csv
from .loop import Run, TrainResult, run_loop
from .model import (
    build_models,
    initial_model_metadata,
    matching_head_init,
    read_initial_weights,
    zero_output_layer,
)
from .runtime import (
    configure_distribution,
    configure_threads,
    process_index,
    resolve_jit_compile,
)

__all__ = ["ARCHITECTURE_KEYS", "BN_BATCH_OFFSET", "CHECKPOINT_DIR", "CSV_FIELDS", "HEAD_INITS",
           "OPTIMIZER", "RESUMABLE_SETTINGS", "SAMPLER_KEYS", "STATE_FILE", "VAL_BATCH_OFFSET",
           "TrainConfig", "TrainResult", "build_models", "check_config", "check_run_dir",
           "checkpoint_folder", "configure_distribution", "configure_threads", "fixed_batches",
           "initial_model_metadata", "load_checkpoint", "matching_head_init", "plot_curves",
           "read_checkpoint_state", "read_initial_weights", "record_setting",
           "resolve_jit_compile", "restore_checkpoint", "save_checkpoint", "train",
           "write_metrics_csv", "zero_output_layer"]

_D = TrainConfig  # the defaults below are TrainConfig's fields' (written once, there)


@document_options
def train(dataset_dir, run_dir, input_repr=_D.input_repr, width=_D.width,
          batch_size=_D.batch_size, steps=_D.steps, val_fraction=_D.val_fraction, seed=_D.seed,
          learning_rate=_D.learning_rate, weight_decay=_D.weight_decay,
          checkpoint_every=_D.checkpoint_every, eval_every=_D.eval_every,
          val_batches=_D.val_batches, resume=False, workers=_D.workers, progress=_D.progress,
          heldout_dir=_D.heldout_dir, jit_compile=_D.jit_compile, negatives=_D.negatives,
          head_init=_D.head_init, bn_batches=_D.bn_batches, speed_jitter=_D.speed_jitter,
          init_from=_D.init_from):
    """Train L3-Net (audio trunk, image trunk and fusion head) on AVC.

    Optimiser: ``keras.optimizers.AdamW`` (Adam with decoupled weight decay), loss: sparse
    categorical cross-entropy, metric: accuracy. Every ``checkpoint_every`` steps, at the end
    and on Ctrl-C a complete checkpoint is written (:mod:`openl3lite.training.checkpoints`);
    a resumed run continues exactly as the uninterrupted run would have.

    The keyword arguments but ``resume`` are the run's settings: the fields of
    :class:`~openl3lite.training.config.TrainConfig`, with its defaults and meanings
    (``help(train)`` lists them under "Other Parameters"; ``l3embed train --help`` too).

    Parameters
    ----------
    dataset_dir : str
        A prepared dataset (:func:`openl3lite.training.prepare.prepare_dataset`).
    run_dir : str
        Run folder: ``config.json``, ``metrics.csv``, ``curves.png``, ``checkpoint/``. Must be
        empty or absent unless ``resume``.
    resume : bool
        Continue the run in ``run_dir`` from its latest complete checkpoint (from step 0 if
        none was written yet; a fresh run if ``run_dir`` is empty). Refused if the input
        representation, width, batch size, seed, validation fraction or negatives differ.

    Returns
    -------
    TrainResult

    Raises
    ------
    OpenL3liteError
        Bad arguments, a non-empty ``run_dir`` without ``resume``, a resume with a different
        architecture or batch sequence, or a dataset that is not prepared.
    """
    config = make_config(
        dataset_dir, input_repr=input_repr, width=width, batch_size=batch_size, steps=steps,
        val_fraction=val_fraction, seed=seed, learning_rate=learning_rate,
        weight_decay=weight_decay, checkpoint_every=checkpoint_every, eval_every=eval_every,
        val_batches=val_batches, workers=workers, progress=progress, heldout_dir=heldout_dir,
        jit_compile=jit_compile, negatives=negatives, head_init=head_init,
        bn_batches=bn_batches, speed_jitter=speed_jitter, init_from=init_from)
    run_dir = os.fspath(run_dir)
    configure_threads()
    has_checkpoint = check_run_dir(run_dir, config, resume)
    initial = (read_initial_weights(config.init_from, config)
               if config.init_from and not has_checkpoint else None)
    train_ids, val_ids = split(config)
    process = process_index()
    chief = process == 0
    sampler = training_sampler(config, train_ids, process)
    bn_sampler = batchnorm_sampler(config, train_ids)
    eval_sets = evaluation_sets(config, val_ids)
    if chief:
        write_config(run_dir, config)
    configure_distribution(config.batch_size)
    model, net = build_models(config)
    state = _start_state(model, net, config, run_dir, has_checkpoint, initial)
    if chief:
        write_metrics_csv(os.path.join(run_dir, METRICS_FILE), state["history"])
    return run_loop(Run(model, net, config, run_dir, sampler, bn_sampler, eval_sets, chief),
                    state)


def _start_state(model, net, config, run_dir, has_checkpoint, initial):
    """The state a run starts from, the models' weights set to match.

    A resumed run gets its checkpoint's weights, optimizer state and state (its learning rate
    set to ``config``'s); a new run from a model file gets that file's weights; a new run
    keeps the random ones. Either way the schedules of :data:`RESUMABLE_SETTINGS` note the
    values the coming steps use.
    """
    state = {"step": 0, "history": [], "pending": [], "elapsed_s": 0.0}
    if has_checkpoint:
        state, path = read_checkpoint_state(run_dir)
        restore_checkpoint(model, path)
        model.optimizer.learning_rate = config.learning_rate  # may differ on resume
    elif initial:
        net.set_parts(initial[0], config.init_from)
        state["init_from"] = initial[1]
    for name in RESUMABLE_SETTINGS:
        record_setting(state, name, getattr(config, name))
    return state
