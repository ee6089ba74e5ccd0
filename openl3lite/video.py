"""Video decoding with moviepy (ffmpeg): the audio track and the frames.

Every failure becomes an :class:`~openl3lite.errors.OpenL3liteError` naming the file.
"""

import contextlib
import os

import numpy as np

from .errors import OpenL3liteError


@contextlib.contextmanager
def open_video(path, **kwargs):
    """Open a video with moviepy, closing it (and its ffmpeg readers) afterwards.

    Parameters
    ----------
    path : str or os.PathLike
    **kwargs
        Passed to ``moviepy.VideoFileClip`` (e.g. ``target_resolution``).

    Yields
    ------
    moviepy.VideoFileClip
    """
    from moviepy import VideoFileClip

    path = os.fspath(path)
    if not os.path.exists(path):
        raise OpenL3liteError(f"{path}: file not found")
    try:
        clip = VideoFileClip(path, **kwargs)
    except Exception as exc:
        raise OpenL3liteError(f"{path}: not a readable video ({_short(exc)})") from None
    try:
        yield clip
    finally:
        clip.close()


def read_video_audio(path, sr=48000):
    """Decode a video's audio track, resampled by ffmpeg to ``sr``.

    Parameters
    ----------
    path : str or os.PathLike
    sr : int
        Output sample rate in Hz.

    Returns
    -------
    np.ndarray, float64, shape (n_samples, n_channels)
        Samples in [-1, 1].

    Raises
    ------
    OpenL3liteError
        If the file is unreadable or has no audio track.
    """
    with open_video(path) as clip:
        if clip.audio is None:
            raise OpenL3liteError(f"{os.fspath(path)}: video has no audio track")
        try:
            samples = clip.audio.to_soundarray(fps=sr)
        except Exception as exc:
            raise OpenL3liteError(f"{os.fspath(path)}: could not decode the audio track "
                                  f"({_short(exc)})") from None
    samples = np.asarray(samples, dtype=np.float64)
    return samples[:, np.newaxis] if samples.ndim == 1 else samples


def _target_resolution(clip_size, size, short_side):
    """moviepy's ``target_resolution`` (width, height) for a requested size."""
    if size is not None:
        return (size[1], size[0])  # stretched, as OpenL3 does
    if short_side is not None:
        width, height = clip_size
        scale = short_side / min(width, height)
        return (max(short_side, round(width * scale)), max(short_side, round(height * scale)))
    return None


def iter_video_frames(path, size=None, short_side=None, fps=None):
    """Yield a video's frames with their times.

    Parameters
    ----------
    path : str or os.PathLike
    size : tuple of int, optional
        (height, width) to stretch every frame to (OpenL3 uses (256, 256)).
    short_side : int, optional
        Scale so the shorter side has this many pixels, keeping the aspect ratio.
    fps : float, optional
        Frames per second to sample; the video's own rate if None.

    Yields
    ------
    time_s : float
    frame : np.ndarray, uint8, shape (H, W, 3)
    """
    with open_video(path) as probe:
        target = _target_resolution(probe.size, size, short_side)
        native_fps = probe.fps
    kwargs = {"audio": False}
    if target is not None:
        kwargs["target_resolution"] = target
    with open_video(path, **kwargs) as clip:
        rate = fps or native_fps or clip.fps
        try:
            for index, frame in enumerate(clip.iter_frames(fps=rate, dtype="uint8")):
                yield index / rate, np.asarray(frame)[..., :3]
        except OpenL3liteError:
            raise
        except Exception as exc:
            raise OpenL3liteError(f"{os.fspath(path)}: could not decode frames "
                                  f"({_short(exc)})") from None


def read_video_frames(path, size=None, short_side=None, fps=None):
    """Decode all frames of a video (see :func:`iter_video_frames`).

    Returns
    -------
    frames : np.ndarray, uint8, shape (n_frames, H, W, 3)
    fps : float
        Frame rate the frames were sampled at.
    """
    with open_video(path) as probe:
        rate = fps or probe.fps
    frames = [frame for _, frame in iter_video_frames(path, size, short_side, rate)]
    if not frames:
        return np.zeros((0, 1, 1, 3), np.uint8), float(rate)
    return np.stack(frames), float(rate)


def video_duration(path):
    """Duration of a video in seconds."""
    with open_video(path) as clip:
        return float(clip.duration)


def _short(exc):
    text = str(exc).strip().splitlines()
    return text[-1][:200] if text else type(exc).__name__
