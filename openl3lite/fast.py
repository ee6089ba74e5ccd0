"""Fast (approximate) audio embeddings: share the work of overlapping windows.

Exact mode runs the whole network on every 1-second window, so at a hop of 0.1 s each second of
audio goes through the network ten times. Fast mode computes the spectrogram once over the
whole (padded) signal, runs the convolutional trunk over long spans of it, and pools each
window's region of the embedding conv's feature map to the embedding size. Its cost per second
of audio is about one window's, whatever the hop.

It is an approximation of exact mode, for three reasons:

- exact mode normalises each window's dB spectrogram by that window's maximum; fast mode
  normalises each spectrogram frame by the maximum over the 1-second neighbourhood centred on it
  (the same for a steady signal, different where the level changes within a second);
- exact mode's convolutions see zero padding at each window's edges; fast mode's see the
  neighbouring audio (the main difference: the embedding's first and last time cells differ
  most, see docs/performance.md);
- a window's region starts on the nearest feature-map column (8 spectrogram frames, 40 ms), and
  its spectrogram frames on the long signal's frame grid (up to 121 samples off).

The spectrogram is the in-graph ("kapre") frontend's, computed with numpy in the producer thread,
whatever the model's ``frontend``.

``benchmarks/fast_mode.py`` measures the agreement with exact mode and the speed-up. The API
uses fast mode only where it saves at least half the trunk's work (:func:`pays_off`); shorter
clips and hops of about 0.5 s and more are computed exactly.

Memory stays bounded: the signal is read block by block, the trunk runs on spans of
:data:`SPAN_FRAMES` frames, and only the feature-map columns later windows still need are kept.
"""

import functools

import numpy as np

from . import framing, network
from .checks import check_choice
from .errors import OpenL3liteError
from .facts import MODES
from .frontend import _AMIN, _TOP_DB  # the frontend's dB floor and range, shared
from .frontend import HOP, Spectrogram, mel_filterbank, periodic_hann, spectrogram_shape

#: Spectrogram frames per trunk call whose features are kept (a multiple of 8).
SPAN_FRAMES = 1024

#: Frames of context either side of a span (a multiple of 8, at least the receptive field's
#: half-width of the trunk's embedding conv, about 40 frames), so that spans join seamlessly.
MARGIN_FRAMES = 64

#: Spectrogram frames per feature-map column (three 2x2 max pools).
_COLUMN_FRAMES = 8


@functools.lru_cache(maxsize=None)
def _stft_constants(input_repr):
    """(n_fft, float32 analysis window, float32 mel filterbank or None) of the frontend."""
    n_fft = Spectrogram(input_repr).n_fft
    melfb = None if input_repr == "linear" else mel_filterbank(spectrogram_shape(input_repr)[0])
    return n_fft, periodic_hann(n_fft).astype(np.float32), melfb


def frame_log_spectrogram(segment, input_repr):
    """Unnormalised dB spectrogram of a signal segment, frames at the frontend's hop.

    Parameters
    ----------
    segment : np.ndarray, float, shape (n,)
        48 kHz samples; ``n >= n_fft``.
    input_repr : str
        ``linear``, ``mel128`` or ``mel256``.

    Returns
    -------
    np.ndarray, float32, shape (n_frames, n_freq)
        ``10 * log10(max(S, 1e-10))`` of the magnitude (mel) spectrogram ``S`` of frames
        starting at ``0, 242, 484, ...``; ``n_frames = 1 + (n - n_fft) // 242``.
    """
    n_fft, window, melfb = _stft_constants(input_repr)
    frames = np.lib.stride_tricks.sliding_window_view(
        np.asarray(segment, dtype=np.float32), n_fft)[::HOP]
    magnitude = np.abs(np.fft.rfft(frames * window, axis=-1)).astype(np.float32)
    if melfb is not None:
        magnitude = magnitude @ melfb
    return 10.0 * np.log10(np.maximum(magnitude, _AMIN))


def sliding_max(values, radius):
    """Maximum over a centred neighbourhood of each position.

    Parameters
    ----------
    values : np.ndarray, shape (n,)
    radius : int
        Positions either side included (clipped at the ends).

    Returns
    -------
    np.ndarray, shape (n,), same dtype
    """
    from scipy.ndimage import maximum_filter1d

    return maximum_filter1d(values, size=2 * radius + 1, mode="nearest")


