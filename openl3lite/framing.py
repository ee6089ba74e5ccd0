"""Cut a 48 kHz signal into 1-second windows with a hop, as OpenL3 does, in bounded memory.

Conventions (OpenL3 0.4.2): with ``center=True`` 24,000 zeros are prepended; the signal is
zero-padded at the end so every sample falls in a window; a signal shorter than a window is
padded to one window. Window ``i`` covers padded samples ``[i * hop, i * hop + 48000)`` and its
timestamp is ``i * hop_size`` seconds.
"""

import math
from dataclasses import dataclass

import numpy as np

from .checks import check_batch_size, check_bool, hop_length
from .facts import TARGET_SR, WINDOW_LEN  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class WindowGrid:
    """The windows of one 48 kHz signal: made once per input (:meth:`of`) and handed to the
    framing, fast mode and the API, so the hop is converted and the windows counted once.

    Attributes
    ----------
    count : int
        Number of windows, at least 1.
    hop : int
        Hop in samples at 48 kHz, at least 1.
    hop_size : float
        Hop in seconds, as given (timestamps are ``i * hop_size``, as OpenL3 computes them).
    center : bool
        Whether half a window of zeros is prepended.
    """

    count: int
    hop: int
    hop_size: float
    center: bool

    @classmethod
    def of(cls, n_samples, hop_size, center=True):
        """The grid of a signal of ``n_samples`` samples at 48 kHz.

        Parameters
        ----------
        n_samples : int
            Signal length in samples at 48 kHz, before centring padding.
        hop_size : float
            Hop in seconds; at least one sample at 48 kHz.
        center : bool

        Returns
        -------
        WindowGrid
            ``count = 1 + ceil((L - 48000) / hop)`` with ``L`` the centred length, and at
            least 1.

        Raises
        ------
        OpenL3liteError
            A hop under one sample, or a ``center`` that is not a boolean.
        """
        hop = hop_length(hop_size)
        center = check_bool("center", center)
        padded = n_samples + (WINDOW_LEN // 2 if center else 0)
        count = 1 if padded <= WINDOW_LEN else 1 + math.ceil((padded - WINDOW_LEN) / hop)
        return cls(count, hop, hop_size, center)

    @property
    def lead(self):
        """Zeros prepended to the signal: half a window with centring, else none (int)."""
        return WINDOW_LEN // 2 if self.center else 0

    @property
    def starts(self):
        """np.ndarray, int64, shape (count,): each window's first sample in the padded signal
        (``i * hop``)."""
        return np.arange(self.count, dtype=np.int64) * self.hop

    @property
    def timestamps(self):
        """np.ndarray, float64, shape (count,): :func:`window_timestamps` of the grid."""
        return window_timestamps(self.count, self.hop_size)


def count_windows(n_samples, hop_size, center=True):
    """Number of windows for a 48 kHz signal.

    Parameters
    ----------
    n_samples : int
        Signal length in samples at 48 kHz, before centring padding.
    hop_size : float
        Hop in seconds; at least one sample at 48 kHz (else OpenL3liteError).
    center : bool
        Whether 24,000 zeros are prepended.

    Returns
    -------
    int
        ``1 + ceil((L - 48000) / hop)`` with ``L`` the centred length, and at least 1.
    """
    return WindowGrid.of(n_samples, hop_size, center).count


def window_timestamps(n_windows, hop_size):
    """Timestamps of windows in seconds.

    Parameters
    ----------
    n_windows : int
    hop_size : float
        Hop in seconds.

    Returns
    -------
    np.ndarray, float64, shape (n_windows,)
        ``arange(n_windows) * hop_size``: window centres with centring, starts without.
    """
    return np.arange(n_windows) * hop_size


def iter_window_batches(blocks, n_samples, hop_size, center=True, batch_size=32):
    """Cut a stream of 48 kHz blocks into batches of windows.

    Only the samples that later windows still need are kept, so memory is bounded by
    ``batch_size`` windows plus one block, whatever the signal's length.

    Parameters
    ----------
    blocks : iterable of np.ndarray, float64, shape (k,)
        Consecutive mono blocks at 48 kHz, ``n_samples`` in total.
    n_samples : int
        Total signal length in samples (fixes the number of windows).
    hop_size : float
        Hop in seconds.
    center : bool
        Prepend half a window of zeros.
    batch_size : int
        Windows per batch.

    Yields
    ------
    np.ndarray, float64, shape (b, 48000)
        Batches of windows, ``b <= batch_size``, in order; ``count_windows`` windows in total.

    Raises
    ------
    OpenL3liteError
        A hop under one sample at 48 kHz or a batch size under one.
    """
    check_batch_size(batch_size)  # here too, so that the call itself refuses it
    return iter_grid_batches(blocks, WindowGrid.of(n_samples, hop_size, center), batch_size)


def iter_grid_batches(blocks, grid, batch_size=32):
    """:func:`iter_window_batches` over a :class:`WindowGrid` made beforehand.

    Parameters
    ----------
    blocks : iterable of np.ndarray, float64, shape (k,)
        Consecutive mono blocks at 48 kHz of the signal ``grid`` was made for.
    grid : WindowGrid
    batch_size : int
        Windows per batch, at least 1.

    Yields
    ------
    np.ndarray, float64, shape (b, 48000)
        ``grid.count`` windows in total, ``b <= batch_size`` per batch.
    """
    check_batch_size(batch_size)
    hop, n_windows = grid.hop, grid.count
    buffer = np.zeros(grid.lead)
    buffer_start = 0  # padded-signal index of buffer[0]
    block_iter = iter(blocks)
    exhausted = False
    batch = []
    for index in range(n_windows):
        start = index * hop
        end = start + WINDOW_LEN
        while buffer_start + len(buffer) < end and not exhausted:
            try:
                buffer = np.concatenate([buffer, np.asarray(next(block_iter), dtype=np.float64)])
            except StopIteration:
                exhausted = True
        window = buffer[start - buffer_start : end - buffer_start]
        if len(window) < WINDOW_LEN:
            window = np.concatenate([window, np.zeros(WINDOW_LEN - len(window))])
        batch.append(window)
        if len(batch) == batch_size:
            yield np.stack(batch)
            batch = []
        drop = max(0, (index + 1) * hop - buffer_start)
        drop = min(drop, len(buffer))
        buffer = buffer[drop:]
        buffer_start += drop
    if batch:
        yield np.stack(batch)
