"""The embedding API: OpenL3 0.4.2's functions, names, parameters and defaults.

Audio flows block by block: decode -> downmix -> resample to 48 kHz -> 1-second windows ->
spectrogram -> network, so memory depends on ``batch_size``, not on the input's length.
"""

import numbers
import os

import numpy as np

from . import audio as audio_io
from . import checks, engines, framing
from . import image as image_io
from .batching import batched, keras_predict, run_batches
from .checks import check_choice
from .errors import OpenL3liteError, OpenL3liteWarning, warn
from .facts import (
    AUDIO_EMBEDDING_SIZES,
    CONTENT_TYPES,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONTENT_TYPE,
    DEFAULT_ENGINE,
    DEFAULT_FRONTEND,
    DEFAULT_HOP_SIZE,
    DEFAULT_MODE,
    DEFAULT_RESAMPLER,
    FRONTENDS,
    IMAGE_EMBEDDING_SIZES,
    INPUT_REPRS,
    MODES,
    RESAMPLERS,
)
from .output import output_path, provenance, write_npz_atomic

#: Samples of an in-memory signal handed to the resampler at a time.
_ARRAY_BLOCK = audio_io.DEFAULT_BLOCK_FRAMES


# ---------------------------------------------------------------- parameter validation

def _file_list(filepath):
    """OpenL3's rule for ``filepath``: a path or a list of paths."""
    if isinstance(filepath, (str, os.PathLike)):
        return [filepath], False
    if isinstance(filepath, (list, tuple)) and all(isinstance(p, (str, os.PathLike))
                                                   for p in filepath):
        return list(filepath), True
    raise OpenL3liteError(f"filepath should be a path or a list of paths, but got {filepath!r}")


def _check_framing(hop_size, center):
    """The window grid's parameters: a hop of at least one sample at 48 kHz, a boolean
    ``center``."""
    checks.check_hop_size(hop_size)
    checks.check_bool("center", center)


def _check_audio_options(input_repr, content_type, embedding_size, hop_size, batch_size,
                         frontend, center, resampler, mode=DEFAULT_MODE, verbose=True,
                         engine=DEFAULT_ENGINE, batch_name="batch_size"):
    if input_repr is not None:
        check_choice("input_repr", input_repr, INPUT_REPRS)
    check_choice("content_type", content_type, CONTENT_TYPES)
    checks.check_embedding_size(embedding_size, AUDIO_EMBEDDING_SIZES)
    _check_framing(hop_size, center)
    checks.check_batch_size(batch_size, batch_name)
    check_choice("frontend", frontend, FRONTENDS)
    check_choice("resampler", resampler, RESAMPLERS)
    check_choice("mode", mode, MODES)
    engines.check_engine(engine)
    checks.check_verbose(verbose)


def _check_audio_array(samples, sr, source):
    """Validate one signal; returns (mono float64 (n,), sr)."""
    if isinstance(sr, bool) or not isinstance(sr, numbers.Real) or not np.isfinite(sr) or sr <= 0:
        raise OpenL3liteError(f"{source}: invalid sample rate {sr!r}: must be a positive number")
    samples = np.asarray(samples)
    if samples.dtype == object or not np.issubdtype(samples.dtype, np.number):
        raise OpenL3liteError(f"{source}: audio must be a numeric array, got dtype {samples.dtype}")
    if samples.size == 0:
        raise OpenL3liteError(f"{source}: got empty audio")
    if samples.ndim not in (1, 2):
        raise OpenL3liteError(f"{source}: audio must be 1-D (samples,) or 2-D (samples, channels);"
                              f" got {samples.ndim} dimensions")
    if samples.ndim == 2 and samples.shape[1] > samples.shape[0]:
        raise OpenL3liteError(f"{source}: audio of shape {samples.shape} has more channels than "
                              "samples; multichannel audio must be (samples, channels)")
    if np.iscomplexobj(samples):
        raise OpenL3liteError(f"{source}: audio must be real-valued")
    if not np.all(np.isfinite(samples)):
        raise OpenL3liteError(f"{source}: audio contains NaN or infinite samples")
    return audio_io.downmix(samples), sr


def _warn_if_all_zero(all_zero, source):
    """OpenL3's warning about a signal that is all zeros (``all_zero`` True)."""
    if all_zero:
        warn(f"{source}: provided audio is all zeros")


def _warn_if_short(n_frames, sr, source):
    """OpenL3's warning about a signal shorter than one window (it is padded)."""
    if n_frames / sr < 1.0:
        warn(f"{source}: duration of provided audio is shorter than window size (1 second). "
             "Audio will be padded.")


