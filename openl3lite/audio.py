"""Decode, downmix and resample audio, whole or in bounded-memory blocks.

Everything here works on float64 samples in [-1, 1). The network's sample rate is
:data:`TARGET_SR` (48 kHz). Resampling is block-wise with enough context on each side that the
result equals resampling the whole signal at once (to float64 round-off), so a file of any
length is processed in memory that does not grow with its duration.
"""

import contextlib
import functools
import math
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .checks import check_choice
from .errors import OpenL3liteError, check_input_file, short_reason, warn
from .facts import DEFAULT_RESAMPLER, RESAMPLERS, TARGET_SR
from .quiet import MPG123_NOISE, filtered_native_stderr

# resampy 0.2.2's kaiser_best table, rebuilt with resampy's public sinc_window: 64 zero
# crossings, 2**9 table entries per crossing, a symmetric Kaiser window with this beta and
# this roll-off (the values stored in resampy 0.2.2's kaiser_best.npz).
_KAISER_BEST_ZEROS = 64
_KAISER_BEST_PRECISION = 9
_KAISER_BEST_BETA = 14.769656459379492
_KAISER_BEST_ROLLOFF = 0.9475937167399596

#: Input samples read per block when streaming a file (about 10 s at 44.1 kHz).
DEFAULT_BLOCK_FRAMES = 441000


@dataclass(frozen=True)
class AudioInfo:
    """What is known about an audio source before decoding it.

    Attributes
    ----------
    sr : int or float
        Sample rate in Hz.
    n_frames : int
        Number of samples per channel.
    n_channels : int
        Number of channels.
    """

    sr: float
    n_frames: int
    n_channels: int


@dataclass(frozen=True)
class OpenedAudioFile:
    """An audio file ready for libsndfile.

    Attributes
    ----------
    path : str
        The file as the user named it (for messages).
    readable : str
        What libsndfile reads: ``path`` itself, or a temporary WAV that ffmpeg decoded it to.
    info : AudioInfo
    """

    path: str
    readable: str
    info: AudioInfo


@contextlib.contextmanager
def open_audio_file(path):
    """Open an audio file for reading, by libsndfile or else through ffmpeg.

    libsndfile reads WAV, FLAC, OGG/Opus, AIFF and more in place. A file it does not recognise
    (AAC/M4A, WMA, the sound track of a video, ...), and an MP3 (see
    :data:`LENGTH_ESTIMATED_FORMATS`), is decoded once by ffmpeg, at its own sample rate and
    channel count as 32-bit float, to a temporary WAV (RF64 past 4 GB) that is removed when the
    context ends. A WAV file that ends before its header says is read as far as it goes, with a
    warning (:func:`cut_short_wav_warning`).

    Parameters
    ----------
    path : str or os.PathLike

    Yields
    ------
    OpenedAudioFile

    Raises
    ------
    OpenL3liteError
        If the file does not exist or neither libsndfile nor ffmpeg can read its sound
        (libsndfile's reason is given).
    """
    import soundfile as sf

    path = check_input_file(path)
    try:
        with filtered_native_stderr(MPG123_NOISE):  # libmpg123's notes on probing an MP3
            info = sf.info(path)
    except Exception as exc:  # libsndfile raises RuntimeError / LibsndfileError
        reason = f"{short_reason(exc).rstrip('.')}; "
    else:
        if info.format not in LENGTH_ESTIMATED_FORMATS:
            note = cut_short_wav_warning(path, info)
            if note:
                warn(note)
            yield OpenedAudioFile(path, path, _audio_info(info))
            return
        reason = ""
    handle, decoded = tempfile.mkstemp(prefix="openl3lite-", suffix=".wav")
    os.close(handle)
    try:
        failure = _ffmpeg_decode(path, decoded)
        if failure == "no audio stream":
            raise OpenL3liteError(f"{path}: not a readable audio file (it has no audio stream)")
        if failure is not None:
            raise OpenL3liteError(f"{path}: not a readable audio file ({reason}"
                                  f"ffmpeg: {failure})")
        yield OpenedAudioFile(path, decoded, _audio_info(sf.info(decoded)))
    finally:
        os.remove(decoded)


