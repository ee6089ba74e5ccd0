"""The tutorial's example scripts (examples/*.py), run on small real inputs: a generated
audio-visual digits corpus, the bundled example files, FSDD clips and OpenL3's reference data.

The scripts' ``main(argv)`` is called in this process (one TensorFlow start-up for all); one
test runs each script as a program to check its command line.
"""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURES, FSDD, REPO, require

EXAMPLES = REPO / "examples"
DATA = EXAMPLES / "data"
SCRIPTS = ("embed_folder", "embed_video", "load_openl3_weights", "train_tiny", "evaluate_tiny",
           "localize_video", "avdigits/avc_ceiling")


def _script(name):
    spec = importlib.util.spec_from_file_location(f"example_{name.replace('/', '_')}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two avdigits videos (one per speaker, three utterances each, 128 px)."""
    spec = importlib.util.spec_from_file_location("make_avdigits",
                                                  EXAMPLES / "avdigits" / "make_avdigits.py")
    mk = importlib.util.module_from_spec(spec)
    sys.modules["make_avdigits"] = mk
    spec.loader.exec_module(mk)
    out = tmp_path_factory.mktemp("videos")
    assert mk.main(["--fsdd", str(require(FSDD)), "-o", str(out), "--speakers", "george",
                    "theo", "--videos-per-speaker", "1", "--utterances-per-video", "3",
                    "--size", "128", "--workers", "1", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def trained(videos, tmp_path_factory):
    """train_tiny.py: prepare, 2 training steps at width 0.0625, export."""
    work = tmp_path_factory.mktemp("work")
    assert _script("train_tiny").main([str(videos), "-o", str(work), "--steps", "2",
                                       "--width", "0.0625", "--batch-size", "4"]) == 0
    return work


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_run_as_programs(name):
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "usage:" in done.stdout
    bad = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py")], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "required" in bad.stderr


def test_train_tiny_writes_a_run_and_a_model_file(trained):
    from openl3lite.weights import read_model_file

    assert (trained / "dataset" / "manifest.json").is_file()
    assert (trained / "run" / "metrics.csv").is_file()
    metadata, parts = read_model_file(trained / "model.h5")
    assert set(parts) == {"audio", "image", "audio_pool4", "image_pool4", "fusion"}
    assert metadata.width == 0.0625 and metadata.extra["training_steps"] == 2


def test_embed_folder(trained, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("theo_271828.wav", "theo_314159.wav"):
        (inputs / name).write_bytes((DATA / name).read_bytes())
    (inputs / "broken.wav").write_bytes(b"RIFF not really")
    out = tmp_path / "out"
    status = _script("embed_folder").main([str(inputs), str(DATA / "yweweler_141421.wav"), "-o",
                                           str(out), "--model", str(trained / "model.h5"),
                                           "--hop-size", "0.5"])
    assert status == 1 and "broken.wav" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["theo_271828.npz", "theo_314159.npz", "yweweler_141421.npz"]
    import soundfile as sf

    from openl3lite.framing import count_windows

    info = sf.info(str(DATA / "theo_271828.wav"))
    with np.load(out / "theo_271828.npz") as data:
        n = count_windows(info.frames * 48000 // info.samplerate, 0.5)
        assert data["embedding"].shape == (n, 512)
        np.testing.assert_allclose(data["timestamps"], 0.5 * np.arange(n))
        assert np.all(np.isfinite(data["embedding"]))


def test_embed_video(trained, tmp_path, capsys):
    assert _script("embed_video").main([str(DATA / "avdigits_theo_001.mp4"), "-o",
                                        str(tmp_path), "--model", str(trained / "model.h5"),
                                        "--hop-size", "0.5"]) == 0
    with np.load(tmp_path / "avdigits_theo_001_audio.npz") as audio, \
            np.load(tmp_path / "avdigits_theo_001_image.npz") as image:
        assert audio["embedding"].shape[1] == 512 and image["embedding"].shape[1] == 512
        assert np.allclose(np.diff(audio["timestamps"]), 0.5)
        assert abs(audio["timestamps"][-1] - image["timestamps"][-1]) < 0.6
    assert "frames x 512" in capsys.readouterr().out
    assert _script("embed_video").main([str(tmp_path / "missing.mp4"), "-o", str(tmp_path),
                                        "--model", str(trained / "model.h5")]) == 1


def test_load_openl3_weights_reproduces_openl3(capsys):
    weights = require(FIXTURES / "openl3_audio_random.h5")
    chirp = FIXTURES / "inputs" / "audio" / "chirp_44k.wav"
    assert _script("load_openl3_weights").main([str(weights), str(chirp)]) == 0
    printed = capsys.readouterr().out
    assert "embedding (4, 6144)" in printed and "[0.0, 0.5, 1.0, 1.5]" in printed
    first = [float(v) for v in printed.split("first values: [")[1].split("]")[0].split(",")]
    with np.load(FIXTURES / "audio_mel256_kapre.npz") as ref:
        expected = ref["chirp_44k__center1__hop0.5__emb6144__embedding"][0, :4]
    np.testing.assert_allclose(first, expected, atol=0.1)  # kapre-frontend tolerance (README)


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    """FSDD clips of digits 0 and 1 by two speakers, folder per label."""
    root = tmp_path_factory.mktemp("labels")
    for digit in ("0", "1"):
        (root / digit).mkdir()
        for speaker in ("george", "theo"):
            for index in range(3):
                name = f"{digit}_{speaker}_{index}.wav"
                os.symlink(require(FSDD / "recordings" / name), root / digit / name)
    return root


def test_evaluate_tiny(trained, labels, tmp_path, capsys):
    out = tmp_path / "report"
    assert _script("evaluate_tiny").main([str(labels), "-o", str(out), "--model",
                                          str(trained / "model.h5"),
                                          "--test-fraction", "0.5"]) == 0
    report = (out / "report.md").read_text()
    assert "| tiny |" in report and "| random weights |" in report
    assert "| log-mel statistics |" in report
    for png in ("confusion_tiny.png", "confusion_random_weights.png", "embedding_map.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "embedding_map.png" in capsys.readouterr().out


def test_evaluate_command_plots_and_confusion_matrices(trained, labels, tmp_path):
    from click.testing import CliRunner

    from openl3lite.cli import main

    args = ["evaluate", str(labels), "--model", str(trained / "model.h5"), "--test-fraction",
            "0.5", "--no-logmel-baseline", "-q", "--plot"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and "--plot needs --output-dir" in refused.output
    result = CliRunner().invoke(main, args + ["-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "confusion_random_weights_width_0_0625_.png", "confusion_tiny.png", "embedding_map.png"]
    from PIL import Image

    with Image.open(tmp_path / "embedding_map.png") as figure:
        assert figure.size[0] == 2 * 5 * 110  # two maps side by side: trained and random


def test_localize_video(trained, videos, tmp_path, capsys):
    assert _script("localize_video").main([str(videos / "theo_000.mp4"), "-o", str(tmp_path),
                                           "--model", str(trained / "model.h5"),
                                           "--fps", "2"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("t = ")]
    assert len(lines) == 4 and "p(corresponds)" in lines[0]
    with np.load(tmp_path / "theo_000_localize.npz") as data:
        assert data["image_logit"].shape == (4, 32, 32)
    assert len(list((tmp_path / "theo_000_localize").glob("*_image.png"))) == 4
    assert _script("localize_video").main([str(videos / "theo_000.mp4"), "-o", str(tmp_path),
                                           "--model", str(require(FIXTURES /
                                                                  "openl3_audio_random.h5"))]) == 1


def test_supervised_check_labels_and_runs(videos, trained, tmp_path, capsys):
    """examples/avdigits/supervised_check.py: labels from the sidecars, a short labelled run."""
    import json

    check = _script("avdigits/supervised_check")
    for sidecar_path in sorted(videos.glob("*_*.json")):
        sidecar = json.loads(sidecar_path.read_text())
        assert check.read_sidecar(str(sidecar_path.with_suffix(".mp4"))) == sidecar
        for seg in sidecar["segments"]:
            middle = (seg["shown_start"] + seg["shown_end"]) / 2
            assert check.frame_digit(sidecar, middle) == seg["digit"]
            assert check.clip_digit(sidecar, seg["start"], seg["end"] - seg["start"]) \
                == seg["digit"]
        assert check.frame_digit(sidecar, sidecar["duration"] + 5) == -1
        assert check.clip_digit(sidecar, sidecar["duration"] + 5) == -1
    batches = check.LabelledBatches(str(trained / "dataset"), "audio", 4, seed=1)
    clips, labels = batches.batch(0)
    assert clips.shape == (4, 48000) and labels.shape == (4,)
    assert set(labels) <= set(range(10))
    out = tmp_path / "check.json"
    assert check.main([str(trained / "dataset"), "--modality", "image", "--steps", "2",
                       "--every", "1", "--batch-size", "4", "--width", "0.0625",
                       "--heldout", str(trained / "dataset"), "-o", str(out)]) == 0
    history = json.loads(out.read_text())["history"]
    assert [row["step"] for row in history] == [1, 2]
    assert all(0 <= row["train_accuracy"] <= 1 and 0 <= row["heldout_accuracy"] <= 1
               for row in history)
    assert "train_accuracy" in capsys.readouterr().out
    with pytest.raises(Exception, match="no readable AV digits sidecar"):
        check.read_sidecar(str(tmp_path / "nowhere.mp4"))


def test_avc_ceiling_heard_digits_and_oracle(trained, tmp_path, capsys):
    """examples/avdigits/avc_ceiling.py: which digits a clip says, and the digit oracle on the
    evaluate-avc pairs of a prepared corpus."""
    import json

    ceiling = _script("avdigits/avc_ceiling")
    sidecar = {"segments": [{"digit": 3, "start": 0.5, "end": 0.9},
                            {"digit": 7, "start": 1.4, "end": 1.8}]}
    assert ceiling.heard_digits(sidecar, 0.0) == {3}
    assert ceiling.heard_digits(sidecar, 0.8) == {3, 7}
    assert ceiling.heard_digits(sidecar, 0.8, min_overlap_s=0.2) == {7}
    assert ceiling.heard_digits(sidecar, 0.86, min_overlap_s=0.05) == {7}  # 0.04 s of the 3
    assert ceiling.heard_digits(sidecar, 1.81) == set()

    dataset = str(trained / "dataset")
    result = ceiling.oracle_accuracy(dataset, n_pairs=256, batch_size=64, seed=3)
    assert result["n_pairs"] == 256
    # Corresponding clips overlap their frame's time, so they nearly always say its digit; a
    # clip drawn anywhere in the video would miss it far more often (0.69 on this corpus).
    assert result["positive_accuracy"] > 0.85
    assert result["accuracy"] == pytest.approx(
        (result["positive_accuracy"] + result["negative_accuracy"]) / 2, abs=0.05)
    deaf = ceiling.oracle_accuracy(dataset, n_pairs=128, seed=3, min_overlap_s=5.0)
    assert deaf["positive_accuracy"] == 0.0 and deaf["negative_accuracy"] == 1.0

    out = tmp_path / "ceiling.json"
    assert ceiling.main([dataset, "--pairs", "64", "-o", str(out)]) == 0
    assert "digit oracle AVC accuracy" in capsys.readouterr().out
    assert json.loads(out.read_text())["result"]["n_pairs"] == 64
    assert ceiling.main([str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_readme_main_job_shows_no_warning(tmp_path):
    """The README's main job (l3embed on examples/data, then examples/embed_examples.py): the
    bundled clips are longer than one window, so it runs without a warning or any third-party
    line on standard error."""
    import soundfile as sf

    clips = sorted(DATA.glob("*.wav"))
    assert len(clips) == 3 and all(sf.info(str(c)).duration > 3.0 for c in clips)  # seconds
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    embed = subprocess.run([sys.executable, "-m", "openl3lite", "audio", str(DATA), "--model",
                            "avdigits-mel128-w0125", "--output-dir", str(tmp_path), "-q"],
                           capture_output=True, text=True, timeout=600, env=env, check=False)
    assert embed.returncode == 0 and embed.stderr == "", embed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [c.stem + ".npz" for c in clips]
    script = subprocess.run([sys.executable, str(EXAMPLES / "embed_examples.py")],
                            capture_output=True, text=True, timeout=600, env=env, check=False)
    assert script.returncode == 0 and script.stderr == "", script.stderr
    assert "theo_314159.wav: 15 windows x 512 dims" in script.stdout