def normalise_frames(log_spec, radius):
    """Per-frame version of the frontend's per-window normalisation.

    Parameters
    ----------
    log_spec : np.ndarray, float32, shape (n_frames, n_freq)
        dB spectrogram.
    radius : int
        Frames either side whose maxima make each frame's reference.

    Returns
    -------
    np.ndarray, float32, shape (n_frames, n_freq)
        ``max(log_spec - ref, -80)``, ``ref`` the sliding maximum of the frames' maxima.
    """
    reference = sliding_max(log_spec.max(axis=1), radius)
    return np.maximum(log_spec - reference[:, None], -_TOP_DB)


def window_columns(n_windows, hop_size):
    """First feature-map column of each window's region.

    Parameters
    ----------
    n_windows : int
    hop_size : float
        Hop in seconds.

    Returns
    -------
    np.ndarray, int64, shape (n_windows,)
        ``round(i * hop / (8 * 242))``: the column nearest each window's start (padded-signal
        coordinates, where window ``i`` starts at sample ``i * hop``).
    """
    return _start_columns(np.arange(n_windows) * framing.hop_length(hop_size))


def _start_columns(starts):
    """Nearest feature-map column (int64) of window starts in samples (int array)."""
    return np.floor(starts / (_COLUMN_FRAMES * HOP) + 0.5).astype(np.int64)


class _PaddedSignal:
    """Random access to a streamed signal with ``lead`` zeros before it and zeros after it."""

    def __init__(self, blocks, lead):
        self._blocks = iter(blocks)
        self._buffer = np.zeros(lead)
        self._start = 0  # padded index of _buffer[0]
        self._exhausted = False

    def read(self, start, end):
        """Samples ``[start, end)`` of the padded signal, float64; ``start`` >= the last drop."""
        while self._start + len(self._buffer) < end and not self._exhausted:
            try:
                block = np.asarray(next(self._blocks), dtype=np.float64)
                self._buffer = np.concatenate([self._buffer, block])
            except StopIteration:
                self._exhausted = True
        out = self._buffer[max(0, start - self._start) : end - self._start]
        lead = max(0, self._start - start)
        return np.concatenate([np.zeros(lead), out, np.zeros(end - start - lead - len(out))])

    def drop(self, before):
        """Forget samples before padded index ``before``."""
        cut = min(max(0, before - self._start), len(self._buffer))
        self._buffer = self._buffer[cut:]
        self._start += cut


