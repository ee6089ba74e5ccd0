"""A run's files: ``config.json``, the checkpoints, and the checks that guard a run folder.

Every ``checkpoint_every`` steps, at the end and on Ctrl-C, ``run_dir/checkpoint/`` receives

* ``step-XXXXXXXX.npz``: every model variable (weights and BatchNorm statistics) and every
  optimizer variable (AdamW iteration, learning rate, first and second moments), in order;
* ``state.json``: the step, the metrics so far, the running train loss since the last log row,
  the elapsed training time, the learning rates used (``learning_rates``: ``[first_step, lr]``
  pairs, one more each time a run is resumed with a new ``learning_rate``; ``speed_jitters``
  likewise) and the run's config.

Both are written by :func:`openl3lite.output.atomic_path` (unique temporary name, fsync, rename),
``state.json`` last, so a crash
or ``kill -9`` at any moment leaves the previous complete checkpoint in place. A resumed run
restores weights and optimizer state and continues with batch ``k = step``: it sees exactly the
batches, and computes exactly the updates, that the uninterrupted run would have.
"""

import datetime
import json
import os
import time
import warnings
from dataclasses import asdict

import numpy as np

from ..errors import OpenL3liteError
from ..output import remove_stale_temporaries, write_json_atomic, write_npz_atomic
from .batches import batchnorm_sampler, refresh_batchnorm, split
from .config import (
    ARCHITECTURE_KEYS,
    OPTIMIZER,
    SAMPLER_KEYS,
    TrainConfig,
    config_from_dict,
)
from .model import build_models
from .runtime import backend_info, to_numpy

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
#: Settings that may change when a run is resumed, and the state key of each one's schedule.
RESUMABLE_SETTINGS = {"learning_rate": "learning_rates", "speed_jitter": "speed_jitters"}


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
    arrays = {f"model_{i:04d}": to_numpy(v) for i, v in enumerate(model.variables)}
    arrays.update({f"optimizer_{i:04d}": to_numpy(v)
                   for i, v in enumerate(model.optimizer.variables)})
    write_npz_atomic(os.path.join(folder, name), **arrays)
    write_json_atomic(os.path.join(folder, STATE_FILE), dict(state, checkpoint=name))
    for old in os.listdir(folder):
        if old != name and old.startswith("step-"):
            os.remove(os.path.join(folder, old))
    remove_stale_temporaries(folder)
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
    """The error for a ``state.json`` whose checkpoint file is gone."""
    return OpenL3liteError(f"{os.path.dirname(path)}: {STATE_FILE} names {state['checkpoint']}, "
                           "which is missing")


def _assign_all(variables, arrays, what, path):
    """Assign arrays to variables in order, refusing a different count or shape."""
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
        The training model of the checkpointed run's config
        (:func:`openl3lite.training.model.build_models`).
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
    net : openl3lite.l3net.L3Net
        The network with the checkpoint's weights; its ``avc_model`` (pairs in, (B, 2)
        probabilities out) is compiled, whatever the run's negatives.
    state : dict
        The checkpoint's ``state.json``.
    """
    if not isinstance(bn_batches, (int, np.integer)) or bn_batches < 0:
        raise OpenL3liteError(f"invalid bn_batches {bn_batches!r}: must be an integer >= 0")
    state, path, arrays = _read_latest_checkpoint(run_dir_or_checkpoint)
    config = config_from_dict(state["config"])
    train_model, net = build_models(config)
    _assign_checkpoint(train_model, arrays, optimizer, path)
    if bn_batches:
        if not os.path.isdir(config.dataset_dir):
            raise OpenL3liteError(f"{config.dataset_dir}: the run's dataset is gone; BatchNorm "
                                  "statistics cannot be recomputed without it")
        train_ids, _ = split(config)
        refresh_batchnorm(train_model, net.avc_model, batchnorm_sampler(config, train_ids),
                          int(bn_batches))
    return net, state


def checkpoint_record(state, config):
    """What a checkpoint's ``state.json`` holds besides the run's state.

    Parameters
    ----------
    state : dict
        The run's state (``step``, ``history``, ``pending``, ``elapsed_s``, schedules ...).
    config : TrainConfig

    Returns
    -------
    dict
        ``state`` with ``config``, ``backend``, ``keras_version``, ``optimizer`` and
        ``saved_at`` (local time, ISO 8601 to the second) added.
    """
    return dict(state, config=asdict(config), **backend_info(), optimizer=OPTIMIZER,
                saved_at=datetime.datetime.now().isoformat(timespec="seconds"))


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


def _check_resumable(run_dir, saved, config):
    """Refuse to resume a run saved with another architecture or batch sequence."""
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
    config_path = os.path.join(run_dir, CONFIG_FILE)
    if not (os.path.isdir(run_dir) and os.listdir(run_dir)):
        if os.path.exists(run_dir) and not os.path.isdir(run_dir):
            raise OpenL3liteError(f"{run_dir}: exists and is not a folder")
        return False
    if not resume:
        raise OpenL3liteError(f"{run_dir}: folder is not empty; pass resume=True (--resume) to "
                              "continue the run in it, or choose a new folder")
    if not os.path.isfile(config_path):
        raise OpenL3liteError(f"{run_dir}: not a training run folder (no {CONFIG_FILE}); choose "
                              "a new folder")
    with open(config_path) as f:
        _check_resumable(run_dir, json.load(f), config)
    try:
        checkpoint_folder(run_dir)
        return True
    except OpenL3liteError:  # stopped before its first checkpoint: start at step 0
        return False


def write_config(run_dir, config):
    """Create the run folder and write its ``config.json`` (atomically).

    Parameters
    ----------
    run_dir : str
    config : TrainConfig
        Saved with the backend and Keras version.
    """
    os.makedirs(run_dir, exist_ok=True)
    write_json_atomic(os.path.join(run_dir, CONFIG_FILE), dict(asdict(config), **backend_info()))
