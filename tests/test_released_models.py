"""The released weights in ``models/``: registry, checksums, model cards, and that ``model=None``
(the API) and no ``--model`` (the CLI) use them."""

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
from openl3lite import weights

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "data"


def test_registry_entries_exist_match_their_checksums_and_have_cards():
    registry = weights.load_registry()
    assert registry["default"] in registry["models"]
    for name, entry in registry["models"].items():
        path = REPO / "models" / entry["file"]
        assert weights.sha256_of(path) == entry["sha256"], name
        card = (REPO / "models" / entry["card"]).read_text()
        assert name in card and "CC BY-SA 4.0" in card
        metadata = weights.read_model_metadata(str(path))
        assert metadata.name == name
        assert metadata.image_scaling == "symmetric"
        assert f"width {metadata.width:g}" in card.replace("width multiplier", "width")
    assert openl3lite.list_models()[0] == registry["default"]


def test_default_model_embeds_real_audio_and_images():
    audio, sr = sf.read(EXAMPLES / "3_theo_7.wav")
    emb, ts = openl3lite.get_audio_embedding(audio, sr, verbose=False)
    assert emb.shape == (len(ts), 6144) and emb.dtype == np.float32
    assert np.all(np.isfinite(emb)) and emb.std() > 0
    emb512, ts512 = openl3lite.get_audio_embedding(audio, sr, embedding_size=512, verbose=False)
    np.testing.assert_array_equal(ts, ts512)
    assert emb512.shape == (len(ts), 512)
    image = np.asarray(Image.open(EXAMPLES / "avdigits_frame.png").convert("RGB"))
    image_emb = openl3lite.get_image_embedding(image, verbose=False)
    assert image_emb.shape == (1, 8192) and np.all(np.isfinite(image_emb))


def test_tampered_release_fails_its_checksum(tmp_path, monkeypatch):
    registry = weights.load_registry()
    entry = registry["models"][registry["default"]]
    shutil.copy(REPO / "models" / "registry.json", tmp_path / "registry.json")
    data = bytearray((REPO / "models" / entry["file"]).read_bytes())
    data[-100] ^= 0xFF
    (tmp_path / entry["file"]).write_bytes(bytes(data))
    monkeypatch.setattr(weights, "_registry_dir", lambda: tmp_path)
    with pytest.raises(openl3lite.OpenL3liteError, match="sha256"):
        weights.released_model_path()


@pytest.mark.parametrize("user_level", [None, "", "3"])
def test_cli_uses_the_default_model(tmp_path, user_level):
    """... and a quiet run prints only its warnings about inputs on standard error: no
    TensorFlow start-up lines (written from C++ before TF_CPP_MIN_LOG_LEVEL applies), whether
    the user left TF_CPP_MIN_LOG_LEVEL unset (or empty) or set it to 3 to quieten TensorFlow."""
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if user_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = user_level
    proc = subprocess.run([sys.executable, str(REPO / "cli.py"), "audio", str(EXAMPLES), "-o",
                           str(out), "-as", "512", "-q"], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert lines and all(line.startswith("warning: ") for line in lines), lines  # short clips
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(p.stem + ".npz" for p in EXAMPLES.glob("*.wav"))
    with np.load(out / "0_theo_25.npz") as data:
        assert data["embedding"].shape[1] == 512
        assert len(data["timestamps"]) == len(data["embedding"])


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