# ---------------------------------------------------------------- audio

def _progress(total, enabled, desc):
    if not enabled:
        return None
    from .quiet import progress_bar

    return progress_bar(total=total, desc=desc, unit="win", leave=False)


def _audio_predict(model, engine=DEFAULT_ENGINE):
    """(b, 48000) windows -> (b, D) embeddings: the model's frontend, then its network on
    ``engine``."""
    if model.frontend == "librosa":
        from .frontend import librosa_spectrogram

        predict = engines.predictor(model, engine, waveform_input=False)
        return lambda windows: predict(librosa_spectrogram(windows, model.input_repr))
    return engines.predictor(model, engine)


def as_audio_model(model, input_repr=None, embedding_size=AUDIO_EMBEDDING_SIZES[0],
                   frontend=DEFAULT_FRONTEND, content_type=DEFAULT_CONTENT_TYPE,
                   engine=DEFAULT_ENGINE, mode=DEFAULT_MODE):
    """The audio API's ``model`` argument resolved (:func:`openl3lite.models.as_audio_model`).

    In exact mode with an engine other than Keras and a model given by name or file (or the
    default), the engine's converted network is used straight from the cache when it is there
    (:func:`openl3lite.engines.cached_engine_model`), so Keras and TensorFlow are not imported.
    Fast mode runs its trunk in Keras, so it always gets the Keras model.
    """
    cached = engines.cached_engine_model(model, "audio", input_repr, embedding_size, frontend,
                                         content_type, engine, mode)
    if cached is not None:
        return cached
    return keras_models().as_audio_model(model, input_repr, embedding_size, frontend, content_type)


def as_image_model(model, embedding_size=IMAGE_EMBEDDING_SIZES[0], input_repr=None,
                   content_type=DEFAULT_CONTENT_TYPE, engine=DEFAULT_ENGINE):
    """The image API's ``model`` argument resolved (see :func:`as_audio_model`)."""
    cached = engines.cached_engine_model(model, "image", input_repr, embedding_size, None,
                                         content_type, engine)
    if cached is not None:
        return cached
    return keras_models().as_image_model(model, embedding_size, input_repr, content_type)


def keras_models():
    """:mod:`openl3lite.models`, imported (with Keras and its backend) on first need, without
    TensorFlow's start-up lines: how every Keras-free module reaches the Keras models."""
    from .quiet import import_backend_quietly

    import_backend_quietly()
    from . import models

    return models


def embed_audio_stream(blocks, n_frames, sr, model, center, hop_size, batch_size,
                       resampler=DEFAULT_RESAMPLER, verbose=False, desc="audio", mode=DEFAULT_MODE,
                       engine=DEFAULT_ENGINE):
    """Embed a mono signal given as a stream of blocks at ``sr``.

    Parameters
    ----------
    blocks : iterable of np.ndarray, float64, shape (k,)
        Consecutive mono blocks, ``n_frames`` samples in total.
    n_frames : int
        Signal length in samples at ``sr``.
    sr : float
        Sample rate in Hz.
    model : AudioEmbeddingModel
    center : bool
    hop_size : float
        Seconds.
    batch_size : int
    resampler : str
    verbose : bool
        Show a progress bar over windows.
    desc : str
        Progress bar label.
    mode : str
        ``exact`` (every window through the network) or ``fast`` (approximate, shares the
        work of overlapping windows where that saves at least half the work, exact otherwise;
        see :mod:`openl3lite.fast`).
    engine : str
        Where exact mode runs the network: ``keras`` (default), ``onnxruntime`` or
        ``openvino`` (see :mod:`openl3lite.engines`; fast mode's trunk runs in Keras).

    Returns
    -------
    embedding : np.ndarray, float32, shape (n_windows, embedding_size)
    timestamps : np.ndarray, float64, shape (n_windows,)
    """
    _check_framing(hop_size, center)
    checks.check_batch_size(batch_size)
    check_choice("mode", mode, MODES)
    grid = framing.WindowGrid.of(audio_io.resampled_length(n_frames, sr), hop_size, center)
    resampled = audio_io.iter_resampled(blocks, sr, n_frames, method=resampler)
    if mode == "fast":
        from . import fast

        trunk = fast.audio_trunk(model)  # fails early for a bare Keras model
        mode = "fast" if fast.grid_pays_off(grid, model.input_repr) else "exact"
    progress = _progress(grid.count, verbose, desc)
    try:
        if mode == "fast":
            return fast.embed_grid(resampled, grid, model, keras_predict(trunk), progress)
        batches = framing.iter_grid_batches(resampled, grid, batch_size)
        embedding = run_batches(_audio_predict(model, engine), batches, grid.count, progress)
    finally:
        if progress is not None:
            progress.close()
    return embedding, grid.timestamps


