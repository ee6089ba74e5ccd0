"""OpenL3 0.4.2's public API under openl3lite: names and submodules, parameter checks, the
Keras models the loaders return, per-output skipping, OpenL3's CLI functions, ``cli.main()``
called from Python, and the provenance every output records.

The suite's weights cache holds the fixtures' random weights under OpenL3's model names (see
``conftest.py``), so the OpenL3 defaults resolve without a network.
"""

import argparse
import os
import shutil
import sys
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
import soundfile as sf

import openl3lite
from openl3lite import OpenL3Error

REPO = Path(__file__).resolve().parents[1]
DEMO = "avdigits-mel128-w0125"


@pytest.fixture(scope="module")
def inputs(fixtures_dir):
    return fixtures_dir / "inputs"


@pytest.fixture(scope="module")
def chirp(inputs):
    return sf.read(inputs / "audio" / "chirp_44k.wav")


@pytest.fixture(scope="module")
def mel256_512():
    return openl3lite.models.load_audio_embedding_model("mel256", "music", 512)


def test_every_public_name_of_openl3_exists_with_its_submodules():
    import openl3lite.cli
    import openl3lite.core
    import openl3lite.models
    import openl3lite.openl3_exceptions
    import openl3lite.openl3_warnings

    for name in ("get_audio_embedding", "get_image_embedding", "get_output_path",
                 "process_audio_file", "process_image_file", "process_video_file",
                 "preprocess_audio", "OpenL3Error", "__version__"):
        assert hasattr(openl3lite, name), name
    for name in ("get_audio_embedding", "get_image_embedding", "get_output_path",
                 "preprocess_audio", "process_audio_file", "process_image_file",
                 "process_video_file"):
        assert getattr(openl3lite.core, name) is getattr(openl3lite, name)
    assert openl3lite.core.TARGET_SR == 48000
    for name in ("load_audio_embedding_model", "load_audio_embedding_model_from_path",
                 "load_image_embedding_model", "load_image_embedding_model_from_path",
                 "get_audio_embedding_model_path", "get_image_embedding_model_path"):
        assert callable(getattr(openl3lite.models, name)), name
    for name in ("main", "run", "parse_args", "get_file_list", "positive_int",
                 "positive_float"):
        assert callable(getattr(openl3lite.cli, name)), name
    assert openl3lite.openl3_exceptions.OpenL3Error is OpenL3Error
    assert openl3lite.openl3_warnings.OpenL3Warning is openl3lite.OpenL3Warning
    assert issubclass(openl3lite.OpenL3Warning, Warning)


@pytest.mark.parametrize("bad", [{"verbose": -1}, {"verbose": 2}, {"verbose": "invalid"},
                                 {"model": "invalid"}, {"model": 5}, {"frontend": "invalid"},
                                 {"input_repr": "mel64"}, {"content_type": "jazz"},
                                 {"embedding_size": 42}, {"hop_size": 0}, {"hop_size": -1},
                                 {"center": "invalid"}, {"sr": -1}, {"sr": "invalid"},
                                 {"sr": [44100, 44100]}, {"audio": "invalid"},
                                 {"audio": np.ones((10, 10, 10))}])
def test_get_audio_embedding_refuses_what_openl3_refuses(chirp, bad):
    audio, sr = chirp
    args = {"audio": audio, "sr": sr, "verbose": False}
    args.update(bad)
    with pytest.raises(OpenL3Error):
        openl3lite.get_audio_embedding(args.pop("audio"), args.pop("sr"), **args)


@pytest.mark.parametrize("bad", [{"verbose": -1}, {"verbose": "invalid"}, {"model": "invalid"},
                                 {"embedding_size": 6144}, {"input_repr": "mel64"},
                                 {"content_type": "jazz"}, {"frame_rate": -1},
                                 {"image": "invalid"}])
def test_get_image_embedding_refuses_what_openl3_refuses(bad):
    args = {"image": np.zeros((224, 224, 3), np.uint8) + 7, "verbose": False}
    args.update(bad)
    with pytest.raises(OpenL3Error):
        openl3lite.get_image_embedding(args.pop("image"), **args)


@pytest.mark.parametrize("function", ["process_audio_file", "process_image_file",
                                      "process_video_file"])
@pytest.mark.parametrize("filepath", [None, 5, [None]])
def test_process_functions_refuse_a_filepath_that_is_not_a_path(function, filepath):
    with pytest.raises(OpenL3Error, match="filepath"):
        getattr(openl3lite, function)(filepath, model=DEMO) if function != "process_video_file" \
            else openl3lite.process_video_file(filepath, audio_model=DEMO, image_model=DEMO)


