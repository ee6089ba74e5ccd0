"""Every option of ``l3embed audio``, ``image`` and ``video`` has its effect, and the CLI writes
exactly what the Python API computes with the same settings."""

import os
import re

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from PIL import Image

import openl3lite
from conftest import write_test_video
from openl3lite import api
from openl3lite.cli import main


@pytest.fixture(scope="module")
def tiny(tiny_model_file):
    return tiny_model_file


@pytest.fixture()
def batch_sizes(monkeypatch):
    """The sizes of the batches the network is given, in order (recorded around
    ``batching.keras_predict``, through which every Keras embedding path runs the network)."""
    from openl3lite import batching

    sizes = []
    original = batching.keras_predict

    def recording(model):
        predict = original(model)

        def run(batch):
            sizes.append(len(batch))
            return predict(batch)

        return run

    monkeypatch.setattr(batching, "keras_predict", recording)
    monkeypatch.setattr(api, "keras_predict", recording)
    return sizes


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(5)
    t = np.arange(int(2.3 * 22050)) / 22050
    sound = 0.3 * np.sin(2 * np.pi * (300 + 400 * t) * t) + 0.02 * rng.standard_normal(len(t))
    sf.write(root / "a.wav", sound, 22050)
    picture = rng.integers(0, 255, (260, 300, 3)).astype(np.uint8)
    Image.fromarray(picture).save(root / "p.png")
    write_test_video(root / "v.mp4", seconds=2, seed=4)
    return root


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def _audio_model(tiny, **kwargs):
    return openl3lite.load_audio_embedding_model_from_path(
        tiny, "mel128", kwargs.get("embedding_size", 6144), kwargs.get("frontend", "kapre"))


def _api_audio(path, model, **kwargs):
    audio, sr = sf.read(path)
    return openl3lite.get_audio_embedding(audio, sr, model=model, verbose=False, **kwargs)


def test_help_documents_every_option_of_every_command():
    """Each option has help text, and each of its spellings appears as a whole word in the
    command's --help (``-o`` is not found inside ``--output-dir``)."""
    for name, command in main.commands.items():
        text = CliRunner().invoke(main, [name, "--help"], terminal_width=200).output
        for param in command.params:
            if param.param_type_name != "option":
                continue
            assert param.help, f"l3embed {name} {param.opts[0]} has no help text"
            for spelling in param.opts + param.secondary_opts:
                assert re.search(rf"(?<![\w-]){re.escape(spelling)}(?![\w-])", text), (
                    f"l3embed {name} --help does not show {spelling}")


AUDIO_OPTIONS = [
    ([], {}),
    (["-as", "512"], {"embedding_size": 512}),
    (["--audio-embedding-size", "512"], {"embedding_size": 512}),
    (["-n"], {"center": False}),
    (["-t", "0.25"], {"hop_size": 0.25}),
    (["-af", "librosa"], {"frontend": "librosa"}),
    (["--resampler", "soxr_hq"], {"resampler": "soxr_hq"}),
    (["--fast"], {"mode": "fast"}),
]


@pytest.mark.parametrize("args, kwargs", AUDIO_OPTIONS, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else None)
def test_audio_option_gives_what_the_api_gives(inputs, tiny, tmp_path, args, kwargs):
    out = tmp_path / "out"
    _run("audio", inputs / "a.wav", "--model", tiny, "-o", out, "-q", *args)
    model = _audio_model(tiny, **kwargs)
    api_kwargs = {k: v for k, v in kwargs.items() if k not in ("embedding_size", "frontend")}
    expected, expected_ts = _api_audio(inputs / "a.wav", model, **api_kwargs)
    with np.load(out / "a.npz") as data:
        np.testing.assert_array_equal(data["timestamps"], expected_ts)
        np.testing.assert_allclose(data["embedding"], expected, rtol=0,
                                   atol=1e-6 * np.abs(expected).max())
        assert data["embedding"].shape[1] == kwargs.get("embedding_size", 6144)
        assert bool(data["center"]) == kwargs.get("center", True)
        assert float(data["hop_size"]) == kwargs.get("hop_size", 0.1)
        assert str(data["frontend"]) == kwargs.get("frontend", "kapre")
        assert str(data["resampler"]) == kwargs.get("resampler", "kaiser_best")
        assert str(data["mode"]) == kwargs.get("mode", "exact")