def _array_blocks(mono):
    for start in range(0, len(mono), _ARRAY_BLOCK):
        yield mono[start : start + _ARRAY_BLOCK]


def get_audio_embedding(audio, sr, model=None, input_repr=None, content_type=DEFAULT_CONTENT_TYPE,
                        embedding_size=AUDIO_EMBEDDING_SIZES[0], center=True, hop_size=DEFAULT_HOP_SIZE, batch_size=DEFAULT_BATCH_SIZE,
                        frontend=DEFAULT_FRONTEND, verbose=True, resampler=DEFAULT_RESAMPLER, mode=DEFAULT_MODE,
                        engine=DEFAULT_ENGINE):
    """Compute L3 embeddings of audio, one per 1-second window.

    Parameters
    ----------
    audio : np.ndarray or list of np.ndarray
        Signal(s), shape (samples,) or (samples, channels); channels are averaged.
    sr : float or list of float
        Sample rate(s) in Hz; resampled to 48 kHz.
    model : AudioEmbeddingModel, keras.Model or str, optional
        A loaded model, or a model name (``openl3-mel256-music``, ``l3embed models`` lists
        them) or weights file. None: OpenL3's weights for ``input_repr`` and
        ``content_type``, as OpenL3 chooses them (fetched on first use).
    input_repr : str, optional
        ``linear``, ``mel128`` or ``mel256``: which OpenL3 model when ``model`` is None
        (default ``mel256``); for a given model, None or the model's own.
    content_type : str
        ``music`` or ``env``: which OpenL3 model when ``model`` is None.
    embedding_size : int
        6144 or 512 (used when ``model`` is None or a name).
    center : bool
        Centre the first window on t=0 (prepend half a window of zeros).
    hop_size : float
        Hop between windows in seconds.
    batch_size : int
        Windows per network batch; peak memory grows with it.
    frontend : str
        ``kapre`` (in-graph) or ``librosa``; used when ``model`` is None.
    verbose : bool
        Show a progress bar.
    resampler : str
        ``kaiser_best`` (OpenL3-exact, default), ``soxr_hq`` or ``soxr_vhq`` (faster).
    mode : str
        ``exact`` (default: every window through the network, OpenL3's results) or ``fast``
        (approximate: the spectrogram and the convolutional trunk are computed once over long
        spans and each window's region is pooled; several times faster at short hops. Signals
        where that would not save at least half the work, e.g. hops of about 0.5 s and more
        or clips of a few windows, are computed exactly. See docs/performance.md for its
        agreement with exact mode).
    engine : str
        Where exact mode runs the network: ``keras`` (default), or the network converted once
        (cached by its weights' sha256) for ``onnxruntime`` or ``openvino``
        (``pip install 'openl3lite[export]'``); equal to Keras within the tolerances of
        docs/export.md.

    Returns
    -------
    embedding : np.ndarray, float32, shape (n_windows, D), or a list of them
    timestamps : np.ndarray, float64, shape (n_windows,), or a list of them
        Window centres (``center=True``) or starts, in seconds.
    """
    _check_audio_options(input_repr, content_type, embedding_size, hop_size, batch_size,
                         frontend, center, resampler, mode, verbose, engine)
    if not isinstance(audio, (np.ndarray, list, tuple)):
        raise OpenL3liteError(f"audio must be a numpy array or a list of them; got "
                              f"{type(audio).__name__}")
    is_list = isinstance(audio, (list, tuple))
    signals = list(audio) if is_list else [audio]
    if is_list and not signals:
        raise OpenL3liteError("got an empty list of audio signals")
    if isinstance(sr, (list, tuple, np.ndarray)):
        rates = list(sr)
        if len(rates) != len(signals):
            raise OpenL3liteError(f"got {len(signals)} signals but {len(rates)} sample rates")
    else:
        rates = [sr] * len(signals)
    checked = [_check_audio_array(x, r, f"audio[{i}]" if is_list else "audio")
               for i, (x, r) in enumerate(zip(signals, rates))]
    model = as_audio_model(model, input_repr, embedding_size, frontend, content_type, engine,
                           mode)
    embeddings, timestamps = [], []
    for i, (mono, rate) in enumerate(checked):
        source = f"audio[{i}]" if is_list else "audio"
        _warn_if_all_zero(not np.any(mono), source)  # OpenL3's order
        _warn_if_short(len(mono), rate, source)
        emb, ts = embed_audio_stream(_array_blocks(mono), len(mono), rate, model, center,
                                     hop_size, batch_size, resampler, verbose, mode=mode,
                                     engine=engine)
        embeddings.append(emb)
        timestamps.append(ts)
    if is_list:
        return embeddings, timestamps
    return embeddings[0], timestamps[0]


