"""Named models: the shipped demonstration model (registry, checksums, model card) and OpenL3's
weights as the default when no model is given (the API's ``model=None``, the CLI without ``--model``)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import openl3lite
from openl3lite import registry, weights

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "data"


def test_registry_entries_exist_match_their_checksums_and_have_cards():
    shipped = registry.load_shipped_registry()
    assert shipped["default"] in shipped["models"]
    for name, entry in shipped["models"].items():
        path = REPO / "models" / entry["file"]
        assert weights.sha256_of(path) == entry["sha256"], name
        card = (REPO / "models" / entry["card"]).read_text()
        assert name in card and "CC BY-SA 4.0" in card
        metadata = weights.read_model_metadata(str(path))
        assert metadata.name == name and metadata.input_repr == entry["input_repr"]
        assert metadata.image_scaling == "symmetric"
        assert f"width {metadata.width:g}" in card.replace("width multiplier", "width")
        # the registry's parameters are the file's own
        listed = registry.get_model(name)
        assert (listed.width, listed.image_scaling) == (metadata.width, metadata.image_scaling)
        _, parts = weights.read_model_file(str(path))
        assert listed.fusion_head == set(weights.AVC_PARTS).issubset(parts)
        assert listed.parameters_text().startswith(f"{metadata.input_repr}, width "
                                                   f"{metadata.width:g}, audio 6144 or 512-D")
    for entry in registry.all_models():
        if entry.kind == "openl3":
            assert (entry.width, entry.image_scaling, entry.fusion_head) == (1.0, "openl3", False)
    names = openl3lite.list_models()
    assert names[0] == shipped["default"]
    assert [n for n in names if n.startswith("openl3-")] == [
        f"openl3-{r}-{c}" for r in ("linear", "mel128", "mel256") for c in ("music", "env")]


def test_default_model_is_openl3s_weights(fixtures_dir):
    """No model: OpenL3's weights for mel256 / music (here the suite's cache holds the fixtures'
    random weights under OpenL3's names), giving exactly what the same file loaded explicitly
    gives, and OpenL3's own recorded output."""
    audio, sr = sf.read(fixtures_dir / "inputs" / "audio" / "chirp_44k.wav")
    default, ts = openl3lite.get_audio_embedding(audio, sr, embedding_size=512, verbose=False)
    explicit = openl3lite.load_audio_embedding_model_from_path(
        fixtures_dir / "openl3_audio_random.h5", "mel256", 512)
    expected, expected_ts = openl3lite.get_audio_embedding(audio, sr, model=explicit,
                                                           verbose=False)
    np.testing.assert_array_equal(default, expected)
    np.testing.assert_array_equal(ts, expected_ts)
    model = openl3lite.models.load_audio_embedding_model()
    assert model.metadata.name == "openl3-mel256-music" and model.input_repr == "mel256"
    assert model.metadata.sha256 == weights.sha256_of(fixtures_dir / "openl3_audio_random.h5")
    image = np.asarray(Image.open(EXAMPLES / "avdigits_frame.png").convert("RGB"))
    explicit_image = openl3lite.load_image_embedding_model_from_path(
        fixtures_dir / "openl3_image_random.h5", 512)
    np.testing.assert_array_equal(
        openl3lite.get_image_embedding(image, embedding_size=512, verbose=False),
        openl3lite.get_image_embedding(image, model=explicit_image, verbose=False))


def test_demonstration_model_by_name_is_the_shipped_file():
    audio, sr = sf.read(EXAMPLES / "theo_314159.wav")
    name = registry.demonstration_model_name()
    by_name, _ = openl3lite.get_audio_embedding(audio, sr, model=name, embedding_size=512,
                                                verbose=False)
    path = REPO / "models" / registry.load_shipped_registry()["models"][name]["file"]
    explicit = openl3lite.load_audio_embedding_model_from_path(path, None, 512)
    expected, _ = openl3lite.get_audio_embedding(audio, sr, model=explicit, verbose=False)
    np.testing.assert_array_equal(by_name, expected)
    assert explicit.metadata.name == name and explicit.input_repr == "mel128"


