"""Cut a 48 kHz signal into 1-second windows with a hop, as OpenL3 does, in bounded memory.

Conventions (OpenL3 0.4.2): with ``center=True`` 24,000 zeros are prepended; the signal is
zero-padded at the end so every sample falls in a window; a signal shorter than a window is
padded to one window. Window ``i`` covers padded samples ``[i * hop, i * hop + 48000)`` and its
timestamp is ``i * hop_size`` seconds.
"""

import math

import numpy as np

from .checks import check_batch_size, hop_length
from .facts import TARGET_SR, WINDOW_LEN  # noqa: F401 (re-exported)


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
    hop = hop_length(hop_size)
    padded = n_samples + (WINDOW_LEN // 2 if center else 0)
    if padded <= WINDOW_LEN:
        return 1
    return 1 + math.ceil((padded - WINDOW_LEN) / hop)


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
    check_batch_size(batch_size)
    hop = hop_length(hop_size)
    n_windows = count_windows(n_samples, hop_size, center)
    buffer = np.zeros(WINDOW_LEN // 2 if center else 0)
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
