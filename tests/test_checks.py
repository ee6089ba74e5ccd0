"""The bugs the scattered checks let through (issue 21): each boundary refuses what the others
refuse, with a message naming the parameter; the internal functions refuse it too."""

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import openl3lite
from openl3lite import batching, framing
from openl3lite.api import (
    embed_audio_file,
    embed_frames,
    embed_images,
    embed_video_file,
)
from openl3lite.cli import main
from openl3lite.errors import OpenL3liteError

#: One sample at 48 kHz is 2.08e-5 s; this hop rounds to no sample.
TOO_SHORT_HOP = 0.00001


@pytest.fixture(scope="module")
def tiny_audio_model():
    return openl3lite.random_audio_model("mel128", 512, width=0.0625, seed=1)


@pytest.fixture(scope="module")
def tiny_image_model():
    return openl3lite.random_image_model(512, width=0.0625, seed=2)


@pytest.fixture()
def noise_wav(tmp_path):
    path = tmp_path / "noise.wav"
    sf.write(path, np.random.default_rng(0).normal(0, 0.1, 2 * 48000), 48000)
    return str(path)


def _opus_clip(path, seed):
    sf.write(path, np.random.default_rng(seed).normal(0, 0.1, 48000), 48000, format="OGG",
             subtype="OPUS")


def test_evaluate_finds_the_audio_files_l3embed_audio_reads(tmp_path):
    # An Opus clip is read by `l3embed audio`; `l3embed evaluate` must find it in a folder too.
    # One label only: the command stops at "only one label" once it has found the clips, before
    # any model is loaded.
    root = tmp_path / "labels"
    (root / "a").mkdir(parents=True)
    for i in range(2):
        _opus_clip(root / "a" / f"clip{i}.opus", i)
    result = CliRunner().invoke(main, ["evaluate", str(root), "-q", "--no-logmel-baseline"])
    assert result.exit_code == 2, result.output
    assert "only one label" in result.output, result.output
    assert "no labelled files" not in result.output


def test_embed_audio_file_refuses_batch_size_zero(noise_wav, tiny_audio_model):
    for bad in (0, -1, 2.5, True):
        with pytest.raises(OpenL3liteError, match=r"invalid batch_size"):
            embed_audio_file(noise_wav, tiny_audio_model, batch_size=bad)


def test_image_and_video_functions_refuse_batch_size_zero(tiny_image_model, tmp_path):
    images = np.zeros((2, 224, 224, 3), np.uint8)
    with pytest.raises(OpenL3liteError, match=r"invalid batch_size"):
        embed_images(images, tiny_image_model, batch_size=0)
    with pytest.raises(OpenL3liteError, match=r"invalid batch_size"):
        embed_frames(iter(images), tiny_image_model, batch_size=0)
    with pytest.raises(OpenL3liteError, match=r"invalid audio_batch_size"):
        embed_video_file(tmp_path / "any.mp4", None, None, audio_batch_size=0)
    with pytest.raises(OpenL3liteError, match=r"invalid image_batch_size"):
        embed_video_file(tmp_path / "any.mp4", None, None, image_batch_size=0)


def test_batching_refuses_a_batch_size_under_one():
    for bad in (0, -3):
        with pytest.raises(OpenL3liteError, match="batch_size"):
            list(batching.batched(np.zeros((4, 2)), bad))
        with pytest.raises(OpenL3liteError, match="batch_size"):
            list(batching.batched_stream(range(4), bad))
        with pytest.raises(OpenL3liteError, match="batch_size"):
            list(framing.iter_window_batches([np.zeros(96000)], 96000, 0.1, True, bad))


def test_framing_refuses_a_hop_under_one_sample():
    for bad in (TOO_SHORT_HOP, 0.0, -0.1, float("nan")):
        with pytest.raises(OpenL3liteError, match="hop_size"):
            framing.hop_length(bad)
        with pytest.raises(OpenL3liteError, match="hop_size"):
            framing.count_windows(96000, bad)
    assert framing.hop_length(1 / 48000) == 1 or framing.hop_length(1 / 48000 + 1e-12) == 1


def test_embed_audio_file_refuses_a_hop_under_one_sample(noise_wav, tiny_audio_model):
    for mode in ("exact", "fast"):
        with pytest.raises(OpenL3liteError, match="invalid hop_size 1e-05: shorter than one "
                                                  "sample"):
            embed_audio_file(noise_wav, tiny_audio_model, hop_size=TOO_SHORT_HOP, mode=mode)