def embed_audio_file(filepath, model, center=True, hop_size=DEFAULT_HOP_SIZE, batch_size=DEFAULT_BATCH_SIZE,
                     resampler=DEFAULT_RESAMPLER, verbose=False, mode=DEFAULT_MODE,
                     engine=DEFAULT_ENGINE):
    """Embed an audio file, streaming it from disk in blocks.

    Parameters
    ----------
    filepath : str or os.PathLike
    model : AudioEmbeddingModel

    Returns
    -------
    embedding : np.ndarray, float32, shape (n_windows, D)
    timestamps : np.ndarray, float64, shape (n_windows,)

    Raises
    ------
    OpenL3liteError
        Unreadable, empty or non-finite audio, naming the file.
    """
    _check_framing(hop_size, center)
    checks.check_batch_size(batch_size)
    path = os.fspath(filepath)
    with audio_io.open_audio_file(path) as opened:
        return _embed_checked_stream(audio_io.iter_file_blocks(opened), opened.info.n_frames,
                                     opened.info.sr, path, model, center, hop_size, batch_size,
                                     resampler, verbose, mode, engine)


def _embed_checked_stream(blocks, n_frames, sr, path, model, center, hop_size, batch_size,
                          resampler, verbose, mode, engine=DEFAULT_ENGINE):
    """:func:`embed_audio_stream` of a file's blocks (mono, or (k, channels) to downmix),
    refusing empty or non-finite audio and warning, as for arrays, about audio shorter than a
    window or all zero."""
    if n_frames == 0:
        raise OpenL3liteError(f"{path}: got empty audio")
    all_zero = True

    def checked_blocks():
        nonlocal all_zero
        for block in blocks:
            block = audio_io.downmix(block)
            if not np.all(np.isfinite(block)):
                raise OpenL3liteError(f"{path}: audio contains NaN or infinite samples")
            all_zero = all_zero and not np.any(block)
            yield block

    _warn_if_short(n_frames, sr, path)
    result = embed_audio_stream(checked_blocks(), n_frames, sr, model, center, hop_size,
                                batch_size, resampler, verbose, desc=os.path.basename(path),
                                mode=mode, engine=engine)
    _warn_if_all_zero(all_zero, path)
    return result


def process_audio_file(filepath, output_dir=None, suffix=None, model=None, input_repr=None,
                       content_type=DEFAULT_CONTENT_TYPE, embedding_size=AUDIO_EMBEDDING_SIZES[0],
                       center=True, hop_size=DEFAULT_HOP_SIZE, batch_size=DEFAULT_BATCH_SIZE,
                       overwrite=False, frontend=DEFAULT_FRONTEND, verbose=True,
                       resampler=DEFAULT_RESAMPLER, mode=DEFAULT_MODE, engine=DEFAULT_ENGINE):
    """Embed audio file(s) and save ``<basename>[_<suffix>].npz`` with ``embedding`` and
    ``timestamps`` (and the provenance keys of :func:`openl3lite.output.provenance`).

    Parameters
    ----------
    filepath : str or list of str
        Audio file(s): WAV, FLAC, OGG/Opus, MP3, AIFF, ... read by libsndfile, or anything else
        ffmpeg decodes (M4A/AAC, WMA, a video's sound track; see
        :func:`openl3lite.audio.open_audio_file`).
    output_dir : str, optional
        Where to write; beside each input if None.
    suffix : str, optional
        Appended to the output's base name.
    overwrite : bool
        Replace existing outputs (otherwise they are skipped).
    Other parameters as :func:`get_audio_embedding`.

    Returns
    -------
    str or list of str
        Output path(s).
    """
    _check_audio_options(input_repr, content_type, embedding_size, hop_size, batch_size,
                         frontend, center, resampler, mode, verbose, engine)
    paths, is_list = _file_list(filepath)
    model = as_audio_model(model, input_repr, embedding_size, frontend, content_type, engine,
                           mode)
    params = {"hop_size": hop_size, "center": bool(center), "resampler": resampler,
              "mode": mode, "engine": engine}

    def embed_one(path):
        embedding, timestamps = embed_audio_file(path, model, center, hop_size, batch_size,
                                                 resampler, verbose, mode, engine)
        return {"embedding": embedding, "timestamps": timestamps,
                **provenance(model, embedding, **params)}

    outputs = _process_files(paths, output_dir, suffix, overwrite, verbose, embed_one)
    return outputs if is_list else outputs[0]


