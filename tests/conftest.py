"""Shared fixtures: the ``../shared`` reference data and OpenL3-format models built once."""

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "openl3"
FSDD = SHARED / "data" / "fsdd"


def require(path):
    """Skip the test with a clear reason if a shared data path is missing."""
    if not Path(path).exists():
        pytest.skip(f"shared data not found at {path} (CI places ../shared beside the checkout)")
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
