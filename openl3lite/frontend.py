"""Spectrogram frontends: the in-graph one (OpenL3's default, "kapre") and OpenL3's float64
"librosa" one.

Both give, per 1-second 48 kHz window, ``10 * log10(max(S, 1e-10))`` of a magnitude
spectrogram ``S``, minus the window's maximum, clipped at -80, laid out (freq, time, 1):

========  ======  =====  =======================================  =============
repr      n_fft   hop    framing                                  shape
========  ======  =====  =======================================  =============
linear    512     242    no padding                               (257, 197, 1)
mel128    2048    242    kapre: zeros at the end; librosa: centred (128, 199, 1)
mel256    2048    242    kapre: zeros at the end; librosa: centred (256, 199, 1)
========  ======  =====  =======================================  =============

The mel filterbank is librosa's Slaney-scale, Slaney-normalised one up to 24 kHz, applied to
the magnitude (not the power).
"""

import functools

import keras
import numpy as np
from keras import ops

from .facts import FRONTENDS, INPUT_REPRS, TARGET_SR, WINDOW_LEN  # noqa: F401 (re-exported)

HOP = 242
_N_FFT = {"linear": 512, "mel128": 2048, "mel256": 2048}
_N_MELS = {"mel128": 128, "mel256": 256}
_AMIN = 1e-10
_TOP_DB = 80.0


