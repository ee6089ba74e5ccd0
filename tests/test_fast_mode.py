"""Fast mode (openl3lite.fast): same windows and timestamps as exact mode, embeddings close to
exact mode's on real speech, independent of how the signal is split, and validated options.

Speed is measured by benchmarks/fast_mode.py, not here.
"""

import warnings

import numpy as np
import pytest

from conftest import FSDD, require


@pytest.fixture(scope="module")
def small_model():
    from openl3lite.models import random_audio_model

    return random_audio_model("mel256", 6144, width=0.125, seed=0)


@pytest.fixture(scope="module")
def speech():
    """About 3 s of FSDD speech (three speakers), 8 kHz."""
    import soundfile as sf

    folder = require(FSDD / "recordings")
    parts = [sf.read(folder / name)[0] for name in
             ("3_george_0.wav", "7_jackson_1.wav", "1_theo_2.wav", "9_lucas_3.wav",
              "5_nicolas_4.wav", "0_yweweler_5.wav")]
    return np.concatenate(parts), 8000


def _cosines(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("seconds, hop, center", [(0.3, 0.1, True), (2.37, 0.1, True),
                                                  (2.37, 0.25, False), (3.0, 1.0, True)])
def test_same_windows_and_timestamps_as_exact(small_model, seconds, hop, center):
    import openl3lite

    x = np.random.default_rng(0).standard_normal(int(seconds * 16000)) * 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shorter than a window
        exact, ts_exact = openl3lite.get_audio_embedding(x, 16000, model=small_model, hop_size=hop,
                                                         center=center, verbose=False)
        fast, ts_fast = openl3lite.get_audio_embedding(x, 16000, model=small_model,
                                                       hop_size=hop, center=center,
                                                       verbose=False, mode="fast")
    assert fast.shape == exact.shape and fast.dtype == np.float32
    np.testing.assert_array_equal(ts_fast, ts_exact)
    assert np.all(np.isfinite(fast))


@pytest.mark.parametrize("seconds, hop", [(0.3, 0.1), (3.0, 1.0), (4.0, 0.5)])
def test_exact_where_sharing_saves_little(small_model, seconds, hop):
    """Single-window clips and long hops gain nothing from fast mode: they are computed exactly."""
    import openl3lite
    from openl3lite import fast

    assert not fast.pays_off(int(seconds * 48000), hop, True, "mel256")
    x = np.random.default_rng(1).standard_normal(int(seconds * 16000)) * 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact, _ = openl3lite.get_audio_embedding(x, 16000, model=small_model, hop_size=hop,
                                                  verbose=False)
        fast_emb, _ = openl3lite.get_audio_embedding(x, 16000, model=small_model, hop_size=hop,
                                                     verbose=False, mode="fast")
    np.testing.assert_array_equal(fast_emb, exact)


def test_close_to_exact_on_speech(small_model, speech):
    import openl3lite

    x, sr = speech
    exact, _ = openl3lite.get_audio_embedding(x, sr, model=small_model, verbose=False)
    fast, _ = openl3lite.get_audio_embedding(x, sr, model=small_model, verbose=False,
                                             mode="fast")
    cos = _cosines(exact, fast)
    assert np.median(cos) > 0.9, np.median(cos)
    # a fast embedding is nearer its own window's exact embedding than windows 1 s away
    far = _cosines(exact[10:], fast[:-10])
    assert np.median(cos) > np.median(far)


def test_small_embedding_close_to_exact(speech):
    import openl3lite
    from openl3lite.models import random_audio_model

    model = random_audio_model("mel128", 512, width=0.125, seed=1)
    x, sr = speech
    exact, _ = openl3lite.get_audio_embedding(x, sr, model=model, hop_size=0.25, verbose=False)
    fast, _ = openl3lite.get_audio_embedding(x, sr, model=model, hop_size=0.25, verbose=False,
                                             mode="fast")
    assert fast.shape == exact.shape == (len(exact), 512)
    assert np.median(_cosines(exact, fast)) > 0.9


def test_spans_join_seamlessly(small_model, speech):
    """The trunk's spans overlap by enough context that their size does not change results."""
    from openl3lite import audio, fast

    x, sr = speech
    y = audio.resample(x, sr)
    long_spans, _ = fast.embed_fast([y], len(y), small_model, True, 0.1, span_frames=1024)
    short_spans, _ = fast.embed_fast([y], len(y), small_model, True, 0.1, span_frames=256)
    blocks = [y[i : i + 7001] for i in range(0, len(y), 7001)]  # streamed in odd blocks
    streamed, _ = fast.embed_fast(blocks, len(y), small_model, True, 0.1, span_frames=256)
    scale = np.abs(long_spans).max()
    np.testing.assert_allclose(short_spans, long_spans, atol=1e-4 * scale)
    np.testing.assert_allclose(streamed, short_spans, atol=1e-5 * scale)


def test_window_columns_and_span_layout():
    from openl3lite import fast

    # window i starts at i * 4800 samples; a column is 8 frames of 242 samples (1936)
    np.testing.assert_array_equal(fast.window_columns(4, 0.1), [0, 2, 5, 7])
    assert fast.span_layout(200, 1024, 64) == [(0, 0), (960, 8)]
    assert fast.fitted_span(10) == 256 and fast.fitted_span(100) == 1024
    assert fast.fitted_span(10_000) == fast.SPAN_FRAMES
    assert fast.pays_off(60 * 48000, 0.1, True, "mel256")
    assert fast.pays_off(60 * 48000, 0.25, True, "mel256")


@pytest.mark.parametrize("mode", ["bogus", None, 1, "FAST"])
def test_invalid_mode_is_refused(small_model, mode):
    import openl3lite
    from openl3lite import OpenL3liteError

    with pytest.raises(OpenL3liteError, match="mode"):
        openl3lite.get_audio_embedding(np.zeros(8000), 8000, model=small_model, mode=mode)
    with pytest.raises(OpenL3liteError, match="mode"):
        openl3lite.process_audio_file("missing.wav", model=small_model, mode=mode)


def test_fast_mode_needs_a_trunk():
    import keras

    import openl3lite
    from openl3lite import OpenL3liteError

    inputs = keras.Input((48000,))
    bare = keras.Model(inputs, keras.layers.Dense(4)(inputs[:, :16]))
    with pytest.raises(OpenL3liteError, match="audio_trunk"):
        openl3lite.get_audio_embedding(np.full(48000, 0.1), 48000, model=bare, mode="fast",
                                       verbose=False)


def test_cli_fast_flag(tmp_path):
    import soundfile as sf
    from click.testing import CliRunner

    from openl3lite import network
    from openl3lite.cli import main
    from openl3lite.weights import ModelMetadata, save_model_file

    model_path = str(tmp_path / "model.h5")
    save_model_file(model_path, {"audio": network.build_audio_trunk("mel128", 0.0625),
                                 "image": network.build_image_trunk(0.0625)},
                    ModelMetadata(name="tiny", input_repr="mel128", width=0.0625))
    sf.write(tmp_path / "a.wav", np.random.default_rng(0).standard_normal(24000) * 0.1, 16000)
    outputs = {}
    for flag in ([], ["--fast"]):
        out = tmp_path / ("fast" if flag else "exact")
        result = CliRunner().invoke(main, ["audio", str(tmp_path / "a.wav"), "--model",
                                           model_path, "-o", str(out), "-q"] + flag)
        assert result.exit_code == 0, result.output
        outputs[bool(flag)] = np.load(out / "a.npz")
    assert outputs[True]["embedding"].shape == outputs[False]["embedding"].shape
    np.testing.assert_array_equal(outputs[True]["timestamps"], outputs[False]["timestamps"])