def _process_files(paths, output_dir, suffix, overwrite, verbose, embed_one):
    """The file loop shared by ``process_audio_file`` and ``process_image_file``.

    Parameters
    ----------
    paths : list of str
    output_dir, suffix : str or None
        As in :func:`openl3lite.output.output_path`.
    overwrite : bool
        Replace existing outputs (else skip them, saying so).
    verbose : bool
        Say which file is processed and what was written.
    embed_one : callable
        path -> dict of arrays to save.

    Returns
    -------
    list of str
        Output paths.
    """
    outputs = []
    for index, path in enumerate(paths):
        out = output_path(path, output_dir, suffix)
        outputs.append(out)
        if verbose:
            print(f"openl3lite: Processing {path} ({index + 1}/{len(paths)})")
        if os.path.exists(out) and not overwrite:
            print(f"openl3lite: {out} exists and overwriting not enabled, skipping.")
            continue
        write_npz_atomic(out, **embed_one(path))
        if verbose:
            print(f"openl3lite: Saved {out}")
    return outputs


def preprocess_audio(audio, sr, hop_size=DEFAULT_HOP_SIZE, input_repr=None, center=True):
    """OpenL3 0.4.2's ``preprocess_audio``: a signal cut into the network's input.

    Parameters
    ----------
    audio : np.ndarray, shape (samples,) or (samples, channels)
    sr : float
        Sample rate in Hz (resampled to 48 kHz with ``kaiser_best``).
    hop_size : float
        Seconds between windows.
    input_repr : str, optional
        None: the 1-second waveforms, for a model with the in-graph ("kapre") frontend.
        ``linear``, ``mel128`` or ``mel256``: OpenL3's librosa spectrograms of them, for a model
        with the librosa frontend.
    center : bool

    Returns
    -------
    np.ndarray, float32
        (n_windows, 1, 48000) waveforms, or (n_windows, n_freq, n_time, 1) dB spectrograms.
        Either feeds ``model.predict`` of the matching model.
    """
    _check_framing(hop_size, center)
    if input_repr is not None:
        check_choice("input_repr", input_repr, INPUT_REPRS)
    mono, sr = _check_audio_array(audio, sr, "audio")
    _warn_if_all_zero(not np.any(mono), "audio")
    _warn_if_short(len(mono), sr, "audio")
    n_samples = audio_io.resampled_length(len(mono), sr)
    resampled = audio_io.iter_resampled(_array_blocks(mono), sr, len(mono))
    windows = np.concatenate(list(framing.iter_window_batches(
        resampled, n_samples, hop_size, center, DEFAULT_BATCH_SIZE)))
    if input_repr is None:
        return windows.astype(np.float32)[:, None, :]
    from .frontend import librosa_spectrogram

    return np.asarray(librosa_spectrogram(windows, input_repr), np.float32)


# ---------------------------------------------------------------- images

def _check_image_options(input_repr, content_type, embedding_size, batch_size, verbose,
                         batch_name="batch_size", engine=DEFAULT_ENGINE):
    if input_repr is not None:
        check_choice("input_repr", input_repr, INPUT_REPRS)
    check_choice("content_type", content_type, CONTENT_TYPES)
    checks.check_embedding_size(embedding_size, IMAGE_EMBEDDING_SIZES)
    checks.check_batch_size(batch_size, batch_name)
    engines.check_engine(engine)
    checks.check_verbose(verbose)


def embed_images(batch, model, batch_size=DEFAULT_BATCH_SIZE, verbose=False, source="image",
                 engine=DEFAULT_ENGINE):
    """Embed a validated batch of images.

    Parameters
    ----------
    batch : np.ndarray, shape (N, H, W, 3)
    model : ImageEmbeddingModel
    batch_size : int
    engine : str
        ``keras``, ``onnxruntime`` or ``openvino`` (see :mod:`openl3lite.engines`).

    Returns
    -------
    np.ndarray, float32, shape (N, D)
    """
    checks.check_batch_size(batch_size)
    predict = engines.predictor(model, engine)
    if model.image_scaling == "openl3":  # OpenL3 scales by the whole array's maximum
        inputs = batched(image_io.preprocess_images(batch, "openl3"), batch_size)
    else:
        inputs = (image_io.preprocess_images(chunk, model.image_scaling)
                  for chunk in batched(batch, batch_size))
    progress = _progress(len(batch), verbose, source)
    try:
        return run_batches(predict, inputs, len(batch), progress)
    finally:
        if progress is not None:
            progress.close()