def spectrogram_shape(input_repr):
    """Shape of one window's spectrogram.

    Parameters
    ----------
    input_repr : str
        ``linear``, ``mel128`` or ``mel256``.

    Returns
    -------
    tuple of int
        (n_freq, n_time, 1).
    """
    if input_repr == "linear":
        return (257, 1 + (WINDOW_LEN - 512) // HOP, 1)
    return (_N_MELS[input_repr], 1 + (WINDOW_LEN - 1) // HOP, 1)


@functools.cache
def mel_filterbank(n_mels):
    """librosa's Slaney mel filterbank for 48 kHz, n_fft 2048, 0-24 kHz.

    Read from ``mel_filterbanks.npz`` in the package: librosa's own output (float32), stored so
    that building a model does not import librosa (about 60 MB of memory);
    :func:`librosa_mel_filterbank` computes it, and a test checks that the two are equal.

    Parameters
    ----------
    n_mels : int
        128 or 256.

    Returns
    -------
    np.ndarray, float32, shape (1025, n_mels)
    """
    from importlib import resources

    with resources.files("openl3lite").joinpath("mel_filterbanks.npz").open("rb") as f:
        return np.ascontiguousarray(np.load(f)[f"mel{n_mels}"], dtype=np.float32)


def librosa_mel_filterbank(n_mels):
    """:func:`mel_filterbank` computed by librosa.

    Returns
    -------
    np.ndarray, float32, shape (1025, n_mels)
    """
    import librosa

    fb = librosa.filters.mel(sr=TARGET_SR, n_fft=2048, n_mels=n_mels, fmin=0.0,
                             fmax=TARGET_SR / 2, htk=False, norm="slaney")
    return np.ascontiguousarray(fb.T.astype(np.float32))


def periodic_hann(n):
    """Periodic Hann window, as ``scipy.signal.get_window("hann", n)``.

    Returns
    -------
    np.ndarray, float64, shape (n,)
    """
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


@keras.saving.register_keras_serializable(package="openl3lite")
class Spectrogram(keras.layers.Layer):
    """In-graph log spectrogram of 1-second 48 kHz windows (OpenL3's default frontend).

    Input: float32 waveforms, shape (batch, 48000). Output: float32 dB spectrograms in
    [-80, 0], shape (batch, n_freq, n_time, 1) as :func:`spectrogram_shape` gives. No weights.

    Parameters
    ----------
    input_repr : str
        ``linear``, ``mel128`` or ``mel256``.
    """

    def __init__(self, input_repr="mel256", **kwargs):
        super().__init__(**kwargs)
        if input_repr not in INPUT_REPRS:
            raise ValueError(f"unknown input_repr {input_repr!r}")
        self.input_repr = input_repr
        self.n_fft = _N_FFT[input_repr]
        self._window = periodic_hann(self.n_fft).astype(np.float32)
        self._melfb = mel_filterbank(_N_MELS[input_repr]) if input_repr != "linear" else None

    def _padded(self, waveform):
        """float32 waveforms (batch, 48000), zero-padded at the end for the mel frontends so
        that the frames cover the shape :func:`spectrogram_shape` gives."""
        waveform = ops.cast(waveform, "float32")
        if self.input_repr == "linear":
            return waveform
        n_frames = spectrogram_shape(self.input_repr)[1]
        pad = (n_frames - 1) * HOP + self.n_fft - WINDOW_LEN
        return ops.pad(waveform, [[0, 0], [0, pad]])

    def call(self, waveform):
        waveform = self._padded(waveform)
        real, imag = ops.stft(waveform, sequence_length=self.n_fft, sequence_stride=HOP,
                              fft_length=self.n_fft, window=ops.convert_to_tensor(self._window),
                              center=False)
        magnitude = ops.sqrt(real * real + imag * imag)  # (batch, time, freq_bins)
        return _log_spectrogram(magnitude, self._melfb)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + spectrogram_shape(self.input_repr)

    def get_config(self):
        config = super().get_config()
        config["input_repr"] = self.input_repr
        return config


def _log_spectrogram(magnitude, melfb):
    """(batch, time, bins) STFT magnitudes -> (batch, n_freq, time, 1) dB, OpenL3's scaling."""
    if melfb is not None:
        magnitude = ops.matmul(magnitude, ops.convert_to_tensor(melfb))
    log_spec = 10.0 * ops.log10(ops.maximum(magnitude, _AMIN))
    log_spec = log_spec - ops.max(log_spec, axis=(1, 2), keepdims=True)
    log_spec = ops.maximum(log_spec, -_TOP_DB)
    return ops.expand_dims(ops.transpose(log_spec, (0, 2, 1)), -1)


def dft_kernel(n_fft):
    """Hann-windowed real DFT as a 1-D convolution kernel.

    Parameters
    ----------
    n_fft : int

    Returns
    -------
    np.ndarray, float32, shape (n_fft, 1, 2 * (n_fft // 2 + 1))
        Output channels ``k`` and ``n_fft // 2 + 1 + k``: the real and imaginary parts of bin
        ``k`` of the windowed frame.
    """
    n = np.arange(n_fft)[:, None]
    k = np.arange(n_fft // 2 + 1)[None, :]
    angle = 2.0 * np.pi * ((n * k) % n_fft) / n_fft
    window = periodic_hann(n_fft)[:, None]
    kernel = np.concatenate([window * np.cos(angle), -window * np.sin(angle)], axis=1)
    return kernel.astype(np.float32)[:, None, :]


@keras.saving.register_keras_serializable(package="openl3lite")
class DFTSpectrogram(Spectrogram):
    """:class:`Spectrogram` with the STFT computed as a strided 1-D convolution by fixed DFT
    kernels (:func:`dft_kernel`) instead of an FFT: ops every export format and inference
    engine has (Keras's own ONNX export of the FFT graph gave an RFFT node that ONNX Runtime
    refused at opset 15).

    Same input and output as :class:`Spectrogram`. The values agree with it to float32
    round-off, which matters only in bins within about 10 dB of the -80 dB floor (see
    :data:`openl3lite.facts.EXPORT_SPEECH_TOLERANCE`). It costs about 0.84 G multiply-adds
    per window for the mel representations (n_fft 2048), against some 12 G for the full-width
    network.
    """

    def __init__(self, input_repr="mel256", **kwargs):
        super().__init__(input_repr, **kwargs)
        self._kernel = dft_kernel(self.n_fft)

    def call(self, waveform):
        waveform = self._padded(waveform)
        frames = ops.conv(ops.expand_dims(waveform, -1), ops.convert_to_tensor(self._kernel),
                          strides=HOP, padding="valid")  # (batch, time, 2 * bins)
        bins = self.n_fft // 2 + 1
        real, imag = frames[..., :bins], frames[..., bins:]
        return _log_spectrogram(ops.sqrt(real * real + imag * imag), self._melfb)


def librosa_spectrogram(windows, input_repr):
    """OpenL3's "librosa" frontend, in float64.

    Parameters
    ----------
    windows : np.ndarray, float, shape (batch, 48000)
        1-second windows at 48 kHz.
    input_repr : str
        ``linear``, ``mel128`` or ``mel256``.

    Returns
    -------
    np.ndarray, float32, shape (batch, n_freq, n_time, 1)
        dB spectrograms in [-80, 0]. linear: uncentred STFT (equal to the in-graph frontend in
        exact arithmetic); mel: librosa's centred STFT with zero padding of 1024 samples.
    """
    import librosa

    windows = np.asarray(windows, dtype=np.float64)
    if input_repr == "linear":
        spec = np.abs(librosa.stft(windows, n_fft=512, hop_length=HOP, window="hann", center=False))
    else:
        spec = librosa.feature.melspectrogram(
            y=windows, sr=TARGET_SR, n_fft=2048, hop_length=HOP, n_mels=_N_MELS[input_repr],
            power=1.0, center=True, pad_mode="constant", htk=False, norm="slaney",
            fmin=0.0, fmax=TARGET_SR / 2)
    log_spec = 10.0 * np.log10(np.maximum(spec, _AMIN))
    log_spec -= log_spec.max(axis=(1, 2), keepdims=True)
    log_spec = np.maximum(log_spec, -_TOP_DB)
    return log_spec[..., np.newaxis].astype(np.float32)
