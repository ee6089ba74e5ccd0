"""Decode videos once into a dataset that training samples from quickly.

Layout of a dataset folder::

    manifest.json              dataset settings and one record per video
    shards/<id>.audio.npy      int16 mono audio at 48 kHz (full scale = 32767)
    shards/<id>.frames.npy     uint8 frames (n, H, W, 3), shorter side 256, at ``fps``

``.npy`` shards open memory-mapped, so a sampler reads one frame or one second of audio without
loading a whole video. Every file is written to a temporary name and renamed, and the manifest is
rewritten after each finished video, so an interrupted run loses at most the videos in flight and
a re-run adds new videos without redoing finished ones.
"""

import hashlib
import json
import os
import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import OpenL3liteError
from ..facts import TARGET_SR
from ..output import atomic_write, write_json_atomic

FORMAT_VERSION = 1
#: Sample rate of the prepared shards' audio: the networks' (:data:`openl3lite.facts.TARGET_SR`).
SAMPLE_RATE = TARGET_SR
MIN_DURATION_S = 1.0


@dataclass
class VideoRecord:
    """One prepared video.

    Attributes
    ----------
    id : str
    source : str
        Absolute path of the video.
    fingerprint : str
        Size and modification time of the source when prepared.
    duration_s : float
        Audio duration in seconds.
    n_frames : int
    frame_times_s : list of float
        Time of each stored frame, in seconds.
    audio_file, frames_file : str
        Shard files, relative to the dataset folder.
    """

    id: str
    source: str
    fingerprint: str
    duration_s: float
    n_frames: int
    frame_times_s: list
    audio_file: str
    frames_file: str


@dataclass
class PrepareReport:
    """What a :func:`prepare_dataset` run did."""

    added: list = field(default_factory=list)
    already_done: list = field(default_factory=list)
    failed: list = field(default_factory=list)  # (path, reason)

    def line(self):
        """One-line summary."""
        return (f"{len(self.added)} added, {len(self.already_done)} already prepared, "
                f"{len(self.failed)} failed")


def video_id(path):
    """Stable id for a video: its stem plus a hash of its absolute path.

    Returns
    -------
    str
    """
    path = os.path.abspath(os.fspath(path))
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.splitext(os.path.basename(path))[0])[:60]
    return f"{stem}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"


def fingerprint(path):
    """Size and modification time of a file, as a string."""
    stat = os.stat(path)
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def load_manifest(dataset_dir):
    """Read a dataset's manifest.

    Returns
    -------
    dict
        ``{"format_version", "sample_rate", "fps", "short_side", "videos": {id: VideoRecord}}``.

    Raises
    ------
    OpenL3liteError
        If the folder holds no manifest.
    """
    path = os.path.join(dataset_dir, "manifest.json")
    if not os.path.exists(path):
        raise OpenL3liteError(f"{dataset_dir}: not a prepared dataset (no manifest.json); "
                              "run `l3embed prepare` first")
    data = json.loads(open(path).read())
    data["videos"] = {k: VideoRecord(**v) for k, v in data["videos"].items()}
    return data


def _save_manifest(dataset_dir, manifest):
    data = dict(manifest)
    data["videos"] = {k: asdict(v) for k, v in sorted(manifest["videos"].items())}
    write_json_atomic(os.path.join(dataset_dir, "manifest.json"), data)


def _atomic_save_npy(path, array):
    with atomic_write(path, "wb") as f:
        np.save(f, array)


