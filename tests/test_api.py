"""The public API's argument validation, warnings, list handling and bounded-memory streaming."""

import warnings

import numpy as np
import pytest
import soundfile as sf

import openl3lite
from openl3lite import audio as audio_io
from openl3lite import framing
from openl3lite.api import embed_audio_file


@pytest.fixture(scope="module")
def tiny_audio_model():
    return openl3lite.random_audio_model("mel128", 512, width=0.0625, seed=1)


@pytest.fixture(scope="module")
def tiny_image_model():
    return openl3lite.random_image_model(512, width=0.0625, seed=2)


def _tone(seconds, sr, freq=440.0):
    t = np.arange(int(seconds * sr)) / sr
    return 0.5 * np.sin(2 * np.pi * freq * t)


@pytest.mark.parametrize("kwargs, message", [
    ({"hop_size": 0}, "hop_size"), ({"hop_size": -0.1}, "hop_size"),
    ({"hop_size": "0.1"}, "hop_size"), ({"hop_size": 1e-6}, "hop_size"),
    ({"input_repr": "mel64"}, "input_repr"), ({"content_type": "speech"}, "content_type"),
    ({"embedding_size": 1024}, "embedding_size"), ({"batch_size": 0}, "batch_size"),
    ({"frontend": "torch"}, "frontend"), ({"center": "yes"}, "center"),
    ({"resampler": "linear"}, "resampler"),
])
def test_bad_audio_arguments(kwargs, message, tiny_audio_model):
    with pytest.raises(openl3lite.OpenL3liteError, match=message):
        openl3lite.get_audio_embedding(_tone(1, 16000), 16000, model=tiny_audio_model,
                                       verbose=False, **kwargs)


@pytest.mark.parametrize("audio, sr, message", [
    (np.zeros(0), 16000, "empty audio"),
    (np.zeros((10, 2, 2)), 16000, "dimensions"),
    (np.array([0.0, np.nan, 0.1] * 1000), 16000, "NaN or infinite"),
    (np.array([0.0, np.inf] * 1000), 16000, "NaN or infinite"),
    (np.zeros(1000), 0, "sample rate"), (np.zeros(1000), -8000, "sample rate"),
    (np.zeros(1000), "16k", "sample rate"), (np.array(["a", "b"]), 16000, "numeric"),
    (np.zeros((2, 16000)), 16000, "more channels than samples"),
])
def test_bad_audio_input(audio, sr, message, tiny_audio_model):
    with pytest.raises(openl3lite.OpenL3liteError, match=message):
        openl3lite.get_audio_embedding(audio, sr, model=tiny_audio_model, verbose=False)


def test_error_is_openl3_compatible():
    assert openl3lite.OpenL3Error is openl3lite.OpenL3liteError
    assert issubclass(openl3lite.OpenL3liteError, ValueError)


def test_warnings_for_silence_and_short_audio(tiny_audio_model):
    with pytest.warns(openl3lite.OpenL3liteWarning, match="all zeros"):
        emb, _ = openl3lite.get_audio_embedding(np.zeros(32000), 16000, model=tiny_audio_model,
                                                verbose=False)
    assert np.allclose(emb, emb[0])  # silent windows are identical
    with pytest.warns(openl3lite.OpenL3liteWarning, match="shorter than window size"):
        emb, ts = openl3lite.get_audio_embedding(_tone(0.3, 16000), 16000,
                                                 model=tiny_audio_model, verbose=False)
    assert len(emb) == framing.count_windows(audio_io.resampled_length(4800, 16000), 0.1)


def test_list_input_equals_single_calls(tiny_audio_model):
    a, b = _tone(1.5, 22050), np.stack([_tone(2, 48000, 300), _tone(2, 48000, 900)], axis=1)
    embs, stamps = openl3lite.get_audio_embedding([a, b], [22050, 48000], model=tiny_audio_model,
                                                  hop_size=0.25, verbose=False)
    for signal, sr, emb, ts in zip([a, b], [22050, 48000], embs, stamps):
        single, single_ts = openl3lite.get_audio_embedding(signal, sr, model=tiny_audio_model,
                                                           hop_size=0.25, verbose=False)
        np.testing.assert_allclose(emb, single, atol=1e-5)
        np.testing.assert_array_equal(ts, single_ts)
    with pytest.raises(openl3lite.OpenL3liteError, match="sample rates"):
        openl3lite.get_audio_embedding([a, b], [22050], model=tiny_audio_model, verbose=False)