def embed_frames(frames, model, batch_size=DEFAULT_BATCH_SIZE, verbose=False, source="video",
                 openl3_peak=None, engine=DEFAULT_ENGINE):
    """Embed a stream of video frames, ``batch_size`` at a time, without holding them all.

    Each batch is validated and preprocessed on its own, which gives what preprocessing the
    whole stack at once gives: with symmetric scaling every image is scaled alone, and OpenL3's
    scaling, which divides by the peak of the whole array it is given, takes the stream's
    peak as ``openl3_peak``.

    Parameters
    ----------
    frames : iterable of np.ndarray, uint8, shape (H, W, 3)
    model : ImageEmbeddingModel
    batch_size : int
    verbose : bool
        Show a progress bar over frames.
    source : str
        Name used in messages.
    openl3_peak : float, optional
        For a model with OpenL3's scaling: :func:`openl3lite.image.openl3_peak` of all the
        frames (each batch's own if None, which differs from OpenL3 for frames of 224-256 px).

    Returns
    -------
    np.ndarray, float32, shape (n_frames, D)

    Raises
    ------
    OpenL3liteError
        If there are no frames or a frame is invalid. Warns once if every frame is black.
    """
    from .batching import batched_stream

    checks.check_batch_size(batch_size)
    all_zero = True

    def batches():
        nonlocal all_zero
        for group in batched_stream(frames, batch_size):
            batch = image_io.as_image_batch(np.stack(group), source, warn_all_zero=False)
            all_zero = all_zero and not np.any(batch)
            yield image_io.preprocess_images(batch, model.image_scaling, openl3_peak)

    progress = _progress(None, verbose, source)
    try:
        embedding = run_batches(engines.predictor(model, engine), batches(), None, progress)
    except RuntimeError:  # no batches
        raise OpenL3liteError(f"{source}: video has no frames") from None
    finally:
        if progress is not None:
            progress.close()
    if all_zero:
        warn(f"{source}: provided image is all zeros")
    return embedding


def get_image_embedding(image, frame_rate=None, model=None, input_repr=None,
                        content_type=DEFAULT_CONTENT_TYPE, embedding_size=IMAGE_EMBEDDING_SIZES[0], batch_size=DEFAULT_BATCH_SIZE, verbose=True,
                        engine=DEFAULT_ENGINE):
    """Compute L3 image embeddings.

    Parameters
    ----------
    image : np.ndarray or list of np.ndarray
        (H, W, 3) image or (N, H, W, 3) batch (e.g. video frames); grey and RGBA are converted.
        At least 224 px on the shorter side.
    frame_rate : float or list of float, optional
        Frames per second of a batch; when given, timestamps are returned too.
    model : ImageEmbeddingModel or keras.Model, optional
        None loads the default released model.
    input_repr, content_type : str
        Accepted for OpenL3 compatibility.
    embedding_size : int
        8192 or 512 (used when ``model`` is None).
    batch_size : int
    verbose : bool
    engine : str
        ``keras`` (default), ``onnxruntime`` or ``openvino``, as in
        :func:`get_audio_embedding`.

    Returns
    -------
    embedding : np.ndarray, float32, shape (N, D), or a list of them
    timestamps : np.ndarray, float64, shape (N,), or a list (only if ``frame_rate`` is given)
    """
    _check_image_options(input_repr, content_type, embedding_size, batch_size, verbose,
                         engine=engine)
    if not isinstance(image, (np.ndarray, list, tuple)):
        raise OpenL3liteError(f"image must be a numpy array or a list of them; got "
                              f"{type(image).__name__}")
    is_list = isinstance(image, (list, tuple))
    images = list(image) if is_list else [image]
    if is_list and not images:
        raise OpenL3liteError("got an empty list of images")
    if isinstance(frame_rate, (list, tuple)):
        if len(frame_rate) != len(images):
            raise OpenL3liteError(f"got {len(images)} images but {len(frame_rate)} frame rates")
        rates = list(frame_rate)
    else:
        rates = [frame_rate] * len(images)
    for rate in rates:
        if rate is not None:
            checks.check_positive_number("frame_rate", rate)
    batches = [image_io.as_image_batch(x, f"image[{i}]" if is_list else "image")
               for i, x in enumerate(images)]
    model = as_image_model(model, embedding_size, input_repr, content_type, engine)
    embeddings = [embed_images(b, model, batch_size, verbose, engine=engine) for b in batches]
    timestamps = [np.arange(len(b)) / rate if rate is not None else None
                  for b, rate in zip(batches, rates)]
    if frame_rate is None:
        return embeddings if is_list else embeddings[0]
    if is_list:
        return embeddings, timestamps
    return embeddings[0], timestamps[0]


