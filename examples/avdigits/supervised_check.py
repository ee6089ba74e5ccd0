"""How fast can one L3-Net subnetwork learn the corpus' digits when it is given the labels?

AVC training learns the digits without labels, through the other modality, so it cannot learn
them faster than a subnetwork trained on the labels directly. This script measures that bound on
a prepared AV digits dataset (``l3embed prepare`` of a ``make_avdigits.py`` corpus): it samples
frames or 1-second clips exactly as AVC training does (same sampler, crops, flips, colour and gain
jitter), labels each with the digit the corpus' sidecars say it shows or says, and trains the
image or audio subnetwork (up to pool4, as in the AVC network) plus a linear softmax layer.

Usage::

    python examples/avdigits/supervised_check.py DATASET_DIR --modality image --steps 200 \\
        [--heldout HELDOUT_DATASET_DIR] [-o result.json]

prints the training accuracy of the last ``--every`` steps (and the held-out accuracy) every
``--every`` steps. Exit status 0 on success, 2 on bad input.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

MODALITIES = ("image", "audio")


def read_sidecar(video_path):
    """The AV digits sidecar next to a corpus video.

    Parameters
    ----------
    video_path : str
        ``<stem>.mp4`` of a ``make_avdigits.py`` corpus.

    Returns
    -------
    dict
    """
    from openl3lite.errors import OpenL3liteError

    path = os.path.splitext(video_path)[0] + ".json"
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise OpenL3liteError(f"{path}: no readable AV digits sidecar for {video_path} "
                              f"({exc})") from None


def frame_digit(sidecar, time_s):
    """The digit a frame shows.

    Parameters
    ----------
    sidecar : dict
    time_s : float
        The frame's time, seconds.

    Returns
    -------
    int
        0..9, or -1 if no digit is on screen then.
    """
    for segment in sidecar["segments"]:
        if segment["shown_start"] <= time_s < segment["shown_end"]:
            return segment["digit"]
    return -1


def clip_digit(sidecar, start_s, duration_s=1.0):
    """The digit heard longest in a clip.

    Parameters
    ----------
    sidecar : dict
    start_s, duration_s : float
        The clip, seconds.

    Returns
    -------
    int
        0..9, or -1 if no utterance overlaps the clip.
    """
    best, digit = 0.0, -1
    for segment in sidecar["segments"]:
        overlap = min(start_s + duration_s, segment["end"]) - max(start_s, segment["start"])
        if overlap > best:
            best, digit = overlap, segment["digit"]
    return digit


class LabelledBatches:
    """Batches of frames or clips from the AVC sampler, with the corpus' digit labels.

    Parameters
    ----------
    dataset_dir : str
        Prepared dataset of an AV digits corpus.
    modality : str
        ``image`` or ``audio``.
    batch_size : int
    seed : int
    augment : bool
    """

    def __init__(self, dataset_dir, modality, batch_size, seed=0, augment=True):
        from openl3lite.training.sampling import PairSampler

        self.modality = modality
        self.sampler = PairSampler(dataset_dir, batch_size=batch_size, seed=seed,
                                   augment=augment, negatives="in-batch")
        self._sidecars = {vid: read_sidecar(self.sampler.records[vid].source)
                          for vid in self.sampler.video_ids}

    def batch(self, k):
        """Batch ``k``.

        Returns
        -------
        inputs : np.ndarray, float32
            (B, 224, 224, 3) images in [-1, 1] or (B, 48000) clips at 48 kHz.
        labels : np.ndarray, int64, shape (B,)
            Digits; -1 where none is shown / heard.
        """
        inputs, _, infos = self.sampler.sample_batch(k, return_info=True)
        if self.modality == "image":
            labels = [frame_digit(self._sidecars[i.frame_video], i.frame_time) for i in infos]
        else:
            labels = [clip_digit(self._sidecars[i.clip_video], i.clip_start) for i in infos]
        return inputs[self.modality], np.asarray(labels, np.int64)


def build_classifier(modality, input_repr, width, learning_rate):
    """A subnetwork up to pool4 plus a linear softmax over the 10 digits, compiled.

    Returns
    -------
    keras.Model
        (B, 224, 224, 3) images or (B, 48000) clips -> (B, 10) probabilities.
    """
    import keras

    from openl3lite.network import (IMAGE_SIZE, Spectrogram, build_audio_trunk,
                                    build_image_trunk, build_pool4)

    if modality == "image":
        inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
        trunk = build_image_trunk(width)
        features = trunk(inputs)
    else:
        inputs = keras.Input((48000,), name="audio")
        trunk = build_audio_trunk(input_repr, width)
        features = trunk(Spectrogram(input_repr, name="spectrogram")(inputs))
    pooled = build_pool4(modality, trunk.output_shape[-1])(features)
    outputs = keras.layers.Dense(10, activation="softmax", name="digit")(pooled)
    model = keras.Model(inputs, outputs, name=f"{modality}_digits")
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=1e-5),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def accuracy(model, batches):
    """Share of labelled examples classified right (inference mode).

    Parameters
    ----------
    model : keras.Model
    batches : list of (np.ndarray, np.ndarray)

    Returns
    -------
    float
    """
    right = total = 0
    for inputs, labels in batches:
        keep = labels >= 0
        if not keep.any():
            continue
        predicted = np.argmax(model.predict(inputs[keep], verbose=0), axis=1)
        right += int(np.sum(predicted == labels[keep]))
        total += int(keep.sum())
    return right / max(total, 1)


def run(dataset_dir, modality="image", steps=200, batch_size=32, width=0.125,
        input_repr="mel128", learning_rate=1e-3, every=25, heldout_dir=None,
        heldout_batches=3, seed=0, report=print):
    """Train one subnetwork on the digit labels and record its accuracy.

    Returns
    -------
    list of dict
        Every ``every`` steps: ``step``, ``seconds``, ``train_accuracy`` (mean over those
        steps, training mode; None if none of them had a labelled example) and
        ``heldout_accuracy`` (None without ``heldout_dir``).
    """
    import keras

    from openl3lite.training.train import configure_threads

    configure_threads()
    keras.utils.set_random_seed(seed)
    model = build_classifier(modality, input_repr, width, learning_rate)
    train = LabelledBatches(dataset_dir, modality, batch_size, seed)
    held = None
    if heldout_dir:
        source = LabelledBatches(heldout_dir, modality, 2 * batch_size, seed + 1, augment=False)
        held = [source.batch(k) for k in range(heldout_batches)]
    history, recent, started = [], [], time.monotonic()
    for step in range(1, steps + 1):
        inputs, labels = train.batch(step - 1)
        keep = labels >= 0
        if keep.any():  # a batch of clips that all fall in silence has nothing to learn
            result = model.train_on_batch(inputs[keep], labels[keep], return_dict=True)
            recent.append(float(result["accuracy"]))
        if step % every == 0 or step == steps:
            row = {"step": step, "seconds": round(time.monotonic() - started, 1),
                   "train_accuracy": round(float(np.mean(recent)), 4) if recent else None,
                   "heldout_accuracy": round(accuracy(model, held), 4) if held else None}
            recent = []
            history.append(row)
            report(" ".join(f"{k} {v}" for k, v in row.items() if v is not None))
    return history


def build_parser():
    from openl3lite.facts import INPUT_REPRS

    parser = argparse.ArgumentParser(prog="supervised_check.py",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("dataset", help="prepared dataset of an AV digits corpus")
    parser.add_argument("--modality", choices=MODALITIES, default="image")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--input-repr", default="mel128", choices=INPUT_REPRS)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--every", type=int, default=25, help="report every N steps")
    parser.add_argument("--heldout", help="prepared dataset of held-out videos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", help="write the history as JSON here")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.steps < 1 or args.every < 1 or args.batch_size < 2 or not 0 < args.width <= 1:
        parser.error("--steps and --every must be >= 1, --batch-size >= 2, --width in (0, 1]")
    from openl3lite.errors import OpenL3liteError

    try:
        history = run(args.dataset, args.modality, args.steps, args.batch_size, args.width,
                      args.input_repr, args.learning_rate, args.every, args.heldout,
                      seed=args.seed)
    except OpenL3liteError as exc:
        print(f"supervised_check.py: error: {exc}", file=sys.stderr)
        return 2
    if args.output:
        write_json(args.output, {"arguments": vars(args), "history": history})
    return 0


def write_json(path, payload):
    """Write ``payload`` as indented JSON to ``path`` through a temporary file (never a
    half-written file)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=1)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