#: libsndfile formats whose length libsndfile may only estimate, decoded by ffmpeg instead. An
#: MP3 without a Xing/Info/VBRI header gets a length from its size and first frame's bitrate
#: (measured: a VBR file given as 43 995 of its 133 632 samples, and read only that far), and a
#: cut-short MP3 with such a header keeps the header's count; ffmpeg reads to the real end.
LENGTH_ESTIMATED_FORMATS = ("MP3",)

#: libsndfile's log line for a WAV data chunk that holds less than its header declares.
_SHORT_DATA_CHUNK = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
#: Data chunk sizes that streaming writers put in a header before the length is known.
_PLACEHOLDER_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)


def cut_short_wav_warning(path, info):
    """The warning for a WAV file whose audio ends before its header says, else None.

    libsndfile reads such a file as far as it goes (``info.frames`` counts the samples that are
    there); its log names the declared and the real size of the data chunk. Placeholder sizes
    that streaming writers leave in the header (0, 2**31 - 1, 2**32 - 1) are not a cut.

    Parameters
    ----------
    path : str
        The file, for the message.
    info : soundfile._SoundFileInfo
        ``soundfile.info(path)``.

    Returns
    -------
    str or None
    """
    match = _SHORT_DATA_CHUNK.search(info.extra_info or "")
    if not match or info.format not in ("WAV", "WAVEX", "RF64") or info.samplerate <= 0:
        return None
    declared, held = int(match.group(1)), int(match.group(2))
    if declared in _PLACEHOLDER_SIZES or declared <= held or held <= 0:
        return None
    seconds_held = info.frames / info.samplerate
    seconds_declared = seconds_held * declared / held
    return (f"{path}: the file is cut short (truncated download or copy?): its header declares "
            f"{seconds_declared:.2f} s of audio, it holds {seconds_held:.2f} s; reading those")


def _audio_info(info):
    return AudioInfo(sr=info.samplerate, n_frames=info.frames, n_channels=info.channels)


#: What ffmpeg's demuxers report for a file that ends before its own structure says it does
#: (MP4/MOV/M4A, Matroska/WebM); such a file is refused rather than read as far as it goes.
CUT_SHORT_REPORTS = ("partial file", "File ended prematurely")


def refuse_cut_short(path, ffmpeg_stderr):
    """Raise if what ffmpeg wrote while reading ``path`` says the file is cut short
    (:data:`CUT_SHORT_REPORTS`).

    Raises
    ------
    OpenL3liteError
        Naming the file and ffmpeg's report.
    """
    report = next((text for text in CUT_SHORT_REPORTS if text in ffmpeg_stderr), None)
    if report:
        raise OpenL3liteError(f"{path}: the file is cut short (truncated download or copy?): "
                              f"ffmpeg reports \"{report}\"")


def _ffmpeg_decode(path, out_wav):
    """Decode the first audio stream of ``path`` to ``out_wav`` (32-bit float WAV at the
    stream's own rate and channels).

    Returns
    -------
    str or None
        None on success; else ``"no audio stream"`` or ffmpeg's first error line.

    Raises
    ------
    OpenL3liteError
        If the file is cut short (:func:`refuse_cut_short`).
    """
    from moviepy.config import FFMPEG_BINARY

    command = [FFMPEG_BINARY, "-nostdin", "-v", "error", "-y", "-i", path, "-map", "0:a:0",
               "-vn", "-sn", "-dn", "-c:a", "pcm_f32le", "-rf64", "auto", "-f", "wav", out_wav]
    try:
        done = subprocess.run(command, capture_output=True, text=True, errors="replace",
                              timeout=24 * 3600)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not run ffmpeg ({exc})"
    if "matches no streams" in done.stderr:
        return "no audio stream"
    refuse_cut_short(path, done.stderr)
    if done.returncode != 0 or os.path.getsize(out_wav) == 0:
        lines = [re.sub(r"^\[[^]]*\]\s*", "", line).strip() for line in done.stderr.splitlines()]
        return next((line for line in lines if line), f"exit status {done.returncode}")
    return None