def decode_video(path, dataset_dir, fps, short_side):
    """Decode one video into its shards (runs in a worker process).

    Parameters
    ----------
    path : str
        Video file.
    dataset_dir : str
    fps : float
        Frames per second to keep.
    short_side : int
        Pixels of the frames' shorter side.

    Returns
    -------
    VideoRecord

    Raises
    ------
    OpenL3liteError
        Unreadable video, no audio track, no frames, or shorter than one second.
    """
    from ..audio import downmix
    from ..video import iter_video_frames, read_video_audio

    audio = downmix(read_video_audio(path, SAMPLE_RATE))
    duration = len(audio) / SAMPLE_RATE
    if duration < MIN_DURATION_S:
        raise OpenL3liteError(f"{path}: shorter than {MIN_DURATION_S} s ({duration:.2f} s)")
    times, frames = [], []
    for time_s, frame in iter_video_frames(path, short_side=short_side, fps=fps,
                                            check_cut_short=False):  # checked with the audio
        if time_s >= duration:
            break
        times.append(round(time_s, 6))
        frames.append(frame)
    if not frames:
        raise OpenL3liteError(f"{path}: no video frames could be decoded")
    vid = video_id(path)
    audio_file = os.path.join("shards", f"{vid}.audio.npy")
    frames_file = os.path.join("shards", f"{vid}.frames.npy")
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)
    _atomic_save_npy(os.path.join(dataset_dir, audio_file), pcm)
    _atomic_save_npy(os.path.join(dataset_dir, frames_file), np.stack(frames))
    return VideoRecord(id=vid, source=os.path.abspath(path), fingerprint=fingerprint(path),
                       duration_s=duration, n_frames=len(frames), frame_times_s=times,
                       audio_file=audio_file, frames_file=frames_file)


def _decode_safely(path, dataset_dir, fps, short_side):
    try:
        return path, decode_video(path, dataset_dir, fps, short_side), None
    except OpenL3liteError as exc:
        return path, None, str(exc)
    except Exception as exc:  # a corrupt file must not stop the batch
        return path, None, f"{path}: {type(exc).__name__}: {exc}"


def prepare_dataset(videos, out_dir, fps=4.0, short_side=256, workers=2, progress=True):
    """Decode videos into a dataset folder (see the module docstring), in parallel.

    Parameters
    ----------
    videos : sequence of str
        Video files.
    out_dir : str
        Dataset folder (created; an existing dataset is extended).
    fps : float
        Frames per second to keep.
    short_side : int
        Pixels of the frames' shorter side (at least 224).
    workers : int
        Decoding processes.
    progress : bool
        Show a progress bar.

    Returns
    -------
    PrepareReport
    """
    if not fps > 0:
        raise OpenL3liteError(f"invalid fps {fps!r}: must be positive")
    if short_side < 224:
        raise OpenL3liteError(f"invalid short_side {short_side}: must be at least 224")
    os.makedirs(os.path.join(out_dir, "shards"), exist_ok=True)
    if os.path.exists(os.path.join(out_dir, "manifest.json")):
        manifest = load_manifest(out_dir)
        if (manifest["fps"], manifest["short_side"]) != (fps, short_side):
            raise OpenL3liteError(
                f"{out_dir}: was prepared with fps={manifest['fps']}, short_side="
                f"{manifest['short_side']}; use the same settings to add videos")
    else:
        manifest = {"format_version": FORMAT_VERSION, "sample_rate": SAMPLE_RATE, "fps": fps,
                    "short_side": short_side, "videos": {}}
    report = PrepareReport()
    todo = []
    for path in dict.fromkeys(os.fspath(v) for v in videos):
        record = manifest["videos"].get(video_id(path))
        if record and os.path.exists(path) and record.fingerprint == fingerprint(path) and \
                os.path.exists(os.path.join(out_dir, record.frames_file)):
            report.already_done.append(path)
        else:
            todo.append(path)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), unit="video", disable=not progress, desc="prepare")
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(_decode_safely, p, out_dir, fps, short_side) for p in todo]
        for future in as_completed(futures):
            path, record, error = future.result()
            if error:
                report.failed.append((path, error))
                bar.write(f"skipped {error}")
            else:
                manifest["videos"][record.id] = record
                _save_manifest(out_dir, manifest)
                report.added.append(path)
            bar.update(1)
    bar.close()
    _save_manifest(out_dir, manifest)
    return report
