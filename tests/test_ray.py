"""Embedding on Ray Data: ``l3embed ... --ray`` on a local 2-worker cluster writes what the
single-process run writes, and the map_batches classes embed paths and decoded data."""

import os
import shutil

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from conftest import FSDD, REPO, require

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'openl3lite[ray]'")

from openl3lite import raydata
from openl3lite.cli import main

MODEL = "avdigits-mel128-w0125"
EXAMPLES = REPO / "examples" / "data"


@pytest.fixture(scope="module")
def cluster():
    """One local cluster of 2 CPUs for the module, started as ``--ray`` starts one (workers
    get OPENL3LITE_HOME and OPENL3LITE_OFFLINE from the test session)."""
    assert raydata.connect("local", 2, 1.0)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def audio_inputs(tmp_path_factory):
    """Real recordings (FSDD, the examples' clips and a 4-second video's sound track, read
    by ffmpeg) and four bad files."""
    recordings = require(FSDD / "recordings")
    folder = tmp_path_factory.mktemp("audio")
    for name in sorted(os.listdir(recordings))[::300]:
        shutil.copy(recordings / name, folder / name)
    for name in ("theo_271828.wav", "theo_314159.wav", "yweweler_141421.wav"):
        shutil.copy(EXAMPLES / name, folder / name)
    (folder / "garbage.wav").write_bytes(b"RIFF0000WAVEjunk")
    (folder / "empty.flac").write_bytes(b"")
    (folder / "text.ogg").write_text("not audio at all\n")
    whole = (EXAMPLES / "theo_314159.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(whole[:30])  # cut inside the header
    return [str(folder), str(EXAMPLES / "avdigits_theo_001.mp4")]


def _bad_lines(output):
    return sorted(line for line in output.splitlines() if line.startswith("error:"))


def _assert_same_outputs(expected_dir, actual_dir, names):
    for name in names:
        want, got = np.load(expected_dir / name), np.load(actual_dir / name)
        assert want.files == got.files, name
        for key in want.files:
            assert want[key].dtype == got[key].dtype and want[key].shape == got[key].shape
            assert want[key].tobytes() == got[key].tobytes(), (name, key)


def test_audio_on_ray_writes_what_one_process_writes(cluster, audio_inputs, tmp_path):
    single, on_ray = tmp_path / "single", tmp_path / "ray"
    common = ["--model", MODEL, "-t", "0.25"]
    first = CliRunner().invoke(main, ["audio", *audio_inputs, "-o", str(single), *common])
    assert first.exit_code == 1, first.output
    assert "14 processed, 0 skipped (output exists), 4 failed" in first.output
    produced = sorted(os.listdir(single))
    assert len(produced) == 14 and "avdigits_theo_001.npz" in produced
    kept = produced[0]  # an output that exists already is kept, and its input skipped
    on_ray.mkdir()
    (on_ray / kept).write_bytes(b"the user's file")
    result = CliRunner().invoke(main, ["audio", *audio_inputs, "-o", str(on_ray), *common,
                                       "--ray", "--ray-workers", "2"])
    assert result.exit_code == 1, result.output
    assert "13 processed, 1 skipped (output exists), 4 failed" in result.output, result.output
    assert _bad_lines(result.output) == _bad_lines(first.output)
    assert len(_bad_lines(result.output)) == 4
    assert (on_ray / kept).read_bytes() == b"the user's file"
    assert sorted(os.listdir(on_ray)) == produced  # nothing else, no temporary files left
    _assert_same_outputs(single, on_ray, [n for n in produced if n != kept])
    # warnings about inputs (clips shorter than a window) are reported as in one process
    skipped_input = os.path.splitext(kept)[0] + "."
    warned = sorted(line for line in result.output.splitlines() if line.startswith("warning"))
    assert warned and warned == sorted(line for line in first.output.splitlines()
                                       if line.startswith("warning")
                                       and skipped_input not in line)


def test_image_on_ray_writes_what_one_process_writes(cluster, tmp_path):
    from PIL import Image

    inputs = tmp_path / "images"
    inputs.mkdir()
    shutil.copy(EXAMPLES / "avdigits_frame.png", inputs / "frame.png")
    Image.open(EXAMPLES / "avdigits_frame.png").convert("L").save(inputs / "grey.jpg")
    Image.new("RGB", (100, 80)).save(inputs / "small.png")  # under 224 px: refused
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    single, on_ray = tmp_path / "single", tmp_path / "ray"
    first = CliRunner().invoke(main, ["image", str(inputs), "-o", str(single), "--model", MODEL])
    result = CliRunner().invoke(main, ["image", str(inputs), "-o", str(on_ray), "--model", MODEL,
                                       "--ray"])
    assert first.exit_code == result.exit_code == 1, result.output
    assert "2 processed, 0 skipped (output exists), 2 failed" in result.output
    assert _bad_lines(result.output) == _bad_lines(first.output)
    assert sorted(os.listdir(on_ray)) == sorted(os.listdir(single)) == ["frame.npz", "grey.npz"]
    _assert_same_outputs(single, on_ray, ["frame.npz", "grey.npz"])


@pytest.mark.filterwarnings("ignore:.*shorter than window size")
def test_audio_embedder_on_read_audio_and_paths(cluster, audio_inputs):
    """AudioEmbedder in map_batches over ray.data.read_audio's rows ((channels, samples)
    float32) gives get_audio_embedding's result for the same samples (for these 16-bit files,
the same as the file's); over paths, the arrays
    l3embed writes; a bad path is a row with an error, not a failed job."""
    import openl3lite

    folder = audio_inputs[0]
    wavs = sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if n.endswith(".wav") and n[0].isdigit())
    kwargs = {"model": MODEL, "hop_size": 0.25}
    decoded = ray.data.read_audio(wavs, include_paths=True)
    # half a CPU an actor: two actors leave a CPU for read_audio's tasks on a 2-CPU cluster
    rows = decoded.map_batches(raydata.AudioEmbedder, fn_constructor_kwargs=kwargs,
                               concurrency=2, num_cpus=0.5, batch_size=3).take_all()
    assert sorted(row["path"].split("/")[-1] for row in rows) == [os.path.basename(w)
                                                                  for w in wavs]
    embedder = raydata.AudioEmbedder(**kwargs)  # a plain callable too
    model = embedder.job.audio_model
    for row in rows:
        assert row["error"] == "" and "amplitude" not in row
        # read_audio's decoding: soundfile, float32, (channels, samples)
        samples, sr = sf.read(os.path.join(folder, os.path.basename(row["path"])),
                              dtype="float32", always_2d=True)
        assert sr == row["sample_rate"]
        want, times = openl3lite.get_audio_embedding(samples, sr, model,
                                                     hop_size=0.25, verbose=False)
        assert row["embedding"].tobytes() == want.tobytes()
        assert row["timestamps"].tobytes() == times.tobytes()
        # 16-bit PCM: float32 holds its samples exactly, so the path's embedding is the same
        by_path = embedder.job.arrays(os.path.join(folder, os.path.basename(row["path"])))
        assert by_path["embedding"].tobytes() == want.tobytes()

    paths = [wavs[0], os.path.join(folder, "garbage.wav")]
    out = embedder({"path": np.asarray(paths)})
    job_arrays = embedder.job.arrays(wavs[0])
    assert out["error"][0] == "" and "garbage.wav" in out["error"][1]
    assert out["embedding"][0].tobytes() == job_arrays["embedding"].tobytes()
    assert out["embedding"][1].shape == (0, job_arrays["embedding"].shape[1])