def test_multichannel_is_downmixed(tiny_audio_model):
    left, right = _tone(1.2, 48000, 300), _tone(1.2, 48000, 1200)
    stereo, _ = openl3lite.get_audio_embedding(np.stack([left, right], 1), 48000,
                                               model=tiny_audio_model, verbose=False)
    mono, _ = openl3lite.get_audio_embedding((left + right) / 2, 48000, model=tiny_audio_model,
                                             verbose=False)
    np.testing.assert_allclose(stereo, mono, atol=1e-6)


@pytest.mark.parametrize("n_samples", [1, 47999, 48000, 48001, 123457])
@pytest.mark.parametrize("hop_size", [0.1, 0.25, 1.0, 1.7])
@pytest.mark.parametrize("center", [True, False])
def test_window_batches_match_direct_slicing(n_samples, hop_size, center):
    """Streaming framing equals slicing the whole padded signal, for any block size."""
    rng = np.random.default_rng(n_samples)
    signal = rng.standard_normal(n_samples)
    n = framing.count_windows(n_samples, hop_size, center)
    hop = framing.hop_length(hop_size)
    padded = np.concatenate([np.zeros(24000 if center else 0), signal,
                             np.zeros(48000 + n * hop)])
    expected = np.stack([padded[i * hop : i * hop + 48000] for i in range(n)])
    blocks = [signal[i : i + 7919] for i in range(0, n_samples, 7919)]
    got = np.concatenate(list(framing.iter_window_batches(iter(blocks), n_samples, hop_size,
                                                          center, batch_size=5)))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 96000, 44101])
def test_streamed_resampling_equals_whole(sr):
    rng = np.random.default_rng(sr)
    signal = rng.standard_normal(sr * 3 + 123)
    whole = audio_io.resample(signal, sr)
    blocks = [signal[i : i + 20011] for i in range(0, len(signal), 20011)]
    streamed = np.concatenate(list(audio_io.iter_resampled(iter(blocks), sr, len(signal))))
    assert len(streamed) == len(whole) == audio_io.resampled_length(len(signal), sr)
    np.testing.assert_allclose(streamed, whole, atol=1e-8)


def test_file_streaming_equals_in_memory(tmp_path, tiny_audio_model, monkeypatch):
    """A file read in many small blocks gives the in-memory result (to 1e-5)."""
    path = tmp_path / "tone.flac"
    rng = np.random.default_rng(0)
    signal = 0.3 * np.stack([_tone(7.3, 44100), rng.standard_normal(int(7.3 * 44100)) * 0.1], 1)
    sf.write(path, signal, 44100)
    read, _ = sf.read(path)
    whole, ts = openl3lite.get_audio_embedding(read, 44100, model=tiny_audio_model,
                                               hop_size=0.1, verbose=False)
    monkeypatch.setattr(audio_io, "DEFAULT_BLOCK_FRAMES", 12347)
    streamed, ts2 = embed_audio_file(path, tiny_audio_model, hop_size=0.1)
    np.testing.assert_array_equal(ts, ts2)
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def _ffmpeg(*args):
    import subprocess

    from moviepy.config import FFMPEG_BINARY

    subprocess.run([FFMPEG_BINARY, "-v", "error", "-y", *map(str, args)], check=True)