def span_layout(n_columns, span_frames=SPAN_FRAMES, margin_frames=MARGIN_FRAMES):
    """Where each trunk call reads its input and which of its output columns are kept.

    Parameters
    ----------
    n_columns : int
        Feature-map columns needed in total.
    span_frames, margin_frames : int
        Multiples of 8.

    Returns
    -------
    list of (int, int)
        Per span: (first input frame, first kept output column within the span). Every span
        reads ``span_frames + 2 * margin_frames`` frames and keeps ``span_frames // 8`` columns.
    """
    n_spans = -(-n_columns * _COLUMN_FRAMES // span_frames)
    layout = [(0, 0)]
    for k in range(1, n_spans):
        layout.append((k * span_frames - margin_frames, margin_frames // _COLUMN_FRAMES))
    return layout


def fitted_span(n_columns, span_frames=SPAN_FRAMES, shortest=256):
    """Span length for a signal: ``span_frames``, or less for a short signal.

    Short signals get the smallest power of two (at least ``shortest``) that covers them, so a
    short clip does not pay for a long span and the trunk sees few distinct input shapes.

    Parameters
    ----------
    n_columns : int
        Feature-map columns needed.
    span_frames : int
        Longest span, a multiple of 8.
    shortest : int
        Shortest span, a power of two >= 8.

    Returns
    -------
    int
        Frames per span, a multiple of 8.
    """
    needed = n_columns * _COLUMN_FRAMES
    fitted = shortest
    while fitted < needed and fitted < span_frames:
        fitted *= 2
    return min(fitted, span_frames)


def iter_span_inputs(blocks, input_repr, center, n_columns, span_frames=SPAN_FRAMES,
                     margin_frames=MARGIN_FRAMES):
    """Normalised spectrogram spans of a streamed 48 kHz signal, ready for the trunk.

    Parameters
    ----------
    blocks : iterable of np.ndarray, float64, shape (k,)
        Consecutive mono blocks at 48 kHz.
    input_repr : str
    center : bool
        Prepend half a window of zeros, as exact mode does.
    n_columns : int
        Feature-map columns needed (fixes the number of spans).
    span_frames, margin_frames : int

    Yields
    ------
    np.ndarray, float32, shape (1, n_freq, span_frames + 2 * margin_frames, 1)
        One trunk input per entry of :func:`span_layout`.
    """
    n_fft = _stft_constants(input_repr)[0]
    radius = spectrogram_shape(input_repr)[1] // 2  # half a window, in frames
    length = span_frames + 2 * margin_frames
    signal = _PaddedSignal(blocks, framing.WINDOW_LEN // 2 if center else 0)
    for first, _ in span_layout(n_columns, span_frames, margin_frames):
        lo = max(0, first - radius)  # frames read for the normalisation's reference
        hi = first + length + radius
        segment = signal.read(lo * HOP, (hi - 1) * HOP + n_fft)
        signal.drop((first + span_frames - margin_frames - radius) * HOP)  # next span's lo
        spec = normalise_frames(frame_log_spectrogram(segment, input_repr), radius)
        span = spec[first - lo : first - lo + length]
        yield np.ascontiguousarray(span.T[np.newaxis, :, :, np.newaxis])


def pool_windows(columns, starts, cells, window_columns_count):
    """Pool each window's region of a (row-pooled) feature map to its embedding.

    Parameters
    ----------
    columns : np.ndarray, float32, shape (cells_rows, n_cols, channels)
        Feature-map columns, rows already max-pooled to the embedding's row cells.
    starts : np.ndarray, int, shape (n,)
        First column of each window's region, indices into ``columns``.
    cells : tuple of int
        (rows, cols) of pooled cells.
    window_columns_count : int
        Columns of one window's region (24).

    Returns
    -------
    np.ndarray, float32, shape (n, rows * cols * channels)
        Flattened (rows, cols, channels) as the exact model's ``Flatten`` gives.
    """
    pool = window_columns_count // cells[1]
    pooled = np.lib.stride_tricks.sliding_window_view(columns, pool, axis=1).max(axis=-1)
    index = starts[:, None] + pool * np.arange(cells[1])[None, :]  # (n, cols)
    picked = pooled[:, index]  # (rows, n, cols, channels)
    return np.ascontiguousarray(picked.transpose(1, 0, 2, 3)).reshape(len(starts), -1)


def trunk_frames(n_samples, hop_size, center, input_repr):
    """Spectrogram frames the trunk processes in each mode, for the choice between them.

    Parameters
    ----------
    n_samples : int
        Signal length at 48 kHz.
    hop_size : float
        Seconds.
    center : bool
    input_repr : str

    Returns
    -------
    exact, fast : int
        Frames through the trunk: every window's in exact mode, every span's in fast mode.
    """
    return grid_trunk_frames(framing.WindowGrid.of(n_samples, hop_size, center), input_repr)


def grid_trunk_frames(grid, input_repr):
    """:func:`trunk_frames` of a :class:`~openl3lite.framing.WindowGrid`.

    Returns
    -------
    exact, fast : int
    """
    n_time = spectrogram_shape(input_repr)[1]
    n_columns = int(_start_columns(grid.starts)[-1]) + n_time // _COLUMN_FRAMES
    span = fitted_span(n_columns)
    n_spans = len(span_layout(n_columns, span))
    return grid.count * n_time, n_spans * (span + 2 * MARGIN_FRAMES)


def pays_off(n_samples, hop_size, center, input_repr, saving=2.0):
    """Whether fast mode saves enough work to be worth its approximation.

    Fast mode is used only where the trunk would process at least ``saving`` times fewer
    frames than in exact mode: not for hops of about 0.5 s and more, nor for clips of a few
    windows, where exact mode is as fast (it also overlaps resampling with the network).

    Returns
    -------
    bool
    """
    return grid_pays_off(framing.WindowGrid.of(n_samples, hop_size, center), input_repr, saving)


def grid_pays_off(grid, input_repr, saving=2.0):
    """:func:`pays_off` of a :class:`~openl3lite.framing.WindowGrid`.

    Returns
    -------
    bool
    """
    exact, fast = grid_trunk_frames(grid, input_repr)
    return fast * saving <= exact


def check_mode(mode):
    """Raise OpenL3liteError unless ``mode`` is one of :data:`MODES`; returns it."""
    return check_choice("mode", mode, MODES)


def audio_trunk(model):
    """The trunk of an openl3lite audio model, or OpenL3liteError for a bare Keras model."""
    trunk = getattr(model, "trunk", None)
    if trunk is None:
        raise OpenL3liteError("mode='fast' needs an openl3lite audio model (an "
                              "AudioEmbeddingModel, whose trunk it runs over long spans); use "
                              "mode='exact' for this model")
    return trunk


def embed_fast(blocks, n_samples, model, center, hop_size, predict=None, progress=None,
               span_frames=SPAN_FRAMES, margin_frames=MARGIN_FRAMES):
    """Fast-mode embeddings of a streamed 48 kHz mono signal.

    Parameters
    ----------
    blocks : iterable of np.ndarray, float64, shape (k,)
        Consecutive mono blocks at 48 kHz, ``n_samples`` in total.
    n_samples : int
    model : AudioEmbeddingModel
    center : bool
    hop_size : float
        Seconds.
    predict : callable, optional
        (1, n_freq, frames, 1) float32 -> (1, rows, cols, channels) feature map; the trunk's
        ``predict_on_batch`` if None.
    progress : tqdm-like, optional
        Updated by windows done.
    span_frames, margin_frames : int
        Multiples of 8.

    Returns
    -------
    embedding : np.ndarray, float32, shape (n_windows, embedding_size)
    timestamps : np.ndarray, float64, shape (n_windows,)
        As exact mode gives.
    """
    return embed_grid(blocks, framing.WindowGrid.of(n_samples, hop_size, center), model, predict,
                      progress, span_frames, margin_frames)


def embed_grid(blocks, grid, model, predict=None, progress=None, span_frames=SPAN_FRAMES,
               margin_frames=MARGIN_FRAMES):
    """:func:`embed_fast` over a :class:`~openl3lite.framing.WindowGrid` made beforehand.

    Parameters
    ----------
    blocks : iterable of np.ndarray, float64, shape (k,)
        Consecutive mono blocks at 48 kHz of the signal ``grid`` was made for.
    grid : WindowGrid
    model, predict, progress, span_frames, margin_frames
        As :func:`embed_fast`.

    Returns
    -------
    embedding : np.ndarray, float32, shape (grid.count, embedding_size)
    timestamps : np.ndarray, float64, shape (grid.count,)
    """
    from .batching import keras_predict, prefetch

    trunk = audio_trunk(model)
    predict = predict or keras_predict(trunk)
    n_freq, n_time, _ = spectrogram_shape(model.input_repr)
    rows, region = n_freq // _COLUMN_FRAMES, n_time // _COLUMN_FRAMES
    channels = trunk.output_shape[-1]
    cells = network.embedding_cells("audio", model.embedding_size, channels)
    row_pool = network.embedding_pool_size((rows, region), cells)[0]
    n_windows = grid.count
    starts = _start_columns(grid.starts)
    n_columns = int(starts[-1]) + region
    span_frames = fitted_span(n_columns, span_frames)
    output = np.empty((n_windows, model.embedding_size), dtype=np.float32)
    kept = np.zeros((cells[0], 0, channels), dtype=np.float32)
    kept_from = 0  # global index of kept[:, 0]
    done = 0
    spans = iter_span_inputs(blocks, model.input_repr, grid.center, n_columns, span_frames,
                             margin_frames)
    layout = span_layout(n_columns, span_frames, margin_frames)
    for (first, keep), span in zip(layout, prefetch(spans)):
        features = np.asarray(predict(span), dtype=np.float32)[0]
        features = features[:, keep : keep + span_frames // _COLUMN_FRAMES]
        features = features[: cells[0] * row_pool].reshape(
            cells[0], row_pool, features.shape[1], channels).max(axis=1)
        kept = np.concatenate([kept, features], axis=1)
        available = kept_from + kept.shape[1]
        ready = int(np.searchsorted(starts + region, available, side="right"))
        if ready > done:
            output[done:ready] = pool_windows(kept, starts[done:ready] - kept_from, cells, region)
            if progress is not None:
                progress.update(ready - done)
            done = ready
        if done < n_windows:
            cut = int(starts[done]) - kept_from
            kept, kept_from = kept[:, cut:], kept_from + cut
    if done != n_windows:
        raise RuntimeError(f"fast mode produced {done} of {n_windows} windows")
    return output, grid.timestamps