def test_image_embedder_on_decoded_images_and_paths():
    """ImageEmbedder (called directly, as an actor calls it) on read_images-style rows and on
    paths: one (D,) row each, as l3embed image's (1, D)."""
    from PIL import Image

    import openl3lite

    path = str(EXAMPLES / "avdigits_frame.png")
    image = np.asarray(Image.open(path).convert("RGB"))
    embedder = raydata.ImageEmbedder(model=MODEL)
    by_path = embedder({"path": np.asarray([path, "/no/such.png"])})
    decoded = embedder({"image": [image, image[:10]]})
    want = openl3lite.get_image_embedding(image, model=embedder.job.image_model, verbose=False)
    assert by_path["embedding"][0].tobytes() == decoded["embedding"][0].tobytes() \
        == want[0].tobytes()
    assert by_path["error"][0] == "" and "/no/such.png" in by_path["error"][1]
    assert decoded["error"][1].startswith("row 1: ") and "224" in decoded["error"][1]
    assert by_path["embedding"].shape == (2, want.shape[1])


def test_a_model_the_actors_cannot_load_is_one_error_line(cluster, audio_inputs, tmp_path):
    """The driver leaves loading to the actors (a GPU node's driver would otherwise take GPU
    memory): a bad model file is still a set-up error (status 2) in one line, not Ray's
    traceback of a failed actor, and nothing is written."""
    bogus = tmp_path / "bogus.h5"
    bogus.write_text("not a model\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["audio", audio_inputs[0], "-o", str(out), "--model",
                                       str(bogus), "--ray"])
    assert result.exit_code == 2, result.output
    assert f"error: {bogus}: not a readable model file" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_video_on_ray_writes_what_one_process_writes(cluster, tmp_path):
    """Both outputs of each video, byte for byte; a corrupt video is reported and skipped; a
    video whose sound output exists gets only its image output."""
    from conftest import write_test_video

    inputs = tmp_path / "videos"
    inputs.mkdir()
    shutil.copy(EXAMPLES / "avdigits_theo_001.mp4", inputs / "digits.mp4")
    write_test_video(inputs / "tone.mp4", seconds=2, seed=7)
    (inputs / "corrupt.mp4").write_bytes(os.urandom(3000))
    single, on_ray = tmp_path / "single", tmp_path / "ray"
    common = ["--model", MODEL, "-t", "0.5", "-as", "512", "-is", "512"]
    first = CliRunner().invoke(main, ["video", str(inputs), "-o", str(single), *common])
    assert first.exit_code == 1 and len(_bad_lines(first.output)) == 1, first.output
    produced = sorted(os.listdir(single))
    assert produced == ["digits_audio.npz", "digits_image.npz", "tone_audio.npz",
                        "tone_image.npz"]
    on_ray.mkdir()
    (on_ray / "tone_audio.npz").write_bytes(b"the user's file")
    result = CliRunner().invoke(main, ["video", str(inputs), "-o", str(on_ray), *common,
                                       "--ray", "--ray-workers", "2"])
    assert result.exit_code == 1, result.output
    assert "2 processed, 0 skipped (output exists), 1 failed" in result.output, result.output
    assert _bad_lines(result.output) == _bad_lines(first.output)
    assert (on_ray / "tone_audio.npz").read_bytes() == b"the user's file"
    assert sorted(os.listdir(on_ray)) == produced
    _assert_same_outputs(single, on_ray, [n for n in produced if n != "tone_audio.npz"])