def test_options_that_change_the_result_do_change_it(inputs, tiny, tmp_path):
    """Guard against a comparison that passes because both sides ignore an option."""
    results = {}
    for args, _ in AUDIO_OPTIONS:
        out = tmp_path / ("o" + "".join(args).replace("-", "_").replace(".", "p"))
        _run("audio", inputs / "a.wav", "--model", tiny, "-o", out, "-q", *args)
        with np.load(out / "a.npz") as data:
            results[" ".join(args)] = (data["embedding"], data["timestamps"])
    default_embedding, default_ts = results[""]
    for key, (embedding, ts) in results.items():
        if key:
            assert (embedding.shape != default_embedding.shape or ts.shape != default_ts.shape
                    or not np.allclose(embedding, default_embedding, atol=1e-5)), key


def test_named_model_options_choose_openl3s_model(inputs, tmp_path):
    """Without --model, -i and -c pick OpenL3's weights (here the fixtures' random weights
    installed under OpenL3's names), recorded in each output."""
    out = tmp_path / "out"
    _run("audio", inputs / "a.wav", "-i", "mel128", "-c", "env", "-as", "512", "-t", "0.5",
         "-o", out, "-q")
    model = openl3lite.models.load_audio_embedding_model("mel128", "env", 512)
    expected, _ = _api_audio(inputs / "a.wav", model, hop_size=0.5)
    with np.load(out / "a.npz") as data:
        assert str(data["model"]) == "openl3-mel128-env" and str(data["input_repr"]) == "mel128"
        assert str(data["content_type"]) == "env"
        np.testing.assert_allclose(data["embedding"], expected, rtol=0,
                                   atol=1e-6 * np.abs(expected).max())
    _run("image", inputs / "p.png", "-i", "linear", "-c", "env", "-is", "512", "-o", out, "-q")
    image_model = openl3lite.models.load_image_embedding_model("linear", "env", 512)
    picture = np.asarray(Image.open(inputs / "p.png"))
    expected = openl3lite.get_image_embedding(picture, model=image_model, verbose=False)
    with np.load(out / "p.npz") as data:
        assert str(data["model"]) == "openl3-linear-env"
        np.testing.assert_allclose(data["embedding"], expected, rtol=0,
                                   atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("flag", ["-ab", "--audio-batch-size"])
def test_audio_batch_size_sets_the_networks_batches(inputs, tiny, tmp_path, batch_sizes, flag):
    _run("audio", inputs / "a.wav", "--model", tiny, "-o", tmp_path, "-q", flag, "7")
    n_windows = len(np.load(tmp_path / "a.npz")["timestamps"])
    # 2.3 s with 0.5 s of zeros before it, as OpenL3 centres: 1 + ceil(1.8 / 0.1) windows
    assert n_windows == 19 and batch_sizes == [7, 7, 5]


def test_image_options(inputs, tiny, tmp_path, batch_sizes):
    _run("image", inputs / "p.png", "--model", tiny, "-is", "512", "-o", tmp_path, "-x", "s",
         "-q")
    model = openl3lite.load_image_embedding_model_from_path(tiny, 512)
    picture = np.asarray(Image.open(inputs / "p.png"))
    expected = openl3lite.get_image_embedding(picture, model=model, verbose=False)
    with np.load(tmp_path / "p_s.npz") as data:
        np.testing.assert_allclose(data["embedding"], expected, rtol=0,
                                   atol=1e-6 * np.abs(expected).max())
        assert data["embedding"].shape == (1, 512)
    # a video's frames go through --image-batch-size batches
    batch_sizes.clear()
    _run("video", inputs / "v.mp4", "--model", tiny, "-o", tmp_path / "v", "-q", "-ib", "3",
         "--image-embedding-size", "512")
    frames = len(np.load(tmp_path / "v" / "v_image.npz")["timestamps"])
    assert frames == 10 and [s for s in batch_sizes if s <= 3] == [3, 3, 3, 1]  # sound: one of 21


def test_video_options_and_outputs_equal_the_api(inputs, tiny, tmp_path):
    out = tmp_path / "out"
    result = _run("video", inputs / "v.mp4", "--model", tiny, "-o", out, "-x", "run1", "-n",
                  "-t", "0.5", "-as", "512", "-is", "512", "-af", "librosa")
    assert "1 processed, 0 skipped" in result.output
    assert sorted(os.listdir(out)) == ["v_audio_run1.npz", "v_image_run1.npz"]
    audio_model = _audio_model(tiny, embedding_size=512, frontend="librosa")
    image_model = openl3lite.load_image_embedding_model_from_path(tiny, 512)
    expected = api.embed_video_file(inputs / "v.mp4", audio_model, image_model, False, 0.5,
                                    32, 32, verbose=False)
    with np.load(out / "v_audio_run1.npz") as data:
        np.testing.assert_allclose(data["embedding"], expected["audio_embedding"], rtol=0,
                                   atol=1e-6 * np.abs(expected["audio_embedding"]).max())
        np.testing.assert_array_equal(data["timestamps"], expected["audio_timestamps"])
        assert not bool(data["center"]) and float(data["hop_size"]) == 0.5
        assert str(data["frontend"]) == "librosa"
    with np.load(out / "v_image_run1.npz") as data:
        np.testing.assert_allclose(data["embedding"], expected["image_embedding"], rtol=0,
                                   atol=1e-6 * np.abs(expected["image_embedding"]).max())
        np.testing.assert_array_equal(data["timestamps"], expected["image_timestamps"])


def test_video_image_model_option_takes_separate_image_weights(inputs, tiny, tmp_path):
    """--image-model: OpenL3 ships image weights in their own files."""
    out = tmp_path / "out"
    _run("video", inputs / "v.mp4", "--model", tiny, "--image-model", "openl3-mel256-music",
         "-is", "512", "-as", "512", "-t", "0.5", "-o", out, "-q")
    with np.load(out / "v_image.npz") as data:
        assert str(data["model"]) == "openl3-mel256-music"
        assert data["embedding"].shape[1] == 512
    with np.load(out / "v_audio.npz") as data:
        assert str(data["model"]) == "tiny"


@pytest.mark.parametrize("command, name, outputs", [
    ("image", "p.png", ["p.npz"]),
    ("video", "v.mp4", ["v_audio.npz", "v_image.npz"])])
def test_skip_existing_and_overwrite_for_images_and_videos(inputs, tiny, tmp_path, command, name,
                                                           outputs):
    out = tmp_path / "out"
    out.mkdir()
    for output in outputs:
        (out / output).write_bytes(b"precious")
    args = [command, inputs / name, "--model", tiny, "-o", out, "-as", "512", "-t", "0.5"]
    if command == "image":
        args = args[:-4]
    result = _run(*args)
    assert "0 processed, 1 skipped" in result.output and "exists" in result.output
    assert all((out / o).read_bytes() == b"precious" for o in outputs)
    result = _run(*args, "-ow")
    assert "1 processed, 0 skipped" in result.output
    for output in outputs:
        with np.load(out / output) as data:
            assert data["embedding"].ndim == 2


def test_quiet_leaves_out_progress_and_per_file_lines(inputs, tiny, tmp_path):
    loud = _run("audio", inputs / "a.wav", "--model", tiny, "-o", tmp_path / "loud")
    quiet = _run("audio", inputs / "a.wav", "--model", tiny, "-o", tmp_path / "quiet", "-q")
    assert "wrote " in loud.output
    assert quiet.output.strip() == "1 processed, 0 skipped (output exists), 0 failed"
