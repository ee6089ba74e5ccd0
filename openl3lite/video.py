"""Video decoding with moviepy (ffmpeg): the audio track and the frames.

Every failure becomes an :class:`~openl3lite.errors.OpenL3liteError` naming the file. That
includes a file cut short (an interrupted download or copy) whose header still promises the whole
length: moviepy would pad its audio with silence and repeat its last frame to that length.
"""

import contextlib
import os
import re
import subprocess
import warnings

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

    from moviepy.video.io.ffmpeg_reader import ffmpeg_parse_infos

    path = os.fspath(path)
    if not os.path.exists(path):
        raise OpenL3liteError(f"{path}: file not found")
    try:
        infos = ffmpeg_parse_infos(path)
    except Exception as exc:
        raise OpenL3liteError(f"{path}: not a readable video ({_short(exc)})") from None
    if not infos.get("video_found"):
        kind = "an audio file" if infos.get("audio_found") else "no audio either"
        raise OpenL3liteError(f"{path}: has no video track ({kind})")
    try:
        clip = VideoFileClip(path, **kwargs)
    except Exception as exc:
        raise OpenL3liteError(f"{path}: not a readable video ({_short(exc)})") from None
    try:
        yield clip
    finally:
        audio = getattr(clip, "audio", None)
        processes = [getattr(reader, "proc", None)
                     for reader in (getattr(clip, "reader", None), getattr(audio, "reader", None))]
        clip.close()
        # moviepy closes the pipes only of an ffmpeg still running; one that has finished (a
        # short file read whole) would leave them to the garbage collector
        for process in filter(None, processes):
            for stream in (process.stdout, process.stderr):
                if stream is not None and not stream.closed:
                    stream.close()


#: Seconds of picture that may be missing at the end of a video: a container's duration often
#: runs a frame or two past the last frame. More than this means the file is cut short.
MISSING_END_TOLERANCE_S = 1.0
#: What moviepy warns when ffmpeg has no more frame data (it then repeats the last frame).
_NO_FRAME_DATA = re.compile(r"0 bytes read at frame index \d+ .*at time ([\d.]+)/([\d.]+) sec")


def check_audio_complete(path):
    """Refuse a video whose audio data stops before the file says it does.

    ffmpeg's demuxer reports such a file as a "partial file" (an MP4 whose header, written
    first, promises more than the file holds); moviepy would silently pad the missing audio
    with zeros. Only the audio stream is decoded (tens of milliseconds for minutes of audio).

    Parameters
    ----------
    path : str or os.PathLike

    Raises
    ------
    OpenL3liteError
        If ffmpeg reports the file as cut short.
    """
    from moviepy.config import FFMPEG_BINARY

    path = os.fspath(path)
    try:
        done = subprocess.run([FFMPEG_BINARY, "-nostdin", "-v", "error", "-i", path,
                               "-map", "0:a:0", "-f", "null", "-"],
                              capture_output=True, text=True, errors="replace", timeout=3600)
    except (OSError, subprocess.SubprocessError) as exc:
        raise OpenL3liteError(f"{path}: could not check the audio track ({exc})") from None
    if "partial file" in done.stderr:
        raise OpenL3liteError(f"{path}: the file is cut short (truncated download or copy?): "
                              "ffmpeg reports a partial file")


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
        If the file is unreadable, has no audio track or is cut short
        (:func:`check_audio_complete`).
    """
    with open_video(path) as clip:
        if clip.audio is None:
            raise OpenL3liteError(f"{os.fspath(path)}: video has no audio track")
        check_audio_complete(path)
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

    Raises
    ------
    OpenL3liteError
        If the file is unreadable, or its frame data stops more than
        :data:`MISSING_END_TOLERANCE_S` before the duration its header gives.
    """
    with open_video(path) as probe:
        target = _target_resolution(probe.size, size, short_side)
        native_fps = probe.fps
    kwargs = {"audio": False}
    if target is not None:
        kwargs["target_resolution"] = target
    with open_video(path, **kwargs) as clip:
        rate = fps or native_fps or clip.fps
        frames = clip.iter_frames(fps=rate, dtype="uint8")
        index = 0
        while True:
            try:
                frame = _next_frame(frames, path)
            except StopIteration:
                return
            except OpenL3liteError:
                raise
            except Exception as exc:
                raise OpenL3liteError(f"{os.fspath(path)}: could not decode frames "
                                      f"({_short(exc)})") from None
            yield index / rate, np.asarray(frame)[..., :3]
            index += 1


def _next_frame(frames, path):
    """The next frame of moviepy's iterator, refusing frames it makes up for a file cut short.

    moviepy warns, then repeats the last frame, when ffmpeg has no data for a frame; that
    warning is turned into an error unless it comes within :data:`MISSING_END_TOLERANCE_S` of the
    end. Other warnings pass on unchanged.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return next(frames)
        finally:
            for warning in caught:
                missing = _NO_FRAME_DATA.search(str(warning.message))
                if missing is None:
                    warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                           warning.lineno, source=warning.source)
                    continue
                at, total = float(missing.group(1)), float(missing.group(2))
                if total - at > MISSING_END_TOLERANCE_S:
                    raise OpenL3liteError(
                        f"{os.fspath(path)}: the file is cut short (truncated download or "
                        f"copy?): no picture after {at:.2f} s of the {total:.2f} s it should "
                        "last")


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