def test_formats_libsndfile_lacks_are_read_through_ffmpeg(tmp_path, tiny_audio_model,
                                                          monkeypatch):
    """M4A (lossless ALAC and lossy AAC) and a video's sound track are decoded by ffmpeg at
    their own rate and channels: ALAC gives exactly the WAV's embedding, AAC nearly. A file
    without sound, a cut-short one and garbage are refused by name; no temporary file stays."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    rng = np.random.default_rng(3)
    signal = np.stack([_tone(2.5, 44100), 0.2 * rng.standard_normal(int(2.5 * 44100))], 1)
    wav = tmp_path / "original.wav"
    sf.write(wav, signal, 44100, subtype="PCM_16")
    _ffmpeg("-i", wav, "-c:a", "alac", tmp_path / "lossless.m4a")
    _ffmpeg("-i", wav, "-c:a", "aac", "-b:a", "256k", tmp_path / "lossy.m4a")

    expected, expected_ts = embed_audio_file(wav, tiny_audio_model)
    samples, sr = audio_io.read_audio(tmp_path / "lossless.m4a")
    assert sr == 44100 and samples.shape == (len(signal), 2)
    np.testing.assert_array_equal(samples, sf.read(wav)[0])
    lossless, ts = embed_audio_file(tmp_path / "lossless.m4a", tiny_audio_model)
    np.testing.assert_array_equal(ts, expected_ts)
    np.testing.assert_allclose(lossless, expected, atol=1e-5)
    lossy, ts = embed_audio_file(tmp_path / "lossy.m4a", tiny_audio_model)
    assert audio_io.audio_file_info(tmp_path / "lossy.m4a").n_frames == len(signal)
    cosine = np.sum(lossy * expected, 1) / np.linalg.norm(lossy, axis=1) / np.linalg.norm(
        expected, axis=1)
    assert len(ts) == len(expected_ts) and cosine.min() > 0.95

    _ffmpeg("-i", tmp_path / "lossy.m4a", "-c", "copy", "-movflags", "+faststart",
            tmp_path / "whole.m4a")
    payload = (tmp_path / "whole.m4a").read_bytes()
    (tmp_path / "cut.m4a").write_bytes(payload[: len(payload) * 6 // 10])
    (tmp_path / "garbage.m4a").write_bytes(b"not audio at all" * 50)
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x64:d=1", tmp_path / "silent.mp4")
    for name, message in [("cut.m4a", r"cut\.m4a: the file is cut short.*partial file"),
                          ("garbage.m4a", r"garbage\.m4a: not a readable audio file \(.*; ffmpeg: "),
                          ("silent.mp4", r"silent\.mp4: not a readable audio file \(it has no "
                                         r"audio stream\)")]:
        with pytest.raises(openl3lite.OpenL3liteError, match=message):
            embed_audio_file(tmp_path / name, tiny_audio_model)
    assert not list((tmp_path / "tmp").iterdir())


def _fsdd_speech(seconds):
    """Real speech: FSDD recordings (8 kHz) strung together to at least ``seconds``."""
    from conftest import FSDD, require

    recordings = sorted(require(FSDD / "recordings").glob("*_theo_*.wav"))[:40]
    pieces, total = [], 0
    for path in recordings:
        samples, sr = sf.read(path)
        pieces.append(samples)
        total += len(samples)
        if total >= seconds * sr:
            break
    return np.concatenate(pieces), sr


def test_mp3_is_read_to_its_real_end(tmp_path, tiny_audio_model):
    """An MP3's length is the decoded one, not libsndfile's estimate: a VBR MP3 without a
    Xing header is read whole (libsndfile alone stops where its estimate ends). An MP3 with the
    header gives OpenL3's result (libsndfile's samples through get_audio_embedding) up to the
    two decoders' round-off."""
    speech, sr = _fsdd_speech(4.0)
    wav = tmp_path / "speech.wav"
    sf.write(wav, speech, sr)
    _ffmpeg("-i", wav, "-ar", 44100, "-q:a", 4, tmp_path / "tagged.mp3")
    _ffmpeg("-i", wav, "-ar", 44100, "-q:a", 4, "-write_xing", 0, tmp_path / "untagged.mp3")
    duration = len(speech) / sr

    tagged, ts = embed_audio_file(tmp_path / "tagged.mp3", tiny_audio_model)
    openl3_way, openl3_ts = openl3lite.get_audio_embedding(
        *sf.read(tmp_path / "tagged.mp3"), model=tiny_audio_model, verbose=False)
    np.testing.assert_array_equal(ts, openl3_ts)
    # ffmpeg's and libsndfile's decoders agree to about 1e-7 here; the log-mel frontend
    # magnifies that in the quiet gaps of FSDD's recordings, to about 1e-3 of the values
    cosine = np.sum(tagged * openl3_way, 1) / np.linalg.norm(tagged, axis=1) / np.linalg.norm(
        openl3_way, axis=1)
    assert cosine.min() > 0.9999
    np.testing.assert_allclose(tagged, openl3_way, atol=2e-2)

    samples, mp3_sr = audio_io.read_audio(tmp_path / "untagged.mp3")
    assert mp3_sr == 44100
    # whole, plus at most the encoder's delay and padding (no header says how much to trim)
    assert duration <= len(samples) / mp3_sr < duration + 0.1
    untagged, untagged_ts = embed_audio_file(tmp_path / "untagged.mp3", tiny_audio_model)
    assert abs(len(untagged_ts) - len(ts)) <= 1 and untagged_ts[-1] >= duration - 1.0


