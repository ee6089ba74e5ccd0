"""Linear-probe evaluation, as in the paper: embed labelled clips, z-score, fit a linear
classifier, report accuracy on held-out data.

Feature sets compared in one report: the model under test, the same network with random weights,
and (audio) log-mel statistics. The classifier is scikit-learn's ``LogisticRegression``
(multinomial, L2, C=1) after ``StandardScaler``; the paper used a linear SVM, and both are
linear probes.
"""

import csv
import json
import os
import re
from dataclasses import dataclass, field

import numpy as np

from .errors import OpenL3liteError

#: CSV columns read as a clip's group (first one present wins).
GROUP_COLUMNS = ("group", "speaker")
#: Split names accepted for ``test`` (the AV digits corpus calls its held-out split ``heldout``).
SPLIT_ALIASES = {"heldout": "test"}


@dataclass
class ClipSet:
    """Labelled clips.

    Attributes
    ----------
    paths : list of str
    labels : list of str
    groups : list of str or None
        E.g. speaker; used to split so that no group is in both train and test.
    splits : list of str or None
        ``train`` / ``test`` per clip, when the CSV gives them.
    """

    paths: list
    labels: list
    groups: list = None
    splits: list = None

    def subset(self, indices):
        """The clips at ``indices`` (sequence of int), in that order."""
        pick = lambda values: None if values is None else [values[i] for i in indices]  # noqa: E731
        return ClipSet(pick(self.paths), pick(self.labels), pick(self.groups),
                       pick(self.splits))