def test_tampered_release_fails_its_checksum(tmp_path, monkeypatch):
    shipped = registry.load_shipped_registry()
    entry = shipped["models"][shipped["default"]]
    shutil.copy(REPO / "models" / "registry.json", tmp_path / "registry.json")
    data = bytearray((REPO / "models" / entry["file"]).read_bytes())
    data[-100] ^= 0xFF
    (tmp_path / entry["file"]).write_bytes(bytes(data))
    monkeypatch.setattr(registry, "shipped_dir", lambda: tmp_path)
    registry._checked_shipped_file.cache_clear()
    try:
        with pytest.raises(openl3lite.OpenL3liteError, match="sha256"):
            registry.part_file(shipped["default"], "audio")
    finally:
        registry._checked_shipped_file.cache_clear()


@pytest.mark.parametrize("user_level", [None, "", "3"])
def test_cli_uses_the_default_model(tmp_path, user_level, fixtures_dir):
    """No --model: OpenL3's weights (here the fixtures' random ones under OpenL3's names),
    the same embeddings as the file given explicitly. A quiet run prints only its warnings
    about inputs on standard error: no TensorFlow start-up lines (written from C++ before
    TF_CPP_MIN_LOG_LEVEL applies), whether the user left TF_CPP_MIN_LOG_LEVEL unset (or empty)
    or set it to 3 to quieten TensorFlow."""
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if user_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = user_level
    proc = subprocess.run([sys.executable, str(REPO / "cli.py"), "audio", str(EXAMPLES), "-o",
                           str(out), "-as", "512", "-q"], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert all(line.startswith("warning: ") for line in lines), lines
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(p.stem + ".npz" for p in EXAMPLES.glob("*.wav"))
    if user_level is None:
        explicit = openl3lite.load_audio_embedding_model_from_path(
            fixtures_dir / "openl3_audio_random.h5", "mel256", 512)
        audio, sr = sf.read(EXAMPLES / "theo_271828.wav")
        expected, _ = openl3lite.get_audio_embedding(audio, sr, model=explicit, verbose=False)
        with np.load(out / "theo_271828.npz") as data:
            np.testing.assert_allclose(data["embedding"], expected, rtol=1e-5, atol=1e-5)
            assert str(data["model"]) == "openl3-mel256-music"


def test_python_api_leaves_out_tensorflows_error_level_start_up_lines():
    """Imported without the CLI, openl3lite sets TF_CPP_MIN_LOG_LEVEL to 3 if the user did not:
    on a machine without a GPU TensorFlow would otherwise log "E ... failed call to cuInit",
    which reads like a failure. A level the user set is kept."""
    code = ("import os, numpy as np, openl3lite; "
            "print(os.environ['TF_CPP_MIN_LOG_LEVEL']); "
            "e, t = openl3lite.get_audio_embedding(np.zeros(16000) + 0.1, 16000, "
            "embedding_size=512, verbose=False); print(e.shape)")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["3", "(6,", "512)"]
    assert not [line for line in proc.stderr.splitlines() if line.startswith("E0000")], \
        proc.stderr
    proc = subprocess.run([sys.executable, "-c", "import os, openl3lite; "
                           "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"],
                          capture_output=True, text=True, timeout=600, cwd=REPO,
                          env=dict(env, TF_CPP_MIN_LOG_LEVEL="1"))
    assert proc.stdout.strip() == "1"


@pytest.mark.parametrize("user_level, shown", [(None, False), ("3", False), ("2", False),
                                                (" 1", True), ("0", True), ("yes", False)])
def test_tensorflow_messages_are_shown_only_when_asked_for(user_level, shown):
    from openl3lite.cli import wants_tensorflow_messages

    assert wants_tensorflow_messages(user_level) is shown
