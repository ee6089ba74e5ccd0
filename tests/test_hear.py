"""openl3lite.hear, HEAR 2021's common API: OpenL3's outputs through it, agreement with
get_audio_embedding, shapes, dtypes and millisecond timestamps, numpy and TensorFlow inputs
(torch inputs: tests/test_backends.py), batches equal per-sound calls, bad input, and HEAR's
own validator (the ``hearvalidator`` package) run on the shipped model.

Memory on a 20-minute sound is measured by benchmarks/hear_memory.py, not here.
"""

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import FSDD, REPO, require

import openl3lite
from openl3lite import audio as audio_io
from openl3lite import hear

#: The shipped demonstration model: small (width 0.125), so fast on CPU.
SMALL_MODEL = "avdigits-mel128-w0125"


@pytest.fixture(scope="module")
def small():
    return hear.load_model(SMALL_MODEL)


@pytest.fixture(scope="module")
def speech():
    """Three FSDD recordings (three speakers) resampled to 48 kHz, cut to 1.3 s each: a HEAR
    batch of sounds of one length, float32."""
    folder = require(FSDD / "recordings")
    sounds = []
    for name in ("3_george_0.wav", "7_jackson_1.wav", "1_theo_2.wav"):
        samples, sr = sf.read(folder / name)
        resampled = audio_io.resample(samples, sr)
        sounds.append(np.pad(resampled, (0, max(0, 62400 - len(resampled))))[:62400])
    return np.stack(sounds).astype(np.float32)


def _reference(sound, model, hop):
    return openl3lite.get_audio_embedding(sound, openl3lite.audio.TARGET_SR, model=model,
                                          center=True, hop_size=hop, verbose=False)


def test_model_attributes(small):
    assert small.sample_rate == 48000
    assert isinstance(small.scene_embedding_size, int)
    assert isinstance(small.timestamp_embedding_size, int)
    assert small.scene_embedding_size == small.timestamp_embedding_size == 512
    assert small.embedding_model.metadata.name == SMALL_MODEL


def _require(module):
    """Import ``module``; skip without it, except in CI (the test extra installs it)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{module} is not installed (pip install -e '.[test]' installs it)")


def test_model_is_the_backends_module(small):
    """What HEAR's harness checks: a tf.Module under TensorFlow, a torch.nn.Module under
    torch."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        assert isinstance(small, tf.Module)
    elif backend == "torch":
        import torch

        assert isinstance(small, torch.nn.Module)
        assert small.embedding_model in list(small.children())
    else:
        pytest.skip(f"HEAR has no module type for the {backend} backend")


def test_timestamp_embeddings_equal_get_audio_embedding(small, speech):
    embeddings, timestamps = hear.get_timestamp_embeddings(speech, small)
    # 1.3 s centred: 1 + ceil((62400 + 24000 - 48000) / 2400) = 17 windows
    assert embeddings.shape == (3, 17, 512) and embeddings.dtype == np.float32
    assert timestamps.shape == (3, 17) and timestamps.dtype == np.float32
    np.testing.assert_array_equal(timestamps, np.tile(np.arange(17) * 50.0, (3, 1)))
    for sound, emb, ts in zip(speech, embeddings, timestamps):
        ref_emb, ref_ts = _reference(sound, small.embedding_model, 0.05)
        np.testing.assert_array_equal(ts, (ref_ts * 1000).astype(np.float32))
        np.testing.assert_allclose(emb, ref_emb, rtol=0, atol=1e-4 * np.abs(ref_emb).max())


def test_scene_embedding_is_the_mean_over_a_half_second_hop(small, speech):
    scene = hear.get_scene_embeddings(speech, small)
    assert scene.shape == (3, 512) and scene.dtype == np.float32
    for sound, emb in zip(speech, scene):
        ref_emb, _ = _reference(sound, small.embedding_model, 0.5)
        assert len(ref_emb) == 3  # windows centred on 0, 0.5 and 1.0 s
        np.testing.assert_allclose(emb, ref_emb.mean(0), rtol=0,
                                   atol=1e-4 * np.abs(ref_emb).max())


def test_openl3_outputs_through_the_hear_api(fixtures_dir):
    """OpenL3 0.4.2's own embeddings (mel256, music, 512-D: the HEAR entry's model) of two
    48 kHz sounds of one length, computed here in one HEAR batch. The suite's
    ``openl3-mel256-music`` holds the fixtures' random OpenL3 weights."""
    reference = np.load(fixtures_dir / "audio_mel256_kapre.npz")
    names = ("chirp_mono", "chirp_stereo")
    sounds = [audio_io.downmix(sf.read(fixtures_dir / "inputs" / "audio" / f"{n}.wav")[0])
              for n in names]
    assert len(sounds[0]) == len(sounds[1])
    model = hear.load_model("", timestamp_hop_size=0.5)  # the default model
    assert model.embedding_model.metadata.name == "openl3-mel256-music"
    embeddings, timestamps = hear.get_timestamp_embeddings(np.stack(sounds), model)
    scene = hear.get_scene_embeddings(np.stack(sounds).astype(np.float32), model)
    for index, name in enumerate(names):
        key = f"{name}__center1__hop0.5__emb512"
        ref_emb = reference[f"{key}__embedding"]
        expected_ms = (reference[f"{key}__timestamps"] * 1000).astype(np.float32)
        np.testing.assert_array_equal(timestamps[index], expected_ms)
        # the kapre-frontend tolerance of tests/test_openl3_fixtures.py
        np.testing.assert_allclose(embeddings[index], ref_emb, rtol=0, atol=0.15)
        np.testing.assert_allclose(scene[index], ref_emb.mean(0), rtol=0, atol=0.15)


