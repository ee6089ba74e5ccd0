"""Shared fixtures: the ``../shared`` reference data and OpenL3-format models built once."""

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "openl3"
FSDD = SHARED / "data" / "fsdd"


def install_as_openl3_weights(home, audio_file, image_file):
    """Fill a weights cache so that every ``openl3-*`` model is "installed" with the given
    files (the fixtures' random weights in OpenL3's format): what a cache holds after
    ``l3embed download``, as :mod:`openl3lite.hub` records it."""
    from openl3lite import hub

    saved = os.environ.get("OPENL3LITE_HOME")
    os.environ["OPENL3LITE_HOME"] = str(home)
    try:
        for entry in hub.weight_files():
            hub.install_substitute(entry, audio_file if entry["modality"] == "audio"
                                   else image_file)
    finally:
        if saved is None:
            os.environ.pop("OPENL3LITE_HOME", None)
        else:
            os.environ["OPENL3LITE_HOME"] = saved


# The suite never touches the network, nor the user's weights cache: OpenL3's model names
# resolve to the fixtures' random-weight files in OpenL3's format, installed in a private cache
# (child processes inherit both variables).
TEST_HOME = Path(tempfile.mkdtemp(prefix="openl3lite-test-home-"))
atexit.register(shutil.rmtree, TEST_HOME, True)
os.environ["OPENL3LITE_HOME"] = str(TEST_HOME)
os.environ["OPENL3LITE_OFFLINE"] = "1"
if FIXTURES.exists():
    install_as_openl3_weights(TEST_HOME, FIXTURES / "openl3_audio_random.h5",
                              FIXTURES / "openl3_image_random.h5")


def in_ci():
    """Whether the suite runs in CI (``CI`` set to anything but empty, 0 or false), where the
    shared reference data must be present."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_configure(config):
    if in_ci() and not SHARED.exists():
        raise pytest.UsageError(f"CI is set but the shared reference data is missing: {SHARED} "
                                "(CI places ../shared beside the checkout)")


def require(path):
    """Skip the test with a clear reason if a shared data path is missing; in CI, fail it."""
    if not Path(path).exists():
        reason = f"shared data not found at {path} (CI places ../shared beside the checkout)"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    return Path(path)


@pytest.fixture(scope="session")
def fixtures_dir():
    return require(FIXTURES)


@pytest.fixture(scope="session")
def manifest(fixtures_dir):
    return json.loads((fixtures_dir / "manifest.json").read_text())


@pytest.fixture(scope="session")
def openl3_audio_model(fixtures_dir):
    """Factory of OpenL3-weight audio models, cached per (input_repr, size, frontend)."""
    import openl3lite

    cache = {}

    def get(input_repr, embedding_size, frontend):
        key = (input_repr, embedding_size, frontend)
        if key not in cache:
            cache[key] = openl3lite.load_audio_embedding_model_from_path(
                fixtures_dir / "openl3_audio_random.h5", input_repr, embedding_size, frontend)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def openl3_image_model(fixtures_dir):
    import openl3lite

    cache = {}

    def get(embedding_size):
        if embedding_size not in cache:
            cache[embedding_size] = openl3lite.load_image_embedding_model_from_path(
                fixtures_dir / "openl3_image_random.h5", embedding_size)
        return cache[embedding_size]

    return get


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory):
    """A small random-weight model file in our format (mel128, width 0.0625, audio and image
    parts, symmetric image scaling): fast enough for command-line tests."""
    import keras

    from openl3lite import network
    from openl3lite.weights import ModelMetadata, save_model_file

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.h5"
    save_model_file(path, {"audio": network.build_audio_trunk("mel128", 0.0625),
                           "image": network.build_image_trunk(0.0625)},
                    ModelMetadata(name="tiny", input_repr="mel128", width=0.0625,
                                  image_scaling="symmetric"))
    return str(path)


def write_test_video(path, seconds, seed, fps=5, size=(320, 240), with_audio=True):
    """Write a small H.264/AAC ``.mp4``: frames of one colour shifting a little each frame and a
    stereo tone of one pitch (colour and pitch set by ``seed``), or no audio track at all."""
    import numpy as np
    from moviepy import AudioArrayClip, ImageSequenceClip

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, 3)
    frames = [np.full((size[1], size[0], 3), (base + 20 * k) % 255, np.uint8)
              for k in range(int(seconds * fps))]
    clip = ImageSequenceClip(frames, fps=fps)
    if with_audio:
        t = np.arange(int(seconds * 16000)) / 16000
        tone = 0.3 * np.sin(2 * np.pi * (200 + 100 * seed) * t)
        clip = clip.with_audio(AudioArrayClip(np.stack([tone, tone], 1), fps=16000))
    clip = clip.with_duration(seconds)
    clip.write_videofile(str(path), fps=fps, codec="libx264",
                         audio_codec="aac" if with_audio else None, audio=with_audio,
                         preset="ultrafast", logger=None)
    clip.close()
