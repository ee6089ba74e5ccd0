"""The l3embed command line: inputs, outputs, skipping, atomic writes, bad files, exit codes."""

import os

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from openl3lite.cli import expand_inputs, main


@pytest.fixture(scope="module")
def model_file(tiny_model_file):
    return tiny_model_file


@pytest.fixture()
def audio_tree(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    t = np.arange(24000) / 16000
    sf.write(root / "a.wav", np.sin(2 * np.pi * 440 * t), 16000)
    sf.write(root / "sub" / "b.flac", np.sin(2 * np.pi * 660 * t), 16000)
    (root / "notes.txt").write_text("not audio")
    (root / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    return root


def test_expand_inputs(audio_tree):
    files, unmatched = expand_inputs([str(audio_tree), str(audio_tree / "a.wav"),
                                      str(audio_tree / "nothing*.wav")], (".wav", ".flac"))
    names = sorted(os.path.basename(f) for f in files)
    assert names == ["a.wav", "b.flac", "broken.wav"]  # a.wav once; notes.txt not searched
    assert unmatched == [str(audio_tree / "nothing*.wav")]


def test_audio_batch_keeps_going_and_reports(audio_tree, tmp_path, model_file):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["audio", str(audio_tree), "-o", str(out), "--model",
                                       model_file, "-as", "512", "-t", "0.5", "-q"])
    assert result.exit_code == 1, result.output
    assert "broken.wav" in result.output and "2 processed, 0 skipped" in result.output
    a = np.load(out / "a.npz")
    assert a["embedding"].shape == (3, 512) and a["timestamps"].tolist() == [0, 0.5, 1.0]
    assert (out / "b.npz").exists() and not (out / "broken.npz").exists()
    assert not [f for f in os.listdir(out) if f.startswith(".tmp")]


def test_warnings_about_an_input_are_one_line_naming_it(tmp_path, model_file):
    short = tmp_path / "short.wav"
    sf.write(short, 0.1 * np.ones(4000), 16000)  # 0.25 s: padded to one window
    black = tmp_path / "black.png"
    from PIL import Image

    Image.fromarray(np.zeros((240, 240, 3), np.uint8)).save(black)
    for command, path in (("audio", short), ("image", black)):
        result = CliRunner().invoke(main, [command, str(path), "-o", str(tmp_path / "out"),
                                           "--model", model_file, "-q"])
        assert result.exit_code == 0, result.output
        lines = [line for line in result.output.splitlines() if "warning" in line.lower()]
        assert len(lines) == 1 and lines[0].startswith(f"warning: {path}: "), result.output
        assert "OpenL3liteWarning" not in result.output and "cli.py" not in result.output
    assert "shorter than window size" in CliRunner().invoke(
        main, ["audio", str(short), "-o", str(tmp_path / "again"), "--model", model_file,
               "-q"]).output


def test_skip_existing_and_overwrite(audio_tree, tmp_path, model_file):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_x.npz").write_bytes(b"precious")
    args = ["audio", str(audio_tree / "a.wav"), "-o", str(out), "-x", "x", "--model", model_file,
            "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and "0 processed, 1 skipped" in result.output
    assert (out / "a_x.npz").read_bytes() == b"precious"
    result = CliRunner().invoke(main, args + ["--overwrite"])
    assert result.exit_code == 0 and np.load(out / "a_x.npz")["embedding"].shape[1] == 6144


def test_output_name_collision_is_refused(tmp_path, model_file):
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        sf.write(tmp_path / folder / "same.wav", np.ones(16000) * 0.1, 16000)
    result = CliRunner().invoke(main, ["audio", str(tmp_path / "one" / "same.wav"),
                                       str(tmp_path / "two" / "same.wav"), "-o",
                                       str(tmp_path / "out"), "--model", model_file, "-q"])
    assert result.exit_code == 1 and "would overwrite" in result.output


def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    from openl3lite import output

    def failing_savez(f, **arrays):
        f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(KeyboardInterrupt):
        output.write_npz_atomic(tmp_path / "x.npz", embedding=np.zeros(3))
    assert os.listdir(tmp_path) == []


def test_image_and_bad_options(tmp_path, model_file):
    from PIL import Image

    Image.fromarray(np.full((260, 300, 3), 120, np.uint8)).save(tmp_path / "pic.png")
    Image.fromarray(np.full((100, 100, 3), 120, np.uint8)).save(tmp_path / "small.png")
    result = CliRunner().invoke(main, ["image", str(tmp_path), "--model", model_file, "-is",
                                       "512", "-q"])
    assert result.exit_code == 1 and "224x224" in result.output
    assert np.load(tmp_path / "pic.npz")["embedding"].shape == (1, 512)
    result = CliRunner().invoke(main, ["audio", str(tmp_path), "-t", "-1"])
    assert result.exit_code == 2 and "--audio-hop-size" in result.output
    result = CliRunner().invoke(main, ["audio", "x.wav", "-i", "mel64"])
    assert result.exit_code == 2


def test_python_m_openl3lite_runs_the_cli():
    """``python -m openl3lite`` is ``l3embed`` (for environments whose scripts are not on PATH)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "openl3lite", "models"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "openl3-mel256-music (default)" in done.stdout
    usage = subprocess.run([sys.executable, "-m", "openl3lite", "audio"], capture_output=True,
                           text=True, timeout=120)
    assert usage.returncode == 2 and "Usage: l3embed audio" in usage.stderr


@pytest.mark.parametrize("ci, code, message", [("true", 4, "shared reference data is missing"),
                                               ("", 0, "1 skipped")])
def test_missing_shared_data_is_an_error_in_ci(tmp_path, ci, code, message):
    """With CI set, a checkout without ../shared fails at once instead of skipping the ~240
    tests that need it; elsewhere those tests skip with the reason."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    tests = tmp_path / "checkout" / "tests"
    tests.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("conftest.py"), tests)
    (tests / "test_needs_shared.py").write_text(
        "from conftest import FSDD, require\n\n"
        "def test_needs_shared():\n    require(FSDD)\n")
    env = dict(os.environ, CI=ci)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(tests)], cwd=tests.parent, env=env, capture_output=True,
                          text=True, check=False, timeout=300)
    assert done.returncode == code, done.stdout + done.stderr
    assert message in done.stdout + done.stderr