def process_image_file(filepath, output_dir=None, suffix=None, model=None, input_repr=None,
                       content_type=DEFAULT_CONTENT_TYPE, embedding_size=IMAGE_EMBEDDING_SIZES[0], batch_size=DEFAULT_BATCH_SIZE,
                       overwrite=False, verbose=True, engine=DEFAULT_ENGINE):
    """Embed image file(s) and save ``<basename>[_<suffix>].npz`` with key ``embedding``
    (shape (1, D)) and the provenance keys of :func:`openl3lite.output.provenance`.

    Returns
    -------
    str or list of str
        Output path(s).
    """
    _check_image_options(input_repr, content_type, embedding_size, batch_size, verbose,
                         engine=engine)
    paths, is_list = _file_list(filepath)
    model = as_image_model(model, embedding_size, input_repr, content_type, engine)

    def embed_one(path):
        batch = image_io.as_image_batch(image_io.read_image(path), os.fspath(path))
        embedding = embed_images(batch, model, batch_size, False, os.fspath(path), engine)
        return {"embedding": embedding, **provenance(model, embedding, engine=engine)}

    outputs = _process_files(paths, output_dir, suffix, overwrite, verbose, embed_one)
    return outputs if is_list else outputs[0]


# ---------------------------------------------------------------- video

def embed_video_file(filepath, audio_model, image_model, center=True, hop_size=DEFAULT_HOP_SIZE,
                     audio_batch_size=DEFAULT_BATCH_SIZE, image_batch_size=DEFAULT_BATCH_SIZE,
                     verbose=False, audio_mode=DEFAULT_MODE,
                     audio=True, image=True, engine=DEFAULT_ENGINE):
    """Embed a video's audio track and/or frames, streaming both (memory does not grow with the
    video's length, apart from the embeddings themselves).

    Parameters
    ----------
    audio, image : bool
        Which of the two to compute (a model that is not needed may be None).
    engine : str
        ``keras``, ``onnxruntime`` or ``openvino``, for both networks.

    Returns
    -------
    dict
        ``audio_embedding`` (n_windows, D_a), ``audio_timestamps`` (n_windows,) if ``audio``;
        ``image_embedding`` (n_frames, D_i), ``image_timestamps`` (n_frames,) in seconds if
        ``image``.
    """
    from . import video

    _check_framing(hop_size, center)
    checks.check_batch_size(audio_batch_size, "audio_batch_size")
    checks.check_batch_size(image_batch_size, "image_batch_size")
    path = os.fspath(filepath)
    result = {}
    if audio:
        with video.open_video_audio(path, sr=audio_io.TARGET_SR) as (n_samples, blocks):
            result["audio_embedding"], result["audio_timestamps"] = _embed_checked_stream(
                blocks, n_samples, audio_io.TARGET_SR, path, audio_model, center, hop_size,
                audio_batch_size, DEFAULT_RESAMPLER, verbose, audio_mode, engine)
    if not image:
        return result
    fps = video.video_fps(path)
    openl3_scaling = image_model.image_scaling == "openl3"
    size, rate = ({"size": (256, 256)}, int(fps)) if openl3_scaling else ({"short_side": 256}, fps)

    def frames(check_cut_short):
        return (frame for _, frame in video.iter_video_frames(
            path, fps=fps, check_cut_short=check_cut_short, **size))

    check = not audio  # the cut-short check runs once: with the sound, else on the first pass
    peak = None
    if openl3_scaling:
        peak = _openl3_peak_of_stream(frames(check), image_batch_size)
        check = False
    image_emb = embed_frames(frames(check), image_model, image_batch_size, verbose, path, peak,
                             engine)
    result["image_embedding"] = image_emb
    result["image_timestamps"] = np.arange(len(image_emb)) / rate
    return result


def _openl3_peak_of_stream(frames, batch_size):
    """:func:`openl3lite.image.openl3_peak` of a stream of frames, batch by batch: OpenL3
    divides every frame of a video by the brightest pixel of all of them, so a first pass over
    the frames finds it. Warnings about the frames are left to the second pass."""
    import warnings

    from .batching import batched_stream

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OpenL3liteWarning)
        return max((image_io.openl3_peak(image_io.as_image_batch(np.stack(group),
                                                                   warn_all_zero=False))
                    for group in batched_stream(frames, batch_size)), default=0.0)


