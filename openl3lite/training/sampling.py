"""Audio-visual correspondence pairs, sampled as the paper does.

* positive (label 1): a random frame of a random video and a random 1-second clip of the same
  video that overlaps the frame's time (its start is uniform over ``[t - 1, t]``, kept inside
  the video);
* negative (label 0): a random frame of one video and a random 1-second clip of a different one;
* exactly half of each batch is positive;
* images: random 224x224 crop of the 256-px frame, random horizontal flip, brightness and
  saturation jitter, then [-1, 1]; audio: a random gain in [0.9, 1.1] over the whole clip.

``speed_jitter`` (an addition to the paper, off by default) also plays each training clip at a
random speed in ``[1 - j, 1 + j]``: the ``speed`` seconds of audio centred on the sampled clip
are resampled (soxr) to one second, so tempo and pitch change together, as speed perturbation
does for speech recognition. The clip's centre stays put, so its edges move by at most ``j/2``
seconds.

With ``negatives="in-batch"`` a batch is instead B positive pairs, from B different videos where
the sampler has that many, and training scores every frame against every clip of the batch
(:func:`grid_targets`): the B matching pairs are positives, combinations of different videos are
negatives (the paper's definition), and combinations of one video at other moments are ignored.

Batch ``k`` depends only on ``(seed, k)``, so batches can be produced by any number of workers in
any order and a resumed run continues with exactly the batches it would have seen.
"""

import os
import threading
from dataclasses import dataclass

import numpy as np

from ..checks import check_choice, check_pair_batch_size
from ..errors import OpenL3liteError
from ..facts import TARGET_SR, WINDOW_LEN
from .prepare import load_manifest

CROP = 224
#: One training clip: one window (1 s at 48 kHz).
CLIP_SAMPLES = WINDOW_LEN
#: How negatives are formed: the paper's sampled 50/50 pairs, or all other pairs of the batch.
NEGATIVE_MODES = ("sampled", "in-batch")
#: Label of an in-batch combination that is neither a positive nor a negative (same video).
IGNORED = -1


@dataclass
class PairInfo:
    """Where one sampled pair came from (for tests and inspection).

    Attributes
    ----------
    frame_video, clip_video : str
        Video ids of the frame and of the audio clip.
    frame_time : float
        Seconds.
    clip_start : float
        Seconds.
    label : int
        1 if the pair corresponds.
    speed : float
        Playback speed of the clip (1 unless ``speed_jitter``).
    """

    frame_video: str
    clip_video: str
    frame_time: float
    clip_start: float
    label: int
    speed: float = 1.0


def check_speed_jitter(speed_jitter):
    """Refuse a speed jitter outside [0, 0.5) (the clip's speed range ``1 -/+ speed_jitter``).

    Raises
    ------
    OpenL3liteError
    """
    if not 0 <= speed_jitter < 0.5:
        raise OpenL3liteError(f"invalid speed_jitter {speed_jitter}: must be in [0, 0.5)")


def split_videos(manifest, val_fraction=0.1, seed=0):
    """Split a dataset's videos into training and validation sets, by video.

    Parameters
    ----------
    manifest : dict
        From :func:`~openl3lite.training.prepare.load_manifest`.
    val_fraction : float
        Share of videos held out for validation, in [0, 1).
    seed : int

    Returns
    -------
    train_ids, val_ids : list of str
    """
    if not 0 <= val_fraction < 1:
        raise OpenL3liteError(f"invalid val_fraction {val_fraction}: must be in [0, 1)")
    ids = sorted(manifest["videos"])
    order = np.random.default_rng(seed).permutation(len(ids))
    n_val = int(round(val_fraction * len(ids)))
    if val_fraction > 0 and len(ids) >= 4:
        n_val = max(2, n_val)
    val = sorted(ids[i] for i in order[:n_val])
    train = sorted(ids[i] for i in order[n_val:])
    return train, val


