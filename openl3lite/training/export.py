"""Export a trained AVC model as an openl3lite model file (audio and image trunks, their pool4
stages, fusion head).

The file is what ``openl3lite.load_audio_embedding_model_from_path``,
``load_image_embedding_model_from_path`` and the CLI's ``--model`` read. After writing, the file
is loaded back and checked to compute the trained network's features.
"""

import datetime
import os

import numpy as np

from ..errors import OpenL3liteError
from ..weights import ModelMetadata

#: Largest absolute difference allowed between trained and reloaded features (float32 round-off).
VERIFY_ATOL = 1e-4


def training_details(state, extra=None):
    """The training facts recorded in an exported model's metadata.

    Parameters
    ----------
    state : dict
        A checkpoint's ``state.json`` (see :mod:`openl3lite.training.checkpoints`).
    extra : dict, optional
        More entries; they override the computed ones.

    Returns
    -------
    dict
        ``training_steps``, ``batch_size``, ``learning_rate``, ``weight_decay``, ``optimizer``,
        ``seed``, ``negatives``, ``speed_jitter`` (of the run's last session),
        ``dataset_dir``, ``heldout_dir``, ``final_val_loss``, ``final_val_avc_acc``,
        ``final_heldout_avc_acc`` (None when not measured), ``learning_rate_schedule`` and
        ``speed_jitter_schedule`` (``[first_step, value]`` pairs; they start after step 1 when
        the run's early checkpoints predate the record, None if none was recorded),
        ``init_from`` (the model file the run started from, None for random weights),
        ``train_time_s``, ``backend``,
        ``keras_version``, ``exported`` (UTC date), plus ``extra``.
    """
    import keras

    config = state["config"]
    last = state["history"][-1] if state["history"] else {}
    details = {
        "training_steps": state["step"], "batch_size": config["batch_size"],
        "learning_rate": config["learning_rate"], "weight_decay": config["weight_decay"],
        "optimizer": state.get("optimizer", "AdamW"), "seed": config["seed"],
        "negatives": config.get("negatives", "sampled"),
        "speed_jitter": config.get("speed_jitter", 0.0),
        "dataset_dir": config["dataset_dir"], "heldout_dir": config.get("heldout_dir"),
        "final_metrics_step": last.get("step"), "final_val_loss": last.get("val_loss"),
        "final_val_avc_acc": last.get("val_acc"),
        "final_heldout_avc_acc": last.get("heldout_acc"),
        "learning_rate_schedule": _used(state, "learning_rates"),
        "speed_jitter_schedule": _used(state, "speed_jitters"),
        "init_from": state.get("init_from"),
        "train_time_s": round(float(state.get("elapsed_s", 0.0)), 1),
        "backend": state.get("backend", keras.backend.backend()),
        "keras_version": state.get("keras_version", keras.__version__),
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    details.update(extra or {})
    return details


def _used(state, schedule_key):
    """The entries of a recorded schedule that trained steps used (None if none)."""
    return [entry for entry in state.get(schedule_key, []) if entry[0] <= state["step"]] or None


def export_model(run_dir_or_checkpoint, out_path, name, extra=None, bn_batches=0):
    """Write a run's latest checkpoint as an openl3lite model file and verify it.

    Parameters
    ----------
    run_dir_or_checkpoint : str or os.PathLike
        A training run folder or its ``checkpoint`` folder.
    out_path : str or os.PathLike
        Model file to write (``.h5``), replaced atomically.
    name : str
        Model name recorded in the metadata.
    extra : dict, optional
        More metadata to record (JSON-serialisable).
    bn_batches : int
        If > 0, then recompute the BatchNorm statistics on this many training batches of the
        run's dataset first (see :func:`~openl3lite.training.checkpoints.load_checkpoint`); recorded as
        ``batchnorm_recomputed_at_export``. Runs trained with ``bn_batches > 0`` need not.

    Returns
    -------
    ModelMetadata
        What was written: ``input_repr`` and ``width`` of the run, ``frontend="kapre"``,
        ``image_scaling="symmetric"``, ``content_type=None``, training details in ``extra``
        (:func:`training_details`).

    Raises
    ------
    OpenL3liteError
        No checkpoint, or the reloaded file does not reproduce the trained network.
    """
    from .train import load_checkpoint

    if not name or not isinstance(name, str):
        raise OpenL3liteError(f"invalid model name {name!r}: must be a non-empty string")
    net, state = load_checkpoint(run_dir_or_checkpoint, optimizer=False,
                                 bn_batches=bn_batches)
    config = state["config"]
    details = training_details(state, extra)
    if bn_batches:
        details["batchnorm_recomputed_at_export"] = int(bn_batches)
    metadata = ModelMetadata(name=name, input_repr=config["input_repr"],
                             width=float(config["width"]), frontend="kapre",
                             image_scaling="symmetric", content_type=None, extra=details)
    out_path = os.fspath(out_path)
    net.save(out_path, metadata)
    verify_export(out_path, net)
    return metadata


def verify_export(path, net, seed=0, batch=2):
    """Check that a written model file computes what the trained network computes.

    The audio embedding model loaded from ``path`` must give, on random waveforms, the global
    max of the trained audio trunk's features (its 512-D embedding); the image model likewise on
    random images; the image trunk's full feature maps must match; and the whole network
    reloaded with :meth:`~openl3lite.l3net.L3Net.from_file` must score the same pairs alike.

    Parameters
    ----------
    path : str
        The written model file.
    net : openl3lite.l3net.L3Net
        The trained network.
    seed : int
    batch : int
        Random inputs per check; their shapes are the network's own inputs.

    Raises
    ------
    OpenL3liteError
        If any feature differs by more than :data:`VERIFY_ATOL`.
    """
    import keras

    from ..l3net import L3Net
    from ..models import load_audio_embedding_model_from_path, load_image_embedding_model_from_path

    rng = np.random.default_rng(seed)
    shapes = {name: (batch,) + tuple(tensor.shape[1:])
              for name, tensor in net.avc_model.input.items()}
    pairs = {"audio": rng.uniform(-0.5, 0.5, shapes["audio"]).astype(np.float32),
             "image": rng.uniform(-1, 1, shapes["image"]).astype(np.float32)}
    waveform, image = pairs["audio"], pairs["image"]
    channels = net.embedding_channels
    trained = {
        "audio embedding": keras.ops.max(net.audio_trunk(net.spectrogram(waveform)), axis=(1, 2)),
        "image embedding": keras.ops.max(net.image_trunk(image), axis=(1, 2)),
        "image features": net.image_trunk(image),
        "pair scores": net.predict_on_batch(pairs),
    }
    audio_model = load_audio_embedding_model_from_path(path, embedding_size=channels)
    image_model = load_image_embedding_model_from_path(path, embedding_size=channels)
    loaded = {
        "audio embedding": audio_model(waveform[:, None, :]),
        "image embedding": image_model(image),
        "image features": image_model.trunk(image),
        "pair scores": L3Net.from_file(path, "checking the export").predict_on_batch(pairs),
    }
    for key, expected in trained.items():
        got = keras.ops.convert_to_numpy(loaded[key])
        expected = keras.ops.convert_to_numpy(expected)
        if got.shape != expected.shape or not np.allclose(got, expected, atol=VERIFY_ATOL):
            raise OpenL3liteError(f"{path}: the exported {key} differs from the trained "
                                  "network's; the file is not usable")