def test_verbose_accepts_openl3s_values(chirp, mel256_512):
    audio, sr = chirp
    first, _ = openl3lite.get_audio_embedding(audio, sr, model=mel256_512, verbose=0)
    again, _ = openl3lite.get_audio_embedding(audio, sr, model=mel256_512, verbose=True)
    np.testing.assert_array_equal(first, again)


def test_get_output_path_names_as_openl3():
    get = openl3lite.get_output_path
    assert get("/in/x.wav", "suffix.npz", "/out") == "/out/x_suffix.npz"
    assert get("/in/x.wav", "suffix.npz") == "/in/x_suffix.npz"
    assert get("/in/x.wav", ".npz") == "/in/x.npz"
    assert get("x.y.wav", "audio_s.npz", "o") == os.path.join("o", "x.y_audio_s.npz")


def test_preprocess_audio_feeds_the_models_predict(chirp, mel256_512):
    audio, sr = chirp
    embedding, timestamps = openl3lite.get_audio_embedding(audio, sr, model=mel256_512,
                                                           verbose=False)
    windows = openl3lite.preprocess_audio(audio, sr)
    assert windows.shape == (len(timestamps), 1, 48000) and windows.dtype == np.float32
    np.testing.assert_allclose(mel256_512.predict(windows, verbose=0), embedding, atol=1e-5)
    for input_repr, shape in (("linear", (257, 197, 1)), ("mel256", (256, 199, 1))):
        spectrograms = openl3lite.preprocess_audio(audio, sr, hop_size=0.5, input_repr=input_repr)
        assert spectrograms.shape[1:] == shape
        assert spectrograms.max() <= 0 and spectrograms.min() >= -80
    librosa_model = openl3lite.models.load_audio_embedding_model("mel256", "music", 512,
                                                                 frontend="librosa")
    assert librosa_model.input_shape == (None, 256, 199, 1)
    expected, _ = openl3lite.get_audio_embedding(audio, sr, model=librosa_model, hop_size=0.5,
                                                 frontend="librosa", verbose=False)
    got = librosa_model.predict(openl3lite.preprocess_audio(audio, sr, 0.5, "mel256"), verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(OpenL3Error):
        openl3lite.preprocess_audio(audio, sr, input_repr="asdf")


def test_loaders_return_keras_models_that_carry_their_metadata(tmp_path, chirp, fixtures_dir):
    import keras

    model = openl3lite.models.load_audio_embedding_model("linear", "env", 6144)
    assert isinstance(model, keras.Model)
    assert model.input_shape == (None, 1, 48000) and model.output_shape == (None, 6144)
    assert model.metadata.name == "openl3-linear-env" and model.input_repr == "linear"
    assert model.metadata.content_type == "env" and model.frontend == "kapre"
    assert model.metadata.sha256 == openl3lite.weights.sha256_of(
        fixtures_dir / "openl3_audio_random.h5")
    assert len(model.layers) > 3 and model.count_params() > 4_000_000
    lines = []
    model.summary(print_fn=lambda line, **_: lines.append(line))
    assert any("audio_trunk" in line for line in lines)
    audio, sr = chirp
    windows = openl3lite.preprocess_audio(audio, sr)
    expected = model.predict(windows, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded) is type(model) and loaded.metadata == model.metadata
    np.testing.assert_allclose(loaded.predict(windows, verbose=0), expected, atol=1e-6)
    image_model = openl3lite.models.load_image_embedding_model("mel128", "env", 512)
    assert isinstance(image_model, keras.Model)
    assert image_model.input_shape == (None, 224, 224, 3)
    assert image_model.output_shape == (None, 512)
    assert image_model.metadata.name == "openl3-mel128-env"
    assert image_model.image_scaling == "openl3"
    path = openl3lite.models.get_audio_embedding_model_path("mel128", "env")
    assert Path(path).name == "openl3_audio_mel128_env.h5"
    assert Path(openl3lite.models.get_image_embedding_model_path("linear", "music")).name == \
        "openl3_image_linear_music.h5"
    with pytest.raises(OpenL3Error):
        openl3lite.models.load_audio_embedding_model("mel256", "env", 512, frontend="not-a-thing")
    with pytest.raises(OpenL3Error):
        openl3lite.models.load_audio_embedding_model(None, "env", 512, frontend="librosa")


def test_a_model_name_is_accepted_wherever_a_file_is(chirp):
    audio, sr = chirp
    by_name = openl3lite.models.load_audio_embedding_model_from_path("openl3-mel256-env", None,
                                                                     512)
    assert by_name.metadata.name == "openl3-mel256-env"
    by_default = openl3lite.models.load_audio_embedding_model("mel256", "env", 512)
    np.testing.assert_array_equal(
        openl3lite.get_audio_embedding(audio, sr, model="openl3-mel256-env",
                                       embedding_size=512, verbose=False)[0],
        openl3lite.get_audio_embedding(audio, sr, model=by_default, verbose=False)[0])
    with pytest.raises(OpenL3Error, match="l3embed models"):
        openl3lite.models.load_audio_embedding_model_from_path("openl3-mel512-music")


def test_openl3_file_names_give_the_input_representation(tmp_path, fixtures_dir, chirp):
    path = tmp_path / "openl3_audio_linear_music.h5"
    shutil.copy(fixtures_dir / "openl3_audio_random.h5", path)
    model = openl3lite.load_audio_embedding_model_from_path(path, embedding_size=512)
    assert model.input_repr == "linear" and model.metadata.content_type == "music"
    plain = tmp_path / "weights.h5"
    shutil.copy(fixtures_dir / "openl3_audio_random.h5", plain)
    assert openl3lite.load_audio_embedding_model_from_path(plain).input_repr == "mel256"


def _video_outputs(tmp_path, overwrite=False, **kwargs):
    video = REPO / "examples" / "data" / "avdigits_theo_001.mp4"
    return openl3lite.process_video_file(str(video), output_dir=str(tmp_path), audio_model=DEMO,
                                         image_model=DEMO, audio_embedding_size=512,
                                         image_embedding_size=512, overwrite=overwrite,
                                         verbose=False, **kwargs)


def test_process_video_file_makes_only_the_missing_output(tmp_path):
    audio_out, image_out = _video_outputs(tmp_path)
    with np.load(audio_out) as a, np.load(image_out) as i:
        audio_ref, image_ref = a["embedding"], i["embedding"]
    marker = np.zeros((1, 1), np.float32)
    np.savez(audio_out, embedding=marker, timestamps=np.zeros(1))
    os.remove(image_out)
    _video_outputs(tmp_path)
    with np.load(audio_out) as a, np.load(image_out) as i:
        np.testing.assert_array_equal(a["embedding"], marker)  # kept
        np.testing.assert_array_equal(i["embedding"], image_ref)  # made again
    os.remove(audio_out)
    np.savez(image_out, embedding=marker, timestamps=np.zeros(1))
    _video_outputs(tmp_path)
    with np.load(audio_out) as a, np.load(image_out) as i:
        np.testing.assert_array_equal(a["embedding"], audio_ref)
        np.testing.assert_array_equal(i["embedding"], marker)
    _video_outputs(tmp_path, overwrite=True)
    with np.load(image_out) as i:
        np.testing.assert_array_equal(i["embedding"], image_ref)


def test_outputs_record_what_made_them(tmp_path, inputs, mel256_512):
    out = openl3lite.process_audio_file(str(inputs / "audio" / "chirp_mono.wav"),
                                        output_dir=str(tmp_path), model=mel256_512,
                                        hop_size=0.25, center=False, verbose=False)
    with np.load(out, allow_pickle=False) as data:
        assert data["embedding"].shape[1] == 512 and data["embedding"].dtype == np.float32
        assert data["timestamps"].dtype == np.float64
        assert str(data["model"]) == "openl3-mel256-music"
        assert str(data["weights_sha256"]) == mel256_512.metadata.sha256
        assert str(data["openl3lite_version"]) == openl3lite.__version__
        assert int(data["embedding_size"]) == 512 and str(data["input_repr"]) == "mel256"
        assert str(data["content_type"]) == "music" and str(data["frontend"]) == "kapre"
        assert float(data["hop_size"]) == 0.25 and not bool(data["center"])
        assert str(data["resampler"]) == "kaiser_best" and str(data["mode"]) == "exact"
    image_out = openl3lite.process_image_file(str(inputs / "image" / "daisy.jpg"),
                                              output_dir=str(tmp_path), embedding_size=512,
                                              verbose=False)
    with np.load(image_out, allow_pickle=False) as data:
        assert data["embedding"].shape == (1, 512)
        assert str(data["model"]) == "openl3-mel256-music" and "hop_size" not in data.files


def test_process_audio_file_skips_existing_outputs_and_says_so(tmp_path, inputs, capsys):
    source = str(inputs / "audio" / "chirp_1s.wav")
    out = openl3lite.process_audio_file(source, output_dir=str(tmp_path), model=DEMO,
                                        embedding_size=512, verbose=False)
    before = os.stat(out).st_mtime_ns
    openl3lite.process_audio_file([source], output_dir=str(tmp_path), model=DEMO,
                                  embedding_size=512, verbose=False)
    assert os.stat(out).st_mtime_ns == before
    assert "exists" in capsys.readouterr().out


# ---------------------------------------------------------------- OpenL3's CLI functions

def test_positive_int_and_positive_float():
    from openl3lite.cli import positive_float, positive_int

    assert positive_float(5) == 5.0 and type(positive_float("1.3")) is float
    assert positive_int(5.0) == 5 and type(positive_int("1")) is int
    for bad in (-5, -1.0, 0, None, "hello"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_float(bad)
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)


def test_get_file_list(inputs, tmp_path):
    from openl3lite.cli import get_file_list

    audio = inputs / "audio"
    with pytest.raises(argparse.ArgumentTypeError):
        get_file_list(str(audio / "chirp_44k.wav"))
    files = get_file_list([str(audio / "chirp_44k.wav"), str(audio / "chirp_1s.wav")])
    assert files == [str(audio / "chirp_44k.wav"), str(audio / "chirp_1s.wav")]
    assert sorted(get_file_list([str(audio)])) == sorted(str(p) for p in audio.iterdir())
    assert len(get_file_list([str(audio), str(audio / "chirp_44k.wav")])) == 8
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.wav").write_bytes(b"x")
    assert get_file_list([str(tmp_path)]) == []  # not recursive, as OpenL3
    with pytest.raises(OpenL3Error):
        get_file_list(["/fake/path/to/file"])


def test_parse_args_gives_openl3s_namespace():
    from openl3lite.cli import parse_args

    args = parse_args(["audio", "x.wav"])
    assert (args.modality, args.inputs, args.output_dir, args.suffix) == ("audio", ["x.wav"],
                                                                          None, None)
    assert (args.input_repr, args.content_type, args.audio_embedding_size) == ("mel256", "music",
                                                                               6144)
    assert args.no_audio_centering is False and args.audio_hop_size == 0.1
    assert args.audio_batch_size == 32 and args.audio_frontend == "kapre"
    assert args.quiet is False and args.overwrite is False
    args = parse_args(["video", "v.mp4", "-o", "/output/dir", "--suffix", "suffix",
                       "--input-repr", "linear", "--content-type", "env",
                       "--audio-embedding-size", "512", "--no-audio-centering",
                       "--audio-hop-size", "0.5", "--image-embedding-size", "512", "-ab", "8",
                       "-ib", "4", "-af", "librosa", "-ow", "--quiet"])
    assert args.inputs == ["v.mp4"] and args.output_dir == "/output/dir"
    assert args.suffix == "suffix" and args.input_repr == "linear"
    assert args.content_type == "env" and args.audio_embedding_size == 512
    assert args.no_audio_centering is True and args.audio_hop_size == 0.5
    assert args.image_embedding_size == 512 and args.audio_batch_size == 8
    assert args.image_batch_size == 4 and args.audio_frontend == "librosa"
    assert args.overwrite is True and args.quiet is True
    for bad in (["audio"], ["sound", "x.wav"], ["audio", "x.wav", "-t", "-1"],
                ["audio", "x.wav", "-as", "100"]):
        with pytest.raises(SystemExit) as info:
            parse_args(bad)
        assert info.value.code == 2


def test_run_refuses_bad_input_and_exits_on_an_empty_folder(tmp_path, capsys, inputs):
    from openl3lite.cli import run

    for bad in (None, 5, 1.0):
        with pytest.raises(OpenL3Error):
            run(bad, bad)
    with pytest.raises(SystemExit) as info:
        run("audio", [str(tmp_path)])
    assert info.value.code == -1
    assert capsys.readouterr().out == f"openl3lite: No files found in {[str(tmp_path)]}. " \
                                      "Aborting.\n"
    with pytest.raises(OpenL3Error, match="modality"):
        run("invalid", str(inputs / "audio" / "chirp_44k.wav"), output_dir=str(tmp_path))
    assert not list(tmp_path.iterdir())


def test_run_embeds_with_openl3s_model(tmp_path, inputs, mel256_512):
    from openl3lite.cli import run

    source = inputs / "audio" / "chirp_mono.wav"
    run("audio", [str(source)], output_dir=str(tmp_path), audio_embedding_size=512,
        audio_hop_size=0.5)
    audio, sr = sf.read(source)
    expected, _ = openl3lite.get_audio_embedding(audio, sr, model=mel256_512, hop_size=0.5,
                                                 verbose=False)
    with np.load(tmp_path / "chirp_mono.npz") as data:
        np.testing.assert_allclose(data["embedding"], expected, atol=1e-5)


def test_cli_main_called_from_python_returns_after_success(tmp_path, inputs, mel256_512):
    from openl3lite.cli import main

    source = inputs / "audio" / "chirp_44k.wav"
    argv = ["openl3", "audio", str(source), "--output-dir", str(tmp_path), "-as", "512", "-q"]
    with patch("sys.argv", argv):
        assert main() is None
    audio, sr = sf.read(source)
    expected, ts = openl3lite.get_audio_embedding(audio, sr, model=mel256_512, verbose=False)
    with np.load(tmp_path / "chirp_44k.npz") as data:
        np.testing.assert_allclose(data["embedding"], expected, atol=1e-5)
        np.testing.assert_allclose(data["timestamps"], ts)
    with patch("sys.argv", ["openl3", "audio", str(tmp_path / "missing.wav"), "-q"]):
        with pytest.raises(SystemExit) as info:
            main()
    assert info.value.code == 1
    with patch("sys.argv", ["openl3", "audio"]):
        with pytest.raises(SystemExit) as info:
            main()
    assert info.value.code == 2


def test_cli_audio_frontend_alias_and_model_names(tmp_path, inputs):
    from click.testing import CliRunner

    from openl3lite.cli import main

    source = str(inputs / "audio" / "chirp_1s.wav")
    result = CliRunner().invoke(main, ["audio", source, "-o", str(tmp_path / "a"), "-af",
                                       "librosa", "-as", "512", "-q"])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "a" / "chirp_1s.npz") as data:
        assert str(data["frontend"]) == "librosa" and str(data["model"]) == "openl3-mel256-music"
    result = CliRunner().invoke(main, ["audio", source, "-o", str(tmp_path / "b"), "--model",
                                       DEMO, "-as", "512", "-q"])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "b" / "chirp_1s.npz") as data:
        assert str(data["model"]) == DEMO and str(data["input_repr"]) == "mel128"
    result = CliRunner().invoke(main, ["audio", source, "--model", "no-such-model"])
    assert result.exit_code == 2 and "neither a model name" in result.output