class PairSampler:
    """Samples AVC batches from a prepared dataset.

    Parameters
    ----------
    dataset_dir : str
    video_ids : list of str, optional
        Videos to sample from (all if None); at least two.
    batch_size : int
        Pairs per batch (even).
    seed : int
    augment : bool
        Random crops, flips, colour and gain jitter (off: centre crop, no jitter).
    negatives : str
        ``sampled`` (the paper's 50/50 pairs) or ``in-batch`` (B positives; see the module).
    speed_jitter : float
        With ``augment``, play each clip at a random speed in ``[1 - speed_jitter,
        1 + speed_jitter]`` (see the module); 0 (default) leaves clips as they are. In [0, 0.5).
    """

    def __init__(self, dataset_dir, video_ids=None, batch_size=64, seed=0, augment=True,
                 negatives="sampled", speed_jitter=0.0):
        check_choice("negatives", negatives, NEGATIVE_MODES)
        check_pair_batch_size(batch_size)
        check_speed_jitter(speed_jitter)
        self.dataset_dir = dataset_dir
        manifest = load_manifest(dataset_dir)
        self.records = manifest["videos"]
        self.video_ids = sorted(video_ids if video_ids is not None else self.records)
        missing = [v for v in self.video_ids if v not in self.records]
        if missing:
            raise OpenL3liteError(f"{dataset_dir}: unknown videos {missing[:3]}")
        if len(self.video_ids) < 2:
            raise OpenL3liteError(f"{dataset_dir}: need at least two videos to sample negatives")
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment
        self.negatives = negatives
        self.speed_jitter = float(speed_jitter)
        self._arrays = {}
        self._lock = threading.Lock()

    def _open(self, vid):
        with self._lock:
            if vid not in self._arrays:
                record = self.records[vid]
                audio = np.load(os.path.join(self.dataset_dir, record.audio_file), mmap_mode="r")
                frames = np.load(os.path.join(self.dataset_dir, record.frames_file),
                                 mmap_mode="r")
                self._arrays[vid] = (audio, frames)
            return self._arrays[vid]

    def _clip(self, vid, start_s, gain, speed=1.0):
        audio, _ = self._open(vid)
        start = int(round(start_s * TARGET_SR))
        if speed == 1.0:
            clip = np.asarray(audio[start : start + CLIP_SAMPLES], dtype=np.float32) / 32767.0
        else:
            import soxr

            n_in = int(round(CLIP_SAMPLES * speed))
            start = min(max(0, start + (CLIP_SAMPLES - n_in) // 2), max(0, len(audio) - n_in))
            source = np.asarray(audio[start : start + n_in], dtype=np.float32) / 32767.0
            clip = soxr.resample(source, TARGET_SR * speed, TARGET_SR, "HQ")[:CLIP_SAMPLES]
        if len(clip) < CLIP_SAMPLES:
            clip = np.pad(clip, (0, CLIP_SAMPLES - len(clip)))
        return clip * gain

    def _image(self, frame, rng):
        height, width = frame.shape[:2]
        if self.augment:
            top, left = rng.integers(0, height - CROP + 1), rng.integers(0, width - CROP + 1)
        else:
            top, left = (height - CROP) // 2, (width - CROP) // 2
        image = np.asarray(frame[top : top + CROP, left : left + CROP], dtype=np.float32) / 255.0
        if self.augment:
            if rng.random() < 0.5:
                image = image[:, ::-1]
            grey = image.mean(axis=2, keepdims=True)
            image = grey + (image - grey) * rng.uniform(0.8, 1.2)
            image = image + rng.uniform(-0.1, 0.1)
            image = np.clip(image, 0.0, 1.0)
        return 2.0 * image - 1.0

    def _random_clip_start(self, vid, rng, frame_time=None):
        duration = self.records[vid].duration_s
        latest = max(0.0, duration - 1.0)
        if frame_time is None:
            return rng.uniform(0.0, latest)
        low, high = max(0.0, frame_time - 1.0), min(frame_time, latest)
        return rng.uniform(low, high) if high > low else min(low, latest)

    def sample_batch(self, k, return_info=False):
        """Batch number ``k``.

        Parameters
        ----------
        k : int
        return_info : bool
            Also return a :class:`PairInfo` per pair.

        Returns
        -------
        inputs : dict
            ``audio`` float32 (B, 48000) at 48 kHz, ``image`` float32 (B, 224, 224, 3) in
            [-1, 1].
        labels : np.ndarray, int32
            Shape (B,), 1 for corresponding pairs; with ``negatives="in-batch"`` the (B, B) grid
            of :func:`pair_grid_labels` (every pair of the batch corresponds).
        infos : list of PairInfo, only if ``return_info``
        """
        rng = np.random.default_rng([self.seed, k])
        n = self.batch_size
        if self.negatives == "in-batch":
            n_videos = len(self.video_ids)
            rounds = -(-n // n_videos)  # each video once per round: distinct videos when possible
            picks = np.concatenate([rng.permutation(n_videos) for _ in range(rounds)])[:n]
            labels = pair_grid_labels(picks)
            plans = self._positive_plans(picks, rng)
        else:
            labels = np.zeros(n, np.int32)
            labels[: n // 2] = 1
            rng.shuffle(labels)
            plans = self._sampled_plans(labels, rng)
        inputs, infos = self._render(plans, rng)
        return (inputs, labels, infos) if return_info else (inputs, labels)

    def _sampled_plans(self, labels, rng):
        """The paper's pairs, one per label: (frame video, frame index, clip video, clip start,
        label), drawn lazily so that they interleave with the rendering's draws from ``rng``."""
        for label in labels:
            frame_vid = self.video_ids[rng.integers(len(self.video_ids))]
            index = int(rng.integers(self.records[frame_vid].n_frames))
            if label:
                frame_time = self.records[frame_vid].frame_times_s[index]
                clip_vid, start = frame_vid, self._random_clip_start(frame_vid, rng, frame_time)
            else:
                other = int(rng.integers(len(self.video_ids) - 1))
                other += other >= self.video_ids.index(frame_vid)
                clip_vid = self.video_ids[other]
                start = self._random_clip_start(clip_vid, rng)
            yield frame_vid, index, clip_vid, start, int(label)

    def _positive_plans(self, picks, rng):
        """A corresponding pair from each picked video (index into ``video_ids``), as
        :meth:`_sampled_plans` yields them."""
        for pick in picks:
            vid = self.video_ids[pick]
            index = int(rng.integers(self.records[vid].n_frames))
            start = self._random_clip_start(vid, rng, self.records[vid].frame_times_s[index])
            yield vid, index, vid, start, 1

    def _render(self, plans, rng):
        """Cut and augment each planned pair: its clip (with gain jitter) and its frame.

        Returns
        -------
        inputs : dict
            ``audio`` float32 (B, 48000), ``image`` float32 (B, 224, 224, 3).
        infos : list of PairInfo
        """
        audio = np.empty((self.batch_size, CLIP_SAMPLES), np.float32)
        images = np.empty((self.batch_size, CROP, CROP, 3), np.float32)
        infos = []
        for i, (frame_vid, index, clip_vid, start, label) in enumerate(plans):
            gain = rng.uniform(0.9, 1.1) if self.augment else 1.0
            speed = (rng.uniform(1 - self.speed_jitter, 1 + self.speed_jitter)
                     if self.augment and self.speed_jitter else 1.0)
            audio[i] = self._clip(clip_vid, start, gain, speed)
            images[i] = self._image(self._open(frame_vid)[1][index], rng)
            frame_time = self.records[frame_vid].frame_times_s[index]
            infos.append(PairInfo(frame_vid, clip_vid, frame_time, start, label, speed))
        return {"audio": audio, "image": images}, infos


def pair_grid_labels(video_index):
    """Labels of every (frame ``i``, clip ``j``) combination of an in-batch batch.

    Parameters
    ----------
    video_index : array-like of int, shape (B,)
        The video each pair (frame and clip) came from.

    Returns
    -------
    np.ndarray, int32, shape (B, B)
        1 on the diagonal (the sampled positives), 0 where frame and clip come from different
        videos, :data:`IGNORED` where they come from the same video at other moments.
    """
    video_index = np.asarray(video_index)
    same_video = video_index[:, None] == video_index[None, :]
    labels = np.where(same_video, IGNORED, 0).astype(np.int32)
    np.fill_diagonal(labels, 1)
    return labels


def grid_targets(labels):
    """Targets and sample weights for training on a label grid, positives and negatives 50/50.

    Parameters
    ----------
    labels : np.ndarray, int, shape (B, B)
        From :func:`pair_grid_labels`.

    Returns
    -------
    targets : np.ndarray, int32, shape (B, B)
        1 for positives, 0 otherwise.
    weights : np.ndarray, float32, shape (B, B)
        Positives share half of the total weight and negatives the other half; ignored
        combinations weigh 0. Scaled so the weights sum to ``B * B``: a mean over the grid is the
        balanced mean.
    """
    labels = np.asarray(labels)
    positive, negative = labels == 1, labels == 0
    if not positive.any() or not negative.any():
        raise OpenL3liteError("a label grid needs positives and negatives (batch from one video?)")
    total = labels.size
    weights = (positive * (0.5 * total / positive.sum())
               + negative * (0.5 * total / negative.sum()))
    return positive.astype(np.int32), weights.astype(np.float32)