def process_video_file(filepath, output_dir=None, suffix=None, audio_model=None,
                       image_model=None, input_repr=None, content_type=DEFAULT_CONTENT_TYPE,
                       audio_embedding_size=AUDIO_EMBEDDING_SIZES[0], audio_center=True,
                       audio_hop_size=DEFAULT_HOP_SIZE,
                       image_embedding_size=IMAGE_EMBEDDING_SIZES[0],
                       audio_batch_size=DEFAULT_BATCH_SIZE, image_batch_size=DEFAULT_BATCH_SIZE,
                       audio_frontend=DEFAULT_FRONTEND, overwrite=False, verbose=True,
                       audio_mode=DEFAULT_MODE, engine=DEFAULT_ENGINE):
    """Embed video file(s): saves ``<basename>_audio<suffix>.npz`` and
    ``<basename>_image<suffix>.npz``, each with ``embedding`` and ``timestamps``.

    Each output is computed only if it is missing (or ``overwrite``): an existing audio output
    is kept while a missing image output is made, and the other way round, as OpenL3 does.

    Parameters
    ----------
    audio_mode : str
        ``exact`` (default) or ``fast`` (approximate; see :func:`get_audio_embedding`).
    engine : str
        ``keras`` (default), ``onnxruntime`` or ``openvino``, for both networks.
    Other parameters as :func:`process_audio_file` and :func:`process_image_file`.

    Returns
    -------
    tuple of str or list of tuples
        (audio output, image output) per file.
    """
    _check_audio_options(input_repr, content_type, audio_embedding_size, audio_hop_size,
                         audio_batch_size, audio_frontend, audio_center, DEFAULT_RESAMPLER,
                         audio_mode, verbose, engine, "audio_batch_size")
    _check_image_options(input_repr, content_type, image_embedding_size, image_batch_size,
                         verbose, "image_batch_size", engine)
    paths, is_list = _file_list(filepath)
    audio_model = as_audio_model(audio_model, input_repr, audio_embedding_size, audio_frontend,
                                 content_type, engine, audio_mode)
    image_model = as_image_model(image_model, image_embedding_size, input_repr, content_type,
                                 engine)
    audio_params = {"hop_size": audio_hop_size, "center": bool(audio_center),
                    "resampler": DEFAULT_RESAMPLER, "mode": audio_mode, "engine": engine}
    outputs = []
    for index, path in enumerate(paths):
        audio_out = output_path(path, output_dir, suffix, modality="audio")
        image_out = output_path(path, output_dir, suffix, modality="image")
        outputs.append((audio_out, image_out))
        if verbose:
            print(f"openl3lite: Processing {path} ({index + 1}/{len(paths)})")
        need_audio = overwrite or not os.path.exists(audio_out)
        need_image = overwrite or not os.path.exists(image_out)
        for out, needed in ((audio_out, need_audio), (image_out, need_image)):
            if not needed:
                print(f"openl3lite: {out} exists and overwriting not enabled, skipping.")
        if not (need_audio or need_image):
            continue
        result = embed_video_file(path, audio_model, image_model, audio_center, audio_hop_size,
                                  audio_batch_size, image_batch_size, verbose, audio_mode,
                                  audio=need_audio, image=need_image, engine=engine)
        written = write_video_outputs(result, audio_out, image_out, audio_model, image_model,
                                      audio_params)
        if verbose:
            for out in written:
                print(f"openl3lite: Saved {out}")
    return outputs if is_list else outputs[0]


def write_video_outputs(result, audio_out, image_out, audio_model, image_model, audio_params):
    """Write what :func:`embed_video_file` computed: ``_audio`` and/or ``_image`` ``.npz``.

    Parameters
    ----------
    result : dict
        From :func:`embed_video_file`.
    audio_out, image_out : str
        Output paths.
    audio_model, image_model : keras.Model
    audio_params : dict
        The audio provenance (``hop_size``, ``center``, ``resampler``, ``mode``, ``engine``);
        its ``engine`` is recorded in the image output too.

    Returns
    -------
    list of str
        The files written.
    """
    written = []
    if "audio_embedding" in result:
        write_npz_atomic(audio_out, embedding=result["audio_embedding"],
                         timestamps=result["audio_timestamps"],
                         **provenance(audio_model, result["audio_embedding"], **audio_params))
        written.append(audio_out)
    if "image_embedding" in result:
        write_npz_atomic(image_out, embedding=result["image_embedding"],
                         timestamps=result["image_timestamps"],
                         **provenance(image_model, result["image_embedding"],
                                      engine=audio_params.get("engine", DEFAULT_ENGINE)))
        written.append(image_out)
    return written
