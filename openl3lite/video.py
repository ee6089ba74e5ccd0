"""Video decoding with moviepy (ffmpeg): the audio track and the frames.

Every failure becomes an :class:`~openl3lite.errors.OpenL3liteError` naming the file. That
includes a file cut short (an interrupted download or copy) whose header still promises the whole
length: moviepy would pad its audio with silence and repeat its last frame to that length.
A whole file whose picture simply ends before its sound gets an
:class:`~openl3lite.errors.OpenL3liteWarning` (the last frame is repeated, as OpenL3 does).
"""

import contextlib
import gc
import os
import re
import subprocess
import warnings

import numpy as np

from .audio import refuse_cut_short
from .errors import OpenL3liteError, check_input_file, short_reason, warn
from .facts import TARGET_SR


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

    path = check_input_file(path)
    failure = None
    with warnings.catch_warnings(record=True) as caught:  # moviepy warns before failing
        warnings.simplefilter("always")
        try:
            clip = VideoFileClip(path, **kwargs)
        except Exception as exc:
            failure = _why_unreadable(path, exc)
        if failure is not None:  # let the half-made readers go now, their warnings with them
            gc.collect()
    if failure is not None:
        raise OpenL3liteError(failure)
    _show(caught)
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


def _why_unreadable(path, exc):
    """Why moviepy could not open ``path`` (it raised ``exc``): no video track, or ffmpeg's
    reason."""
    from moviepy.video.io.ffmpeg_reader import ffmpeg_parse_infos

    try:
        infos = ffmpeg_parse_infos(path)
    except Exception:
        infos = {"video_found": True}
    if not infos.get("video_found"):
        kind = "an audio file" if infos.get("audio_found") else "no audio either"
        return f"{path}: has no video track ({kind})"
    return f"{path}: not a readable video ({short_reason(exc)})"


def _show(caught):
    """Emit again warnings recorded by ``warnings.catch_warnings(record=True)``."""
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename,
                               warning.lineno, source=warning.source)


#: Seconds of picture that may be missing at the end of a video without a warning: a
#: container's duration often runs a frame or two past the last frame.
MISSING_END_TOLERANCE_S = 1.0
#: What moviepy warns when ffmpeg has no more frame data (it then repeats the last frame).
_NO_FRAME_DATA = re.compile(r"0 bytes read at frame index \d+ .*at time ([\d.]+)/([\d.]+) sec")


def check_not_cut_short(path):
    """Refuse a video file that ends before its own structure says it does.

    Every packet is read without decoding (``ffmpeg -c copy -f null``: tens of milliseconds for
    minutes of video) and ffmpeg's demuxer report is checked
    (:func:`openl3lite.audio.refuse_cut_short`).
    moviepy would decode such a file as if whole, padding its audio with silence and repeating
    its last frame.

    Parameters
    ----------
    path : str or os.PathLike

    Raises
    ------
    OpenL3liteError
        If the file is cut short, or ffmpeg cannot be run.
    """
    from moviepy.config import FFMPEG_BINARY

    path = check_input_file(path)
    try:
        done = subprocess.run([FFMPEG_BINARY, "-nostdin", "-v", "error", "-i", path,
                               "-map", "0", "-c", "copy", "-f", "null", "-"],
                              capture_output=True, text=True, errors="replace", timeout=3600)
    except (OSError, subprocess.SubprocessError) as exc:
        raise OpenL3liteError(f"{path}: could not check the file ({exc})") from None
    refuse_cut_short(path, done.stderr)


#: Samples per block when streaming a video's sound (moviepy's own chunk size).
AUDIO_BLOCK_FRAMES = 50000