def audio_file_info(path):
    """Read the sample rate, length and channel count of an audio file.

    Files libsndfile reads (WAV, FLAC, OGG, AIFF, ...) are not decoded; others, MP3 included,
    are decoded by ffmpeg to learn their exact length (see :func:`open_audio_file`).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    AudioInfo

    Raises
    ------
    OpenL3liteError
        If the file does not exist or cannot be decoded.
    """
    with open_audio_file(path) as opened:
        return opened.info


def read_audio(path):
    """Read a whole audio file as float64.

    Parameters
    ----------
    path : str or os.PathLike
        Audio file (any format :func:`open_audio_file` reads).

    Returns
    -------
    samples : np.ndarray, float64, shape (n,) or (n, channels)
        Samples in [-1, 1), as ``soundfile.read`` returns them.
    sr : int
        Sample rate in Hz.

    Raises
    ------
    OpenL3liteError
        If the file cannot be read.
    """
    import soundfile as sf

    with open_audio_file(path) as opened:
        try:
            samples, sr = sf.read(opened.readable, dtype="float64")
        except Exception as exc:
            raise OpenL3liteError(f"{opened.path}: could not decode audio "
                                  f"({short_reason(exc)})") from None
    return samples, sr


def iter_file_blocks(opened, block_frames=DEFAULT_BLOCK_FRAMES):
    """Yield a file's samples as mono float64 blocks.

    Parameters
    ----------
    opened : OpenedAudioFile
        From :func:`open_audio_file` (still open).
    block_frames : int
        Samples per block (per channel).

    Yields
    ------
    np.ndarray, float64, shape (<= block_frames,)
        Consecutive blocks, downmixed to mono by the mean over channels.
    """
    import soundfile as sf

    try:
        for block in sf.blocks(opened.readable, blocksize=block_frames, dtype="float64",
                               always_2d=True):
            yield downmix(block)
    except Exception as exc:
        raise OpenL3liteError(f"{opened.path}: could not decode audio "
                              f"({short_reason(exc)})") from None