def test_cut_short_wav_is_read_as_far_as_it_goes_with_a_warning(tmp_path, tiny_audio_model):
    """A WAV whose data ends before its header says is embedded as far as it goes and named in
    a warning; placeholder sizes that streaming writers leave in the header are no cut."""
    speech, sr = _fsdd_speech(3.0)
    whole = tmp_path / "whole.wav"
    sf.write(whole, speech, sr, subtype="PCM_16")
    payload = whole.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(payload[: 44 + (len(payload) - 44) // 2])
    held = (len(payload) - 44) // 2 // 2

    with pytest.warns(openl3lite.OpenL3liteWarning,
                      match=r"cut\.wav: the file is cut short .*declares "
                            rf"{len(speech) / sr:.2f} s of audio, it holds {held / sr:.2f} s"):
        emb, ts = embed_audio_file(cut, tiny_audio_model)
    expected, expected_ts = openl3lite.get_audio_embedding(speech[:held], sr,
                                                           model=tiny_audio_model, verbose=False)
    np.testing.assert_array_equal(ts, expected_ts)
    np.testing.assert_allclose(emb, expected, atol=1e-5)

    streamed = tmp_path / "streamed.wav"  # data size left at 0xFFFFFFFF, as a pipe writer does
    at = payload.index(b"data") + 4
    streamed.write_bytes(payload[:at] + b"\xff\xff\xff\xff" + payload[at + 4:])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emb, ts = embed_audio_file(streamed, tiny_audio_model)
    assert len(ts) == len(embed_audio_file(whole, tiny_audio_model)[1])


def test_soxr_resampler_is_close_to_default(tiny_audio_model):
    signal = _tone(2, 44100, 1000)
    exact, _ = openl3lite.get_audio_embedding(signal, 44100, model=tiny_audio_model, verbose=False)
    fast, _ = openl3lite.get_audio_embedding(signal, 44100, model=tiny_audio_model,
                                             resampler="soxr_hq", verbose=False)
    assert exact.shape == fast.shape
    cosine = np.sum(exact * fast, 1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(fast, axis=1)
    assert cosine.min() > 0.99


def test_unreadable_audio_file_names_the_file(tmp_path, tiny_audio_model):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00not really a wav file")
    with pytest.raises(openl3lite.OpenL3liteError, match="broken.wav"):
        openl3lite.process_audio_file(bad, model=tiny_audio_model, verbose=False)
    assert not list(tmp_path.glob("*.npz"))
    with pytest.raises(openl3lite.OpenL3liteError, match="not found"):
        openl3lite.process_audio_file(tmp_path / "missing.wav", model=tiny_audio_model)


def test_process_audio_file_skips_existing_unless_overwrite(tmp_path, tiny_audio_model):
    path = tmp_path / "a.wav"
    sf.write(path, _tone(1.5, 16000), 16000)
    out = openl3lite.process_audio_file(path, output_dir=tmp_path / "out", suffix="v1",
                                        model=tiny_audio_model, verbose=False)
    assert out.endswith("a_v1.npz")
    data = np.load(out)
    assert data["embedding"].shape[1] == 512 and data["timestamps"].ndim == 1
    with open(out, "wb") as f:
        f.write(b"keep me")
    openl3lite.process_audio_file(path, output_dir=tmp_path / "out", suffix="v1",
                                  model=tiny_audio_model, verbose=False)
    assert open(out, "rb").read() == b"keep me"
    openl3lite.process_audio_file(path, output_dir=tmp_path / "out", suffix="v1",
                                  model=tiny_audio_model, overwrite=True, verbose=False)
    assert np.load(out)["embedding"].shape[1] == 512


@pytest.mark.parametrize("image, message", [
    (np.zeros((100, 300, 3), np.uint8), "at least 224x224"),
    (np.zeros((224, 224, 5), np.uint8), "channels"),
    (np.zeros((2, 2, 224, 224, 3)), "shape"),
    (np.full((224, 224, 3), np.nan), "NaN"),
])
def test_bad_images(image, message, tiny_image_model):
    with pytest.raises(openl3lite.OpenL3liteError, match=message):
        openl3lite.get_image_embedding(image, model=tiny_image_model, verbose=False)


def test_grey_and_rgba_images_are_converted(tiny_image_model, tmp_path):
    from PIL import Image

    from openl3lite.image import read_image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (240, 300, 3), dtype=np.uint8)
    grey = rgb[..., 0]
    rgba = np.concatenate([rgb, np.full((240, 300, 1), 255, np.uint8)], -1)
    emb_rgb = openl3lite.get_image_embedding(rgb, model=tiny_image_model, verbose=False)
    emb_rgba = openl3lite.get_image_embedding(rgba, model=tiny_image_model, verbose=False)
    np.testing.assert_allclose(emb_rgb, emb_rgba, atol=1e-6)
    emb_grey = openl3lite.get_image_embedding(grey, model=tiny_image_model, verbose=False)
    as_rgb = np.repeat(grey[..., np.newaxis], 3, -1)
    np.testing.assert_allclose(
        emb_grey, openl3lite.get_image_embedding(as_rgb, model=tiny_image_model, verbose=False),
        atol=1e-6)
    # a grey PNG with an alpha channel reads as (H, W, 2): its alpha is dropped too
    alpha = rng.integers(0, 255, grey.shape, dtype=np.uint8)
    Image.fromarray(np.stack([grey, alpha], -1)).save(tmp_path / "grey_alpha.png")
    grey_alpha = read_image(tmp_path / "grey_alpha.png")
    assert grey_alpha.shape == (240, 300, 2)
    np.testing.assert_allclose(
        openl3lite.get_image_embedding(grey_alpha, model=tiny_image_model, verbose=False),
        emb_grey, atol=1e-6)


def test_symmetric_scaling_is_consistent_across_sizes():
    """Our models' scaling maps the same picture to the same input whatever its pixel size."""
    from openl3lite import image

    y, x = np.mgrid[0:256, 0:256] / 256.0
    small = (255 * np.stack([x, y, 0.5 + 0.5 * np.sin(6 * x + 3 * y)], -1)).astype(np.uint8)
    big = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
    a = image.preprocess_images(image.as_image_batch(small), "symmetric")
    b = image.preprocess_images(image.as_image_batch(big), "symmetric")
    assert a.min() >= -1 and a.max() <= 1
    assert np.abs(a - b).mean() < 0.02


def test_default_model_not_downloaded_offline_is_a_clear_error(monkeypatch, tmp_path):
    """No model given: OpenL3's weights for the requested representation. Offline with an
    empty cache, the error names the file, where to get it and how to install it, and nothing
    is written to the cache."""
    from openl3lite import models

    monkeypatch.setenv("OPENL3LITE_HOME", str(tmp_path))
    monkeypatch.setenv("OPENL3LITE_OFFLINE", "1")
    models._shared_audio_model.cache_clear()
    try:
        with pytest.raises(openl3lite.OpenL3liteError) as info:
            openl3lite.get_audio_embedding(_tone(1, 16000), 16000, input_repr="linear",
                                           content_type="env", verbose=False)
    finally:
        models._shared_audio_model.cache_clear()
    message = str(info.value)
    assert "openl3_audio_linear_env-v0_4_0.h5.gz" in message
    assert "https://github.com/marl/openl3/raw/models/openl3_audio_linear_env" in message
    assert "l3embed download openl3-linear-env --from" in message
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_several_models_do_not_trigger_tensorflow_retracing_warnings():
    """TensorFlow counts every Keras model's predict traces together and warns of "retracing"
    once a process has traced about five; embedding with several models (each traced for a full
    and a shorter last batch) must not print that false alarm. Other TensorFlow log records
    still pass, and the filter is gone after each call."""
    import logging

    pytest.importorskip("tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the retracing warning is TensorFlow's")
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("tensorflow")
    handler = Keep()
    logger.addHandler(handler)
    try:
        images = np.random.default_rng(0).uniform(0, 1, (3, 224, 224, 3))
        for seed in range(4):
            model = openl3lite.random_image_model(512, width=0.0625, seed=seed)
            for n in (3, 1):
                openl3lite.get_image_embedding(images[:n], model=model, batch_size=2,
                                               verbose=False)
        logger.warning("a record of its own")
    finally:
        logger.removeHandler(handler)
    assert records == ["a record of its own"]
    assert not logger.filters


@pytest.mark.parametrize("kind", ["audio", "image", "video"])
@pytest.mark.parametrize("problem, message", [
    ("empty", "empty file \\(0 bytes\\)"), ("folder", "is a folder, not a file"),
    ("missing", "file not found")])
def test_paths_that_cannot_hold_data_are_named_plainly(tmp_path, kind, problem, message,
                                                        tiny_audio_model, tiny_image_model):
    """An empty file, a folder or a missing path gets its own message naming the path (before,
    an empty file was reported with the decoder's "format not recognised" or "OSError")."""
    path = tmp_path / f"input.{ {'audio': 'wav', 'image': 'png', 'video': 'mp4'}[kind] }"
    if problem == "empty":
        path.write_bytes(b"")
    elif problem == "folder":
        path.mkdir()
    process = {
        "audio": lambda: openl3lite.process_audio_file(path, model=tiny_audio_model,
                                                       output_dir=tmp_path / "out"),
        "image": lambda: openl3lite.process_image_file(path, model=tiny_image_model,
                                                       output_dir=tmp_path / "out"),
        "video": lambda: openl3lite.process_video_file(path, audio_model=tiny_audio_model,
                                                       image_model=tiny_image_model,
                                                       output_dir=tmp_path / "out"),
    }[kind]
    with pytest.raises(openl3lite.OpenL3liteError, match=f"input.*: {message}$"):
        process()
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