def test_batch_equals_each_sound_alone(small, speech):
    together, _ = hear.get_timestamp_embeddings(speech, small)
    for index in range(len(speech)):
        alone, _ = hear.get_timestamp_embeddings(speech[index : index + 1], small)
        np.testing.assert_allclose(together[index], alone[0], rtol=0,
                                   atol=1e-4 * np.abs(alone).max())


def test_more_sounds_than_a_batch_holds(speech):
    """Five sounds with three windows a batch: each step takes one window of every sound and
    splits them over two network batches."""
    model = hear.load_model(SMALL_MODEL, batch_size=3, scene_hop_size=0.5)
    five = np.concatenate([speech, speech[:2] * 0.5])
    scene = hear.get_scene_embeddings(five, model)
    reference = hear.get_scene_embeddings(five, hear.load_model(SMALL_MODEL))
    np.testing.assert_allclose(scene, reference, rtol=0, atol=1e-4 * np.abs(reference).max())


def test_tensorflow_tensors_in_and_out(small, speech):
    import tensorflow as tf

    embeddings, timestamps = hear.get_timestamp_embeddings(tf.constant(speech[:2]), small)
    scene = hear.get_scene_embeddings(tf.constant(speech[:2]), small)
    assert all(isinstance(x, tf.Tensor) for x in (embeddings, timestamps, scene))
    assert embeddings.dtype == tf.float32 and timestamps.dtype == tf.float32
    assert scene.dtype == tf.float32
    expected, _ = hear.get_timestamp_embeddings(speech[:2], small)
    np.testing.assert_array_equal(embeddings.numpy(), expected)


def test_torch_tensors_in_and_out(small, speech):
    torch = _require("torch")
    embeddings, timestamps = hear.get_timestamp_embeddings(torch.from_numpy(speech[:2]), small)
    scene = hear.get_scene_embeddings(torch.from_numpy(speech[:2]), small)
    assert all(isinstance(x, torch.Tensor) for x in (embeddings, timestamps, scene))
    assert embeddings.dtype == timestamps.dtype == scene.dtype == torch.float32
    expected, _ = hear.get_timestamp_embeddings(speech[:2], small)
    np.testing.assert_array_equal(embeddings.numpy(), expected)


def test_short_and_float64_sounds(small):
    """A sound shorter than a window gets one window at t=0; float64 samples are accepted."""
    rng = np.random.default_rng(0)
    short = rng.uniform(-0.5, 0.5, (2, 4800))
    embeddings, timestamps = hear.get_timestamp_embeddings(short, small)
    assert embeddings.shape == (2, 1, 512) and embeddings.dtype == np.float32
    np.testing.assert_array_equal(timestamps, [[0.0], [0.0]])
    assert hear.get_scene_embeddings(short, small).shape == (2, 512)


@pytest.mark.parametrize("audio, message", [
    (np.zeros(48000, np.float32), "2-D"),
    (np.zeros((1, 2, 48000), np.float32), "2-D"),
    (np.zeros((2, 48000), np.int16), "floating point"),
    (np.zeros((2, 0), np.float32), "empty"),
    (np.zeros((0, 48000), np.float32), "empty"),
    (np.array([[0.0, np.nan] * 100]), "NaN"),
    ("audio.wav", "numpy array"),
])
def test_bad_audio_is_refused_plainly(small, audio, message):
    for function in (hear.get_timestamp_embeddings, hear.get_scene_embeddings):
        with pytest.raises(openl3lite.OpenL3liteError, match=message):
            function(audio, small)


def test_bad_model_arguments():
    with pytest.raises(openl3lite.OpenL3liteError, match="load_model"):
        hear.get_scene_embeddings(np.zeros((1, 48000), np.float32), object())
    with pytest.raises(openl3lite.OpenL3liteError, match="embedding_size"):
        hear.load_model(SMALL_MODEL, embedding_size=128)
    with pytest.raises(openl3lite.OpenL3liteError, match="hop_size"):
        hear.load_model(SMALL_MODEL, timestamp_hop_size=0)
    with pytest.raises(openl3lite.OpenL3liteError, match="batch_size"):
        hear.load_model(SMALL_MODEL, batch_size=0)
    with pytest.raises(openl3lite.OpenL3liteError, match="no-such-model"):
        hear.load_model("no-such-model")


def test_a_model_file_path_loads(tmp_path):
    """HEAR's ``model_file_path`` given as a file: the shipped model's own file."""
    from openl3lite import registry

    model = hear.load_model(registry.part_file(SMALL_MODEL, "audio"))
    assert model.timestamp_embedding_size == 512
    assert model.embedding_model.input_repr == "mel128"


def run_validator(backend, model=SMALL_MODEL):
    """Run HEAR's validator, ``hear-validator openl3lite.hear --model MODEL``, under a Keras
    backend; returns the completed process (output in ``stdout``)."""
    _require("hearvalidator")
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "hearvalidator.validate", "openl3lite.hear",
                           "--model", model], check=False, capture_output=True, text=True,
                          env=env,
                          timeout=600)


def test_hear_validator_passes():
    result = run_validator("tensorflow")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Received tensorflow Module" in result.stdout
    assert "Received embedding of shape: (16, 31, 512)" in result.stdout
    assert "Interval between timestamps is 50.0ms" in result.stdout
    assert result.stdout.rstrip().endswith("Looks good!")