def load_clip_set(source, suffixes):
    """Read labelled clips from a folder-per-class layout or a CSV.

    Parameters
    ----------
    source : str
        A folder ``ROOT/<label>/<file>`` or a CSV with columns ``path,label`` and optionally
        ``group`` (or ``speaker``) and ``split`` (``train`` / ``test``; ``heldout`` means
        ``test``). Relative paths are resolved against the CSV's folder; rows whose file does
        not end with one of ``suffixes`` are left out, so one CSV can list audio and images.
    suffixes : tuple of str
        File suffixes to keep from a folder.

    Returns
    -------
    ClipSet
    """
    if os.path.isdir(source):
        paths, labels = [], []
        for label in sorted(os.listdir(source)):
            folder = os.path.join(source, label)
            if not os.path.isdir(folder):
                continue
            for root, _, names in os.walk(folder):
                for name in sorted(names):
                    if name.lower().endswith(suffixes):
                        paths.append(os.path.join(root, name))
                        labels.append(label)
        if not paths:
            raise OpenL3liteError(f"{source}: no labelled files (expected ROOT/<label>/<file>)")
        return ClipSet(paths, labels)
    if not os.path.isfile(source):
        raise OpenL3liteError(f"{source}: no such folder or CSV file")
    with open(source, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise OpenL3liteError(f"{source}: CSV needs a header with at least 'path' and 'label'")
    rows = [r for r in rows if r["path"].lower().endswith(suffixes)]
    if not rows:
        raise OpenL3liteError(f"{source}: no rows with a {'/'.join(suffixes)} file")
    base = os.path.dirname(os.path.abspath(source))
    paths = [r["path"] if os.path.isabs(r["path"]) else os.path.join(base, r["path"])
             for r in rows]
    group_column = next((c for c in GROUP_COLUMNS if c in rows[0]), None)
    groups = [r[group_column] for r in rows] if group_column else None
    splits = [SPLIT_ALIASES.get(r["split"], r["split"]) for r in rows] \
        if "split" in rows[0] else None
    if splits and set(splits) - {"train", "test"}:
        raise OpenL3liteError(f"{source}: split must be 'train' or 'test' (or 'heldout')")
    return ClipSet(paths, [r["label"] for r in rows], groups, splits)


def fsdd_clip_set(fsdd_root):
    """The Free Spoken Digit Dataset as a clip set: label = digit, group = speaker.

    Parameters
    ----------
    fsdd_root : str
        Folder holding ``recordings/{digit}_{speaker}_{index}.wav``.

    Returns
    -------
    ClipSet
    """
    folder = os.path.join(fsdd_root, "recordings")
    if not os.path.isdir(folder):
        raise OpenL3liteError(f"{folder}: not found")
    pattern = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")
    rows = sorted((m.group(0), m.group(1), m.group(2))
                  for m in map(pattern.match, os.listdir(folder)) if m)
    return ClipSet([os.path.join(folder, r[0]) for r in rows], [r[1] for r in rows],
                   [r[2] for r in rows])


# ---------------------------------------------------------------- features

def _per_clip(paths, vector_of, desc, progress, failures):
    """Stack ``vector_of(path)`` over ``paths``; with a ``failures`` list, a file that cannot be
    read is appended to it as ``(path, message)`` and left out instead of raising."""
    from tqdm.auto import tqdm

    rows = []
    for path in tqdm(paths, disable=not progress, unit="clip", desc=desc):
        try:
            rows.append(vector_of(path))
        except (OpenL3liteError, OSError) as exc:
            if failures is None:
                raise
            failures.append((path, str(exc)))
    if not rows:
        raise OpenL3liteError("no clip could be read")
    return np.stack(rows).astype(np.float32)


def audio_clip_features(paths, model, hop_size=0.25, batch_size=64, progress=True,
                        failures=None):
    """One vector per audio clip: mean and max of its window embeddings, concatenated.

    Parameters
    ----------
    paths : list of str
    model : AudioEmbeddingModel
    hop_size : float
        Seconds between windows.
    failures : list, optional
        If given, unreadable clips are appended to it as ``(path, message)`` and left out;
        otherwise the first one raises :class:`OpenL3liteError`.

    Returns
    -------
    np.ndarray, float32, shape (n_clips, 2 * D)
        ``n_clips`` counts the clips read.
    """
    import warnings

    from .api import embed_audio_file

    def vector_of(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # short clips are expected here
            emb, _ = embed_audio_file(path, model, hop_size=hop_size, batch_size=batch_size)
        return np.concatenate([emb.mean(0), emb.max(0)])

    return _per_clip(paths, vector_of, model.metadata.name, progress, failures)


def logmel_features(paths, sr=16000, n_mels=64, progress=True):
    """Log-mel statistics baseline: mean and std over time of a 64-band log-mel spectrogram.

    Returns
    -------
    np.ndarray, float32, shape (n_clips, 2 * n_mels)
    """
    import librosa
    from tqdm.auto import tqdm

    from .audio import downmix, read_audio, resample

    out = []
    for path in tqdm(paths, disable=not progress, unit="clip", desc="log-mel"):
        samples, rate = read_audio(path)
        mono = resample(downmix(samples), rate, sr, "soxr_hq") if rate != sr else downmix(samples)
        mel = librosa.feature.melspectrogram(y=mono, sr=sr, n_fft=512, hop_length=160,
                                             n_mels=n_mels)
        log_mel = np.log(mel + 1e-6)
        out.append(np.concatenate([log_mel.mean(1), log_mel.std(1)]))
    return np.stack(out).astype(np.float32)


def image_clip_features(paths, model, batch_size=32, progress=True, failures=None):
    """One embedding per image file.

    Parameters
    ----------
    paths : list of str
    model : ImageEmbeddingModel
    failures : list, optional
        As for :func:`audio_clip_features`.

    Returns
    -------
    np.ndarray, float32, shape (n_images, D)
    """
    from .api import embed_images
    from .image import as_image_batch, read_image

    def vector_of(path):
        return embed_images(as_image_batch(read_image(path), path), model, batch_size)[0]

    return _per_clip(paths, vector_of, model.metadata.name, progress, failures)


# ---------------------------------------------------------------- the probe

@dataclass
class ProbeResult:
    """Accuracy of one feature set."""

    accuracy: float
    per_class: dict
    confusion: list
    labels: list
    fold_accuracies: list = field(default_factory=list)


def _fit_predict(x_train, y_train, x_test):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
    probe.fit(x_train, y_train)
    return probe.predict(x_test)


def split_indices(clips, train_groups=None, test_groups=None, test_fraction=0.25, seed=0):
    """Train / test indices: by explicit groups, by the CSV's split column, or stratified.

    Returns
    -------
    train, test : np.ndarray of int
    """
    n = len(clips.paths)
    if train_groups or test_groups:
        if clips.groups is None:
            raise OpenL3liteError("train/test groups given but the clips have no groups")
        groups = np.asarray(clips.groups)
        train = np.flatnonzero(np.isin(groups, list(train_groups or [])))
        test = np.flatnonzero(np.isin(groups, list(test_groups or [])))
        if train_groups and not test_groups:
            test = np.setdiff1d(np.arange(n), train)
    elif clips.splits is not None:
        splits = np.asarray(clips.splits)
        train, test = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "test")
    else:
        from sklearn.model_selection import train_test_split

        try:
            train, test = train_test_split(np.arange(n), test_size=test_fraction,
                                           random_state=seed, stratify=clips.labels)
        except ValueError as exc:  # e.g. fewer test clips than labels
            raise OpenL3liteError(f"cannot split {n} clips {1 - test_fraction:.0%}/"
                                  f"{test_fraction:.0%} by label: {exc}") from None
    if len(train) == 0 or len(test) == 0:
        raise OpenL3liteError("the split leaves no training or no test clips")
    if len(set(np.asarray(clips.labels)[train].tolist())) < 2:
        raise OpenL3liteError("the training clips have only one label; a classifier needs two "
                              "or more")
    return np.asarray(train), np.asarray(test)


def check_probe_plan(clips, train_groups=None, test_groups=None, test_fraction=0.25, kfold=0,
                     seed=0):
    """Refuse a split or a k-fold count the clips cannot support, before any embedding.

    Parameters
    ----------
    clips : ClipSet
    train_groups, test_groups : list of str, optional
    test_fraction : float
        In (0, 1).
    kfold : int
        0 (none) or at least 2; no more than the clips' groups (when they have groups) or the
        clips of the rarest label.
    seed : int
        Seeds the stratified split, as for :func:`split_indices`.

    Returns
    -------
    train, test : np.ndarray of int
        The split (:func:`split_indices`).

    Raises
    ------
    OpenL3liteError
    """
    if not 0 < test_fraction < 1:
        raise OpenL3liteError(f"invalid test_fraction {test_fraction}: must be in (0, 1)")
    if not train_groups and not test_groups and clips.splits is None:
        counts = np.unique(np.asarray(clips.labels), return_counts=True)[1]
        if counts.min() < 2:
            raise OpenL3liteError("a stratified split needs at least 2 clips of every label; "
                                  "some label has 1 (give a split column or groups instead)")
    train, test = split_indices(clips, train_groups, test_groups, test_fraction, seed)
    if kfold in (0, None):
        return train, test
    if not isinstance(kfold, (int, np.integer)) or kfold < 2:
        raise OpenL3liteError(f"invalid kfold {kfold!r}: must be 0 (none) or at least 2")
    if clips.groups is not None:
        n_groups = len(set(clips.groups))
        if kfold > n_groups:
            raise OpenL3liteError(f"kfold {kfold} needs at least {kfold} groups; the clips "
                                  f"have {n_groups}")
    else:
        rarest = int(np.unique(np.asarray(clips.labels), return_counts=True)[1].min())
        if kfold > rarest:
            raise OpenL3liteError(f"kfold {kfold} needs at least {kfold} clips of every label; "
                                  f"the rarest label has {rarest}")
    return train, test


def linear_probe(features, labels, train, test, kfold=0, groups=None, seed=0):
    """Fit a z-scored linear classifier on ``train`` and score it on ``test``.

    Parameters
    ----------
    features : np.ndarray, shape (n, D)
    labels : sequence of str, length n
    train, test : np.ndarray of int
    kfold : int
        Also run k-fold cross-validation over all clips (GroupKFold when ``groups``).
    groups : sequence, optional

    Returns
    -------
    ProbeResult
    """
    from sklearn.metrics import confusion_matrix

    labels = np.asarray(labels)
    classes = sorted(set(labels.tolist()))
    predicted = _fit_predict(features[train], labels[train], features[test])
    truth = labels[test]
    cm = confusion_matrix(truth, predicted, labels=classes)
    per_class = {c: float((predicted[truth == c] == c).mean()) for c in classes
                 if (truth == c).any()}
    folds = []
    if kfold and kfold > 1:
        from sklearn.model_selection import GroupKFold, StratifiedKFold

        splitter = (GroupKFold(kfold) if groups is not None
                    else StratifiedKFold(kfold, shuffle=True, random_state=seed))
        for tr, te in splitter.split(features, labels, groups):
            folds.append(float((_fit_predict(features[tr], labels[tr], features[te])
                                == labels[te]).mean()))
    return ProbeResult(float((predicted == truth).mean()), per_class, cm.tolist(), classes, folds)


# ---------------------------------------------------------------- reports

def evaluate(clips, feature_sets, train_groups=None, test_groups=None, test_fraction=0.25,
             kfold=0, seed=0):
    """Linear-probe accuracy of several feature sets on one clip set.

    Parameters
    ----------
    clips : ClipSet
    feature_sets : dict of str -> np.ndarray (n_clips, D)
    train_groups, test_groups : list of str, optional

    Returns
    -------
    dict
        ``{"n_train", "n_test", "split", "results": {name: ProbeResult}}``.
    """
    train, test = check_probe_plan(clips, train_groups, test_groups, test_fraction, kfold, seed)
    split = (f"groups {','.join(train_groups or [])} -> {','.join(test_groups or ['rest'])}"
             if train_groups or test_groups else
             "CSV split column" if clips.splits is not None else
             f"stratified {1 - test_fraction:.0%}/{test_fraction:.0%}")
    results = {name: linear_probe(x, clips.labels, train, test, kfold, clips.groups, seed)
               for name, x in feature_sets.items()}
    return {"n_train": int(len(train)), "n_test": int(len(test)), "split": split,
            "results": results}


def format_report(report):
    """A readable table of a report from :func:`evaluate`.

    Returns
    -------
    str
    """
    lines = [f"linear probe: {report['n_train']} train / {report['n_test']} test clips "
             f"({report['split']})", "", "| features | accuracy | k-fold mean |",
             "| --- | --- | --- |"]
    if report.get("skipped"):
        lines[0] += f"; {len(report['skipped'])} unreadable file(s) left out"
    for name, result in report["results"].items():
        folds = f"{np.mean(result.fold_accuracies):.3f}" if result.fold_accuracies else "-"
        lines.append(f"| {name} | {result.accuracy:.3f} | {folds} |")
    return "\n".join(lines)


def write_report(report, out_dir):
    """Write ``report.json``, ``report.md`` and one confusion-matrix PNG per feature set.

    Returns
    -------
    list of str
        Files written.
    """
    from .output import write_text_atomic
    from .plots import plot_confusion_matrix

    os.makedirs(out_dir, exist_ok=True)
    written = []
    data = {k: v for k, v in report.items() if k != "results"}
    data["results"] = {name: vars(r) for name, r in report["results"].items()}
    for name, payload in (("report.json", json.dumps(data, indent=1)),
                          ("report.md", format_report(report) + "\n")):
        path = os.path.join(out_dir, name)
        write_text_atomic(path, payload)
        written.append(path)
    for name, result in report["results"].items():
        path = os.path.join(out_dir, f"confusion_{re.sub(r'[^A-Za-z0-9_-]+', '_', name)}.png")
        plot_confusion_matrix(np.asarray(result.confusion), result.labels, path,
                              f"{name}: accuracy {result.accuracy:.3f}")
        written.append(path)
    return written


# ---------------------------------------------------------------- AVC accuracy

def avc_accuracy(avc_model, dataset_dir, n_pairs=2048, batch_size=64, seed=0, progress=True):
    """Audio-visual correspondence accuracy of an AVC model on fresh pairs of a dataset.

    Pairs are sampled as in training (half corresponding: a frame and an overlapping 1-second
    clip of the same video; half not: frame and clip of two different videos), without
    augmentation (centre crop, no gain jitter), reproducibly from ``seed``.

    Parameters
    ----------
    avc_model : openl3lite.l3net.L3Net or keras.Model
        As :func:`score_avc_batches` takes it.
    dataset_dir : str
        A prepared dataset (``l3embed prepare``), e.g. of videos never seen in training.
    n_pairs : int
        Pairs to score (rounded up to whole batches).
    batch_size : int
        Pairs per batch (even).
    seed : int
    progress : bool

    Returns
    -------
    dict
        ``accuracy`` (share of pairs classified correctly), ``loss`` (mean cross-entropy,
        nats), ``n_pairs``, ``stderr`` (binomial standard error of the accuracy),
        ``positive_accuracy`` and ``negative_accuracy``.
    """
    from tqdm.auto import tqdm

    from .training.sampling import PairSampler

    if not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
        raise OpenL3liteError(f"invalid n_pairs {n_pairs!r}: must be a positive integer")
    sampler = PairSampler(os.fspath(dataset_dir), batch_size=batch_size, seed=seed,
                          augment=False)
    n_batches = -(-n_pairs // batch_size)
    batches = (sampler.sample_batch(k) for k in tqdm(range(n_batches), disable=not progress,
                                                     unit="batch", desc="AVC pairs"))
    return score_avc_batches(avc_model, batches)


#: Probabilities are clipped to ``[AVC_LOSS_EPSILON, 1 - AVC_LOSS_EPSILON]`` before the log, as
#: Keras' cross-entropy (the training loss) clips them with ``keras.config.epsilon()``.
AVC_LOSS_EPSILON = 1e-7


def score_avc_batches(avc_model, batches):
    """Accuracy and loss of an AVC model on batches of pairs (inference mode).

    The one AVC scoring function: training's validation and held-out rows and
    ``l3embed evaluate-avc`` (:func:`avc_accuracy`) both use it.

    Parameters
    ----------
    avc_model : openl3lite.l3net.L3Net or keras.Model
        Anything whose ``predict_on_batch`` maps ``{"audio": (B, 48000), "image": (B, 224,
        224, 3)}`` to (B, 2) probabilities (index 1 = corresponds): an L3Net or its
        ``avc_model``.
    batches : iterable of (dict, np.ndarray)
        ``(inputs, labels)``, labels int (B,) with 1 for corresponding pairs, e.g.
        :meth:`openl3lite.training.sampling.PairSampler.sample_batch` results.

    Returns
    -------
    dict
        ``accuracy`` (share of pairs whose larger probability is their label's), ``loss``
        (mean cross-entropy over pairs, nats, probabilities clipped by
        :data:`AVC_LOSS_EPSILON`), ``n_pairs``, ``stderr`` (binomial standard error of the
        accuracy), ``positive_accuracy`` and ``negative_accuracy``.
    """
    correct, nll, labels_all = [], [], []
    for inputs, labels in batches:
        labels = np.asarray(labels)
        probs = np.asarray(avc_model.predict_on_batch(inputs), dtype=np.float64)
        correct.append(np.argmax(probs, axis=1) == labels)
        chosen = probs[np.arange(len(labels)), labels]
        nll.append(-np.log(np.clip(chosen, AVC_LOSS_EPSILON, 1.0 - AVC_LOSS_EPSILON)))
        labels_all.append(labels)
    correct, nll, labels = map(np.concatenate, (correct, nll, labels_all))
    return dict(pair_accuracy(correct, labels), loss=float(nll.mean()))


def pair_accuracy(correct, labels):
    """How often AVC decisions were right, overall and per class.

    Parameters
    ----------
    correct : np.ndarray of bool, shape (n,)
        Whether each pair was classified correctly.
    labels : np.ndarray of int or bool, shape (n,)
        1 (True) for corresponding pairs.

    Returns
    -------
    dict
        ``accuracy``, ``n_pairs``, ``stderr`` (binomial standard error of the accuracy),
        ``positive_accuracy`` and ``negative_accuracy``.
    """
    correct, labels = np.asarray(correct, bool), np.asarray(labels).astype(bool)
    accuracy = float(correct.mean())
    return {"accuracy": accuracy, "n_pairs": int(len(correct)),
            "stderr": float(np.sqrt(accuracy * (1 - accuracy) / len(correct))),
            "positive_accuracy": float(correct[labels].mean()),
            "negative_accuracy": float(correct[~labels].mean())}