@contextlib.contextmanager
def open_video_audio(path, sr=TARGET_SR, check_cut_short=True):
    """Open a video's audio track to stream it, resampled by ffmpeg to ``sr``.

    Parameters
    ----------
    path : str or os.PathLike
    sr : int
        Output sample rate in Hz.
    check_cut_short : bool
        Run :func:`check_not_cut_short` first. Pass False only when the caller has just done
        so (reading the frames of the same file).

    Yields
    ------
    n_samples : int
        Samples per channel in all blocks together.
    blocks : iterator of np.ndarray, float64, shape (<= AUDIO_BLOCK_FRAMES, n_channels)
        Consecutive blocks, samples in [-1, 1]; to be read before the context ends.

    Raises
    ------
    OpenL3liteError
        If the file is unreadable, has no audio track or is cut short
        (:func:`check_not_cut_short`), also while the blocks are read.
    """
    path = os.fspath(path)
    # the reader decodes at sr (ffmpeg resamples); at another rate, moviepy would pick the
    # nearest samples of its reader's 44.1 kHz to make sr
    with open_video(path, audio_fps=sr) as clip:
        if clip.audio is None:
            raise OpenL3liteError(f"{path}: video has no audio track")
        if check_cut_short:
            check_not_cut_short(path)
        audio = clip.audio
        # moviepy 2.1's reader fails on a request spanning over half its buffer (which is
        # shorter for a short file), so whole files under about a second could not be read
        chunk = min(AUDIO_BLOCK_FRAMES, audio.reader.buffersize // 2)
        chunks = audio.iter_chunks(fps=sr, chunksize=chunk, logger=None)
        yield int(sr * audio.duration), _audio_blocks(chunks, path)


def _audio_blocks(chunks, path):
    """moviepy's audio chunks as 2-D float64 arrays."""
    done = object()
    while (chunk := _decode_audio(path, lambda: next(chunks, done))) is not done:
        yield _as_2d(chunk)


def _decode_audio(path, read):
    """``read()``, with moviepy's failures turned into an OpenL3liteError naming ``path``."""
    try:
        return read()
    except Exception as exc:
        raise OpenL3liteError(f"{path}: could not decode the audio track "
                              f"({short_reason(exc)})") from None


def _as_2d(samples):
    samples = np.asarray(samples, dtype=np.float64)
    return samples[:, np.newaxis] if samples.ndim == 1 else samples


def read_video_audio(path, sr=TARGET_SR, check_cut_short=True):
    """Decode a video's whole audio track, resampled by ffmpeg to ``sr``
    (see :func:`open_video_audio`, which takes the same parameters).

    Returns
    -------
    np.ndarray, float64, shape (n_samples, n_channels)
        Samples in [-1, 1].
    """
    with open_video_audio(path, sr, check_cut_short) as (_, blocks):
        return np.concatenate(list(blocks))


def _target_resolution(clip_size, size, short_side):
    """moviepy's ``target_resolution`` (width, height) for a requested size."""
    if size is not None:
        return (size[1], size[0])  # stretched, as OpenL3 does
    if short_side is not None:
        width, height = clip_size
        scale = short_side / min(width, height)
        return (max(short_side, round(width * scale)), max(short_side, round(height * scale)))
    return None


def iter_video_frames(path, size=None, short_side=None, fps=None, check_cut_short=True):
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
    check_cut_short : bool
        Run :func:`check_not_cut_short` first. Pass False only when the caller has just done
        so (reading the audio of the same file).

    Yields
    ------
    time_s : float
    frame : np.ndarray, uint8, shape (H, W, 3)

    Raises
    ------
    OpenL3liteError
        If the file is unreadable or cut short (:func:`check_not_cut_short`).

    Warns
    -----
    OpenL3liteWarning
        If the picture ends more than :data:`MISSING_END_TOLERANCE_S` before the file's
        duration (its sound runs on); the last frame is then repeated, as moviepy does.
    """
    with open_video(path) as probe:
        target = _target_resolution(probe.size, size, short_side)
        native_fps = probe.fps
    if check_cut_short:
        check_not_cut_short(path)
    kwargs = {"audio": False}
    if target is not None:
        kwargs["target_resolution"] = target
    with open_video(path, **kwargs) as clip:
        rate = fps or native_fps or clip.fps
        frames = clip.iter_frames(fps=rate, dtype="uint8")
        index, warned = 0, []
        while True:
            try:
                frame = _next_frame(frames, path, warned)
            except StopIteration:
                return
            except OpenL3liteError:
                raise
            except Exception as exc:
                raise OpenL3liteError(f"{os.fspath(path)}: could not decode frames "
                                      f"({short_reason(exc)})") from None
            yield index / rate, np.asarray(frame)[..., :3]
            index += 1


def _next_frame(frames, path, warned):
    """The next frame of moviepy's iterator.

    moviepy warns at every frame it makes up by repeating the last one when ffmpeg has no more
    picture; that is dropped within :data:`MISSING_END_TOLERANCE_S` of the end and otherwise
    becomes one :class:`OpenL3liteWarning` naming the file (``warned`` is a list, non-empty once
    it has been given). Other warnings pass on unchanged.
    """
    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            return next(frames)
    finally:  # the filters are restored by now, so what is emitted here is shown
        for warning in caught:
            missing = _NO_FRAME_DATA.search(str(warning.message))
            if missing is None:
                _show([warning])
                continue
            at, total = float(missing.group(1)), float(missing.group(2))
            if total - at > MISSING_END_TOLERANCE_S and not warned:
                warned.append(at)
                warn(f"{os.fspath(path)}: the picture ends at {at:.2f} s of {total:.2f} s; "
                     "its last frame is repeated to the end")


def read_video_frames(path, size=None, short_side=None, fps=None, check_cut_short=True):
    """Decode all frames of a video (see :func:`iter_video_frames`, which takes the same
    parameters).

    Returns
    -------
    frames : np.ndarray, uint8, shape (n_frames, H, W, 3)
    fps : float
        Frame rate the frames were sampled at.
    """
    rate = fps or video_fps(path)
    frames = [frame for _, frame in iter_video_frames(path, size, short_side, rate,
                                                             check_cut_short)]
    if not frames:
        return np.zeros((0, 1, 1, 3), np.uint8), float(rate)
    return np.stack(frames), float(rate)


def video_fps(path):
    """The frame rate of a video, in frames per second."""
    with open_video(path) as clip:
        return float(clip.fps)


def video_duration(path):
    """Duration of a video in seconds."""
    with open_video(path) as clip:
        return float(clip.duration)
