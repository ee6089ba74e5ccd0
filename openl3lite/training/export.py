"""Export a trained AVC model's subnetworks as an openl3lite model file."""

import datetime
import os

import numpy as np

from ..errors import OpenL3liteError
from ..weights import ModelMetadata, save_model_file


def export_model(run_dir, out_path, name, extra=None):
    """Write the audio trunk, image trunk and fusion head of a run's latest checkpoint.

    Parameters
    ----------
    run_dir : str
        A training run folder (``l3embed train``).
    out_path : str
        Model file to write (``.h5``); loadable by ``load_audio_embedding_model_from_path`` and
        ``load_image_embedding_model_from_path`` and by the CLI's ``--model``.
    name : str
        Model name recorded in the metadata.
    extra : dict, optional
        More metadata (training details) to record.

    Returns
    -------
    ModelMetadata
        What was written.
    """
    import json

    import keras

    from ..models import load_audio_embedding_model_from_path, load_image_embedding_model_from_path
    from .train import load_checkpoint

    config_path = os.path.join(run_dir, "config.json")
    if not os.path.exists(config_path):
        raise OpenL3liteError(f"{run_dir}: not a training run (no config.json)")
    config = json.load(open(config_path))
    model, state = load_checkpoint(run_dir)
    history = state["history"]
    details = {"training_steps": state["step"], "batch_size": config["batch_size"],
               "learning_rate": config["learning_rate"], "weight_decay": config["weight_decay"],
               "backend": keras.backend.backend(),
               "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "final_metrics": history[-1] if history else {}}
    details.update(extra or {})
    metadata = ModelMetadata(name=name, input_repr=config["input_repr"], width=config["width"],
                             frontend="kapre", image_scaling="symmetric", content_type=None,
                             extra=details)
    parts = {"audio": model.get_layer("audio_trunk"), "image": model.get_layer("image_trunk"),
             "fusion": model.get_layer("fusion")}
    save_model_file(out_path, parts, metadata)
    _verify_export(out_path, parts, load_audio_embedding_model_from_path,
                   load_image_embedding_model_from_path)
    return metadata


def _verify_export(path, parts, load_audio, load_image):
    """Reload the file and check the trunks compute what the trained ones do."""
    rng = np.random.default_rng(0)
    audio_model = load_audio(path, embedding_size=512)
    n_freq = audio_model.trunk.input_shape[1]
    spectrogram = rng.uniform(-80, 0, (1, n_freq, 199, 1)).astype(np.float32)
    image = rng.uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    image_model = load_image(path, embedding_size=512)
    checks = [(parts["image"], image_model.trunk, image),
              (parts["audio"], audio_model.trunk, spectrogram)]
    for trained, loaded, x in checks:
        a = np.asarray(trained(x, training=False))
        b = np.asarray(loaded(x, training=False))
        if not np.allclose(a, b, atol=1e-4):
            raise OpenL3liteError(f"{path}: exported weights do not reproduce the trained network")
