"""openl3lite.sinc against resampy's own kernel: the same samples, bit for bit."""

import numpy as np
import pytest
import resampy

from openl3lite import audio, sinc


def _signal(n, seed):
    """Speech-like test input: noise, a chirp and a click, in [-1, 1)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 0.2 * rng.standard_normal(n) + 0.5 * np.sin(2e-7 * t * t)
    x[n // 3] = 0.99
    return np.clip(x, -1, 0.999)


@pytest.mark.parametrize("sr_in", [8000, 11025, 16000, 22050, 44100, 47999.5])
def test_upsampling_equals_resample_nu_bit_for_bit(sr_in):
    x = _signal(int(sr_in * 0.7) + 3, seed=int(sr_in))
    n_out = audio.resampled_length(len(x), sr_in)
    registers = np.add.accumulate(np.full(n_out, float(sr_in) / audio.TARGET_SR))
    times = np.concatenate([[0.0], registers[:-1]])
    padded = np.concatenate([x, np.zeros(2)])
    expected = resampy.resample_nu(padded, 1.0, times, filter=audio._kaiser_best_filter)
    got = audio._resample_at(x, times)
    assert got.dtype == np.float64 and got.shape == expected.shape
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("sr_in", [48001, 88200, 96000, 192000])
def test_downsampling_equals_resampy_resample_bit_for_bit(sr_in):
    x = _signal(int(sr_in * 0.6) + 1, seed=sr_in)
    expected = resampy.resample(x, sr_in, audio.TARGET_SR, filter=audio._kaiser_best_filter)
    got = audio.resample(x, sr_in)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_result_does_not_depend_on_the_thread_count(threads, monkeypatch):
    monkeypatch.setattr(sinc, "MIN_SAMPLES_PER_THREAD", 1000)
    x = _signal(30011, seed=5)
    table = audio._kaiser_best_table(1.0)
    times = np.arange(32000) * (44100 / 48000)
    one = sinc.interpolate(x, times, table, threads=1)
    assert np.array_equal(sinc.interpolate(x, times, table, threads=threads), one)


@pytest.mark.parametrize("n_out", [1, 2, 3, 5, 6, 7])
def test_short_outputs_and_the_last_partial_group_of_four(n_out):
    """Fewer than four samples, or a remainder after groups of four, take the one-sample path."""
    x = _signal(50, seed=1)
    times = np.linspace(0, 48.9, n_out)
    padded = np.concatenate([x, np.zeros(2)])
    expected = resampy.resample_nu(padded, 1.0, times, filter=audio._kaiser_best_filter)
    assert np.array_equal(sinc.interpolate(padded, times, audio._kaiser_best_table(1.0)),
                          expected)


def test_table_rows_are_the_filter_read_at_the_tap_stride():
    interp_win, num_table, _ = audio._kaiser_best_filter()
    table = sinc.sinc_table(interp_win, num_table, 1.0)
    assert table.weights.shape[0] == num_table + 1
    for offset in (0, 1, 200, 511, 512):
        taps = table.taps[offset]
        assert taps == (len(interp_win) - offset) // num_table
        np.testing.assert_array_equal(
            table.weights[offset, :taps], interp_win[offset + num_table * np.arange(taps)])


def test_without_a_writable_numba_cache_the_kernel_compiles_in_process(monkeypatch):
    """numba refuses ``cache=True`` at import where it finds no writable cache folder (a
    read-only installation); the module then compiles without a cache and gives the same
    samples."""
    import importlib

    import numba

    real_njit = numba.njit

    def njit_without_cache_folder(*args, **kwargs):
        if kwargs.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'f'")
        return real_njit(*args, **kwargs)

    x = _signal(20000, seed=3)
    times = np.arange(21000) * (44100 / 48000)
    expected = sinc.interpolate(x, times, audio._kaiser_best_table(1.0))
    monkeypatch.setattr(numba, "njit", njit_without_cache_folder)
    try:
        uncached = importlib.reload(sinc)
        table = uncached.sinc_table(*audio._kaiser_best_filter()[:2], 1.0)
        assert np.array_equal(uncached.interpolate(x, times, table), expected)
    finally:
        monkeypatch.setattr(numba, "njit", real_njit)
        importlib.reload(sinc)