def test_python_dash_m_runs_main_like_openl3s_script(tmp_path, inputs):
    import subprocess

    source = str(inputs / "audio" / "chirp_1s.wav")
    done = subprocess.run([sys.executable, "-m", "openl3lite", "audio", source, "-o",
                           str(tmp_path), "--model", DEMO, "-as", "512", "-q"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "chirp_1s.npz").exists()


def test_cli_video_makes_only_the_missing_output(tmp_path):
    from click.testing import CliRunner

    from openl3lite.cli import main

    video = str(REPO / "examples" / "data" / "avdigits_theo_001.mp4")
    args = ["video", video, "-o", str(tmp_path), "--model", DEMO, "--image-model", DEMO,
            "-as", "512", "-is", "512", "-q"]
    assert CliRunner().invoke(main, args).exit_code == 0
    audio_out, image_out = tmp_path / "avdigits_theo_001_audio.npz", \
        tmp_path / "avdigits_theo_001_image.npz"
    with np.load(image_out) as data:
        image_ref = data["embedding"]
    marker = np.zeros((1, 1), np.float32)
    np.savez(audio_out, embedding=marker, timestamps=np.zeros(1))
    os.remove(image_out)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    with np.load(audio_out) as a, np.load(image_out) as i:
        np.testing.assert_array_equal(a["embedding"], marker)
        np.testing.assert_array_equal(i["embedding"], image_ref)
        assert str(i["model"]) == DEMO


def test_cli_refuses_a_hop_under_one_sample(tmp_path, inputs):
    from click.testing import CliRunner

    from openl3lite.cli import main

    result = CliRunner().invoke(main, ["audio", str(inputs / "audio" / "chirp_1s.wav"), "-o",
                                       str(tmp_path), "-t", "0.00001"])
    assert result.exit_code == 2 and "one sample" in result.output
    assert "ZeroDivisionError" not in result.output and not list(tmp_path.iterdir())
