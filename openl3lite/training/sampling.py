"""Audio-visual correspondence pairs, sampled as the paper does.

* positive (label 1): a random frame of a random video and a random 1-second clip of the same
  video that overlaps the frame's time (its start is uniform over ``[t - 1, t]``, kept inside
  the video);
* negative (label 0): a random frame of one video and a random 1-second clip of a different one;
* exactly half of each batch is positive;
* images: random 224x224 crop of the 256-px frame, random horizontal flip, brightness and
  saturation jitter, then [-1, 1]; audio: a random gain in [0.9, 1.1] over the whole clip.

Batch ``k`` depends only on ``(seed, k)``, so batches can be produced by any number of workers in
any order and a resumed run continues with exactly the batches it would have seen.
"""

import os
import threading
from dataclasses import dataclass

import numpy as np

from ..errors import OpenL3liteError
from .prepare import SAMPLE_RATE, load_manifest

CROP = 224
CLIP_SAMPLES = SAMPLE_RATE


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
    """

    frame_video: str
    clip_video: str
    frame_time: float
    clip_start: float
    label: int


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
    """

    def __init__(self, dataset_dir, video_ids=None, batch_size=64, seed=0, augment=True):
        self.dataset_dir = dataset_dir
        manifest = load_manifest(dataset_dir)
        self.records = manifest["videos"]
        self.video_ids = sorted(video_ids if video_ids is not None else self.records)
        missing = [v for v in self.video_ids if v not in self.records]
        if missing:
            raise OpenL3liteError(f"{dataset_dir}: unknown videos {missing[:3]}")
        if len(self.video_ids) < 2:
            raise OpenL3liteError(f"{dataset_dir}: need at least two videos to sample negatives")
        if batch_size < 2 or batch_size % 2:
            raise OpenL3liteError(f"invalid batch_size {batch_size}: must be even and >= 2")
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment
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

    def _clip(self, vid, start_s, gain):
        audio, _ = self._open(vid)
        start = int(round(start_s * SAMPLE_RATE))
        clip = np.asarray(audio[start : start + CLIP_SAMPLES], dtype=np.float32) / 32767.0
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
        labels : np.ndarray, int32, shape (B,)
        infos : list of PairInfo, only if ``return_info``
        """
        rng = np.random.default_rng([self.seed, k])
        n = self.batch_size
        labels = np.zeros(n, np.int32)
        labels[: n // 2] = 1
        rng.shuffle(labels)
        audio = np.empty((n, CLIP_SAMPLES), np.float32)
        images = np.empty((n, CROP, CROP, 3), np.float32)
        infos = []
        for i, label in enumerate(labels):
            frame_vid = self.video_ids[rng.integers(len(self.video_ids))]
            record = self.records[frame_vid]
            index = int(rng.integers(record.n_frames))
            frame_time = record.frame_times_s[index]
            if label:
                clip_vid, start = frame_vid, self._random_clip_start(frame_vid, rng, frame_time)
            else:
                other = int(rng.integers(len(self.video_ids) - 1))
                other += other >= self.video_ids.index(frame_vid)
                clip_vid = self.video_ids[other]
                start = self._random_clip_start(clip_vid, rng)
            gain = rng.uniform(0.9, 1.1) if self.augment else 1.0
            audio[i] = self._clip(clip_vid, start, gain)
            images[i] = self._image(self._open(frame_vid)[1][index], rng)
            infos.append(PairInfo(frame_vid, clip_vid, frame_time, start, int(label)))
        inputs = {"audio": audio, "image": images}
        return (inputs, labels, infos) if return_info else (inputs, labels)