@pytest.mark.parametrize("command", ["audio", "video"])
def test_cli_hop_under_one_sample_is_a_usage_error(command, noise_wav, tmp_path):
    result = CliRunner().invoke(main, [command, "--audio-hop-size", str(TOO_SHORT_HOP),
                                       noise_wav, "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "--audio-hop-size" in result.output and "shorter than one sample" in result.output
    assert "ZeroDivisionError" not in result.output


def test_evaluate_hop_under_one_sample_is_a_usage_error(tmp_path):
    from openl3lite import network
    from openl3lite.weights import ModelMetadata, save_model_file

    model_file = tmp_path / "tiny.h5"
    save_model_file(model_file, {"audio": network.build_audio_trunk("mel128", 0.0625)},
                    ModelMetadata(name="tiny", input_repr="mel128", width=0.0625))
    root = tmp_path / "labels"
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(4):
            sf.write(root / label / f"clip{i}.wav", rng.normal(0, 0.1, 48000), 48000)
    for bad in (str(TOO_SHORT_HOP), "0", "-1"):
        result = CliRunner().invoke(main, ["evaluate", str(root), "-q", "--no-logmel-baseline",
                                           "--model", str(model_file), "--hop-size", bad])
        assert result.exit_code == 2, result.output
        assert "--hop-size" in result.output, result.output
        assert "ZeroDivisionError" not in result.output and "Traceback" not in result.output


def test_cli_and_api_say_the_same_about_a_bad_batch_size(noise_wav, tiny_audio_model, tmp_path):
    result = CliRunner().invoke(main, ["audio", "--audio-batch-size", "0", noise_wav,
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    with pytest.raises(OpenL3liteError) as refused:
        embed_audio_file(noise_wav, tiny_audio_model, batch_size=0)
    rule = str(refused.value).split(": ", 1)[1]
    assert rule in result.output, (rule, result.output)


def test_jobs_refuse_bad_settings_when_made():
    # The jobs are the boundary of the Ray path (openl3lite.raydata builds them from its
    # arguments): a bad setting is refused when the job is made, not in every file's worker.
    from openl3lite.jobs import AudioJob, ImageJob, VideoJob

    for job, kwargs, name in ((AudioJob, {"hop_size": TOO_SHORT_HOP}, "hop_size"),
                              (AudioJob, {"batch_size": 0}, "batch_size"),
                              (AudioJob, {"resampler": "linear"}, "resampler"),
                              (VideoJob, {"audio_batch_size": 0}, "audio_batch_size"),
                              (VideoJob, {"hop_size": 0}, "hop_size"),
                              (ImageJob, {"batch_size": -2}, "batch_size"),
                              (ImageJob, {"embedding_size": 6144}, "embedding_size")):
        with pytest.raises(OpenL3liteError, match=f"invalid {name} "):
            job(**kwargs)


@pytest.mark.parametrize("n_samples, hop_size, center", [
    (1, 0.1, True), (24000, 0.1, True), (24001, 0.1, True), (48000, 0.1, False),
    (48001, 0.1, False), (5 * 48000 + 17, 0.1, True), (3 * 48000, 0.37, False),
    (24000 + 50, 1 / 48000, True), (4800, 2.5, True)])
def test_window_grid_is_what_the_windows_are(n_samples, hop_size, center):
    # the grid made once per input gives the windows the framing cuts and the timestamps the
    # API returns
    grid = framing.WindowGrid.of(n_samples, hop_size, center)
    signal = np.random.default_rng(n_samples).normal(size=n_samples)
    picked = sorted({0, grid.count // 2, grid.count - 1})
    windows, seen = {}, 0
    for batch in framing.iter_grid_batches([signal], grid, 7):
        windows.update({i: batch[i - seen] for i in picked if seen <= i < seen + len(batch)})
        seen += len(batch)
    padded = np.concatenate([np.zeros(grid.lead), signal, np.zeros(2 * 48000)])
    assert seen == grid.count == framing.count_windows(n_samples, hop_size, center)
    for i in picked:
        np.testing.assert_array_equal(windows[i], padded[grid.starts[i]: grid.starts[i] + 48000])
    assert grid.starts[-1] < grid.lead + n_samples or grid.count == 1  # no window of padding only
    np.testing.assert_array_equal(grid.timestamps, np.arange(grid.count) * hop_size)
    assert grid.hop == int(hop_size * 48000) >= 1


def test_window_grid_refuses_bad_values():
    with pytest.raises(OpenL3liteError, match="hop_size"):
        framing.WindowGrid.of(48000, TOO_SHORT_HOP)
    with pytest.raises(OpenL3liteError, match="center"):
        framing.WindowGrid.of(48000, 0.1, center="yes")