def downmix(samples):
    """Average channels to mono, as OpenL3 does (a 2-D array is (samples, channels)).

    Parameters
    ----------
    samples : np.ndarray, shape (n,) or (n, channels)

    Returns
    -------
    np.ndarray, float64, shape (n,)
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim == 2:
        return samples.mean(axis=1)
    return samples


def resampled_length(n_frames, sr_in, sr_out=TARGET_SR):
    """Number of output samples, ``floor(n_frames * sr_out / sr_in)`` as resampy computes it.

    Parameters
    ----------
    n_frames : int
        Input length in samples.
    sr_in, sr_out : float
        Sample rates in Hz.

    Returns
    -------
    int
    """
    if sr_in == sr_out:
        return int(n_frames)
    return int(n_frames * float(sr_out) / float(sr_in))


def _kaiser_window(n_points):
    import scipy.signal

    return scipy.signal.windows.kaiser(n_points, _KAISER_BEST_BETA, sym=True)


@functools.lru_cache(maxsize=8)
def _kaiser_best_table(ratio):
    """The kaiser_best filter laid out for :func:`openl3lite.sinc.interpolate`.

    Parameters
    ----------
    ratio : float
        ``sr_out / sr_in``; below 1 the filter is scaled by it, as ``resampy.resample`` does.

    Returns
    -------
    openl3lite.sinc.SincTable
    """
    from . import sinc  # numba: imported on first resampling, not with openl3lite

    interp_win, num_table, _ = _kaiser_best_filter()
    scale = min(1.0, ratio)
    if ratio < 1:
        interp_win = ratio * interp_win
    return sinc.sinc_table(interp_win, num_table, scale)


@functools.lru_cache(maxsize=1)
def _kaiser_best_filter():
    """resampy 0.2.2's kaiser_best filter table, built once per process.

    Built once so that resampling a stream chunk by chunk does not rebuild it (a 65,537-point
    Kaiser window and sinc; 0.08 s measured on a loaded 2-core machine) for every chunk; the
    values are those resampy's ``sinc_window`` gives for these parameters. The array is
    shared: callers only read it.

    Returns
    -------
    interp_win : np.ndarray, float64, shape (32769,)
        The filter's right half, 2**9 entries per zero crossing.
    precision : int
        Entries per zero crossing (512).
    rolloff : float
    """
    import resampy.filters

    return resampy.filters.sinc_window(
        num_zeros=_KAISER_BEST_ZEROS, precision=_KAISER_BEST_PRECISION,
        window=_kaiser_window, rolloff=_KAISER_BEST_ROLLOFF)


def resample(samples, sr_in, sr_out=TARGET_SR, method=DEFAULT_RESAMPLER):
    """Resample a whole mono signal.

    Parameters
    ----------
    samples : np.ndarray, float64, shape (n,)
        Mono signal.
    sr_in, sr_out : float
        Sample rates in Hz.
    method : str
        One of :data:`RESAMPLERS`.

    Returns
    -------
    np.ndarray, float64, shape (resampled_length(n, sr_in, sr_out),)
    """
    check_choice("resampler", method, RESAMPLERS)
    if sr_in == sr_out:
        return np.asarray(samples, dtype=np.float64)
    n_out = resampled_length(len(samples), sr_in, sr_out)
    if n_out < 1:
        return np.zeros(0)
    if method == "kaiser_best":
        samples = np.asarray(samples, dtype=np.float64)
        if sr_out > sr_in:
            registers = np.add.accumulate(np.full(n_out, float(sr_in) / float(sr_out)))
            times = np.concatenate([[0.0], registers[:-1]])
            return _resample_at(samples, times)
        # Downsampling as resampy.resample does it: positions t / ratio, the filter scaled
        # by the ratio.
        from . import sinc

        ratio = float(sr_out) / sr_in
        return sinc.interpolate(samples, np.arange(n_out) * (1.0 / ratio),
                                _kaiser_best_table(ratio))
    import soxr

    quality = {"soxr_hq": "HQ", "soxr_vhq": "VHQ"}[method]
    out = soxr.resample(np.asarray(samples, dtype=np.float64), sr_in, sr_out, quality=quality)
    return _fit_length(out, n_out)


def _fit_length(samples, n):
    if len(samples) >= n:
        return samples[:n]
    return np.concatenate([samples, np.zeros(n - len(samples))])


def _alignment_period(sr_in, sr_out):
    """Smallest input / output sample counts spanning the same whole time (None if irrational)."""
    try:
        ratio = Fraction(sr_out) / Fraction(sr_in)
    except (TypeError, ValueError):
        return None
    ratio = ratio.limit_denominator(10**7)
    if ratio != Fraction(float(sr_out)) / Fraction(float(sr_in)):
        return None
    return ratio.denominator, ratio.numerator  # input period, output period


def iter_resampled(blocks, sr_in, n_frames, sr_out=TARGET_SR, method=DEFAULT_RESAMPLER):
    """Resample a stream of mono blocks, giving the same samples as resampling it whole.

    For ``kaiser_best`` each chunk is resampled with enough real neighbouring input on both
    sides that the filter never sees the chunk's edges; chunks start on input samples whose
    time is also an exact output sample time, so output samples line up. For soxr a streaming
    resampler carries its own state.

    Parameters
    ----------
    blocks : iterable of np.ndarray, float64, shape (k,)
        Consecutive mono blocks of the input signal.
    sr_in, sr_out : float
        Sample rates in Hz.
    n_frames : int
        Total input length in samples (fixes the output length).
    method : str
        One of :data:`RESAMPLERS`.

    Yields
    ------
    np.ndarray, float64
        Consecutive output blocks; their total length is
        ``resampled_length(n_frames, sr_in, sr_out)``.
    """
    check_choice("resampler", method, RESAMPLERS)
    n_out_total = resampled_length(n_frames, sr_in, sr_out)
    if sr_in == sr_out:
        yield from blocks
        return
    if method == "kaiser_best":
        yield from _iter_resampled_sinc(blocks, sr_in, sr_out, n_frames, n_out_total)
    else:
        yield from _iter_resampled_soxr(blocks, sr_in, sr_out, n_out_total, method)


def _iter_resampled_soxr(blocks, sr_in, sr_out, n_out_total, method):
    import soxr

    quality = {"soxr_hq": "HQ", "soxr_vhq": "VHQ"}[method]
    stream = soxr.ResampleStream(sr_in, sr_out, 1, dtype="float64", quality=quality)
    emitted = 0
    for block in blocks:
        out = stream.resample_chunk(np.ascontiguousarray(block, dtype=np.float64), last=False)
        out = out[: max(0, n_out_total - emitted)]
        emitted += len(out)
        if len(out):
            yield out
    tail = stream.resample_chunk(np.zeros(0), last=True)
    tail = _fit_length(tail, n_out_total - emitted)
    if len(tail):
        yield tail


def _resample_at(segment, times):
    """kaiser_best interpolation of ``segment`` at input-sample positions ``times``.

    Used when upsampling, where resampy's filter is not rescaled; ``times`` are the exact
    positions resampy 0.2.2's accumulating time register reaches. Bit for bit what
    ``resampy.resample_nu(padded, 1.0, times)`` gives (:mod:`openl3lite.sinc`).
    """
    # Zeros past the end add exact zeros to the sums: the padding resample_nu's domain check
    # needed, kept so that the sums stay resampy's term for term.
    from . import sinc

    padded = np.concatenate([segment, np.zeros(2)])
    return sinc.interpolate(padded, times, _kaiser_best_table(1.0))


def _iter_resampled_sinc(blocks, sr_in, sr_out, n_frames, n_out_total):
    period = _alignment_period(sr_in, sr_out)
    if period is None:  # no exact alignment: resample whole (memory then grows with length)
        whole = np.concatenate([np.asarray(b, dtype=np.float64) for b in blocks] or [np.zeros(0)])
        yield resample(whole, sr_in, sr_out, "kaiser_best")
        return
    p_in, p_out = period
    upsampling = sr_out > sr_in
    increment = float(sr_in) / float(sr_out)
    register = 0.0  # resampy 0.2.2's time register: sums 1/ratio once per output sample
    scale = min(1.0, float(sr_out) / float(sr_in))
    context = p_in * math.ceil((_KAISER_BEST_ZEROS / scale + 2) / p_in)
    chunk = p_in * max(1, math.ceil(DEFAULT_BLOCK_FRAMES / p_in))

    buffer = np.zeros(0)
    buffer_start = 0  # input index of buffer[0]
    next_start = 0  # input index where the next chunk starts (a multiple of p_in)
    emitted = 0
    consumed_all = False
    block_iter = iter(blocks)
    while emitted < n_out_total:
        # Fill the buffer until it covers [next_start, next_start + chunk + context).
        while not consumed_all and buffer_start + len(buffer) < next_start + chunk + context:
            try:
                buffer = np.concatenate([buffer, np.asarray(next(block_iter), dtype=np.float64)])
            except StopIteration:
                consumed_all = True
        buffer_end = buffer_start + len(buffer)
        left = max(0, next_start - context)
        right = min(buffer_end, next_start + chunk + context)
        segment = buffer[left - buffer_start : right - buffer_start]
        stop = next_start + chunk
        is_last = consumed_all and stop >= buffer_end
        n_keep = n_out_total - emitted if is_last else chunk // p_in * p_out
        n_keep = min(n_keep, n_out_total - emitted)
        if upsampling:
            steps = np.full(n_keep, increment)
            steps[0] = register
            registers = np.add.accumulate(steps)
            register = registers[-1] + increment
            piece = _resample_at(segment, registers - left)
        else:
            out = resample(segment, sr_in, sr_out, "kaiser_best")
            skip = (next_start - left) // p_in * p_out
            piece = _fit_length(out[skip : skip + n_keep], n_keep)
        emitted += len(piece)
        yield piece
        next_start = stop
        # Drop what no later chunk needs.
        drop = max(0, next_start - context - buffer_start)
        buffer = buffer[drop:]
        buffer_start += drop
        if is_last:
            break

