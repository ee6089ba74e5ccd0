"""Localisation maps, the pointing game and `l3embed localize`, with tiny random-weight models on a
generated audio-visual digits video (one held-out speaker, three utterances, 128 px)."""

import importlib.util
import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import FIXTURES, FSDD, REPO, require
from openl3lite import localize, network, weights
from openl3lite.cli import main
from openl3lite.errors import OpenL3liteError
from openl3lite.l3net import L3Net

WIDTH = 0.0625


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    mk = _load(REPO / "examples" / "avdigits" / "make_avdigits.py", "make_avdigits")
    out = tmp_path_factory.mktemp("avdigits")
    assert mk.main(["--fsdd", str(require(FSDD)), "-o", str(out), "--speakers", "theo",
                    "--videos-per-speaker", "1", "--utterances-per-video", "3", "--size", "128",
                    "--workers", "1", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def model():
    avc = L3Net.random("mel128", WIDTH, seed=1)
    rng = np.random.default_rng(7)
    for pool4 in (avc.audio_pool4, avc.image_pool4):  # as after training: not the identity init
        bn = pool4.get_layer("bn4_2")
        gamma, beta, mean, var = bn.get_weights()
        bn.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.5, beta.shape),
                        rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 2, var.shape)])
    return avc


def _save(model, path, parts=weights.AVC_PARTS):
    weights.save_model_file(path, {p: model.parts()[p] for p in parts}, model.metadata)
    return path


@pytest.fixture(scope="module")
def model_file(model, tmp_path_factory):
    return _save(model, tmp_path_factory.mktemp("model") / "tiny.h5")


# ---------------------------------------------------------------- pure functions

def test_logits_are_the_fusion_heads_output():
    fusion = network.build_fusion_head(16)
    rng = np.random.default_rng(0)
    bn = fusion.get_layer("fusion_bn1")  # trained-like statistics, to check they are folded in
    bn.set_weights([rng.uniform(0.5, 2, 128), rng.normal(0, 0.5, 128), rng.normal(0, 0.3, 128),
                    rng.uniform(0.2, 2, 128)])
    audio, image = rng.normal(size=(5, 16)), rng.normal(size=(5, 16))
    expected = fusion.predict(np.concatenate([audio, image], 1).astype(np.float32), verbose=0)
    logits = localize.correspondence_logits(audio, image, network.fusion_head_arrays(fusion))
    assert logits.shape == (5,)
    np.testing.assert_allclose(localize.probability(logits), expected[:, 1], atol=1e-5)
    # broadcasting one audio vector against a grid of positions == scoring each pair
    grid = rng.normal(size=(3, 4, 16))
    maps = localize.correspondence_logits(audio[0], grid, network.fusion_head_arrays(fusion))
    assert maps.shape == (3, 4)
    np.testing.assert_allclose(
        maps[2, 1], localize.correspondence_logits(audio[0], grid[2, 1],
                                                   network.fusion_head_arrays(fusion)), rtol=1e-5)
    with pytest.raises(OpenL3liteError, match="fusion head"):
        localize.correspondence_logits(audio[:, :8], image[:, :8], network.fusion_head_arrays(fusion))


def test_pointing_geometry():
    score = np.zeros((4, 8))
    score[1, 6] = 3.0  # cell (row 1, col 6) of a 4x8 map over a 64x128 frame
    assert localize.peak_position(score, (64, 128)) == (104.0, 24.0)
    up = localize.upsample_map(score, (64, 128))
    assert up.shape == (64, 128) and up.dtype == np.float32
    assert np.unravel_index(np.argmax(up), up.shape) in {(23, 103), (23, 104), (24, 103),
                                                         (24, 104)}
    assert localize.point_in_box((104.0, 24.0), [100, 20, 110, 30])
    assert not localize.point_in_box((110.0, 24.0), [100, 20, 110, 30])  # end-exclusive
    assert localize.centre_point((64, 128)) == (64.0, 32.0)
    hits = localize.pointing_hits([(5, 5), (50, 5)], [[0, 0, 10, 10], [0, 0, 10, 10]])
    assert hits.tolist() == [True, False]
    np.testing.assert_allclose(localize.probability(np.array([0.0, 40.0, -40.0])),
                               [0.5, 1.0, 0.0], atol=1e-7)


def test_inputs_for_the_network():
    mono = np.arange(3 * 48000, dtype=np.float32)
    windows = localize.audio_windows(mono, [0.0, 1.5])
    assert windows.shape == (2, 48000)
    assert np.all(windows[0, :24000] == 0) and windows[0, 24000] == 0.0
    assert windows[0, 24001] == 1.0  # the window is centred on t = 0
    assert windows[1, 0] == 1.5 * 48000 - 24000 and windows[1, -1] == 1.5 * 48000 + 23999
    frames = np.zeros((2, 120, 160, 3), np.uint8)
    frames[:, :, :80] = 255
    images = localize.network_frames(frames)
    assert images.shape == (2, 256, 341, 3) and images.dtype == np.float32
    assert images[0, 0, 0, 0] == 1.0 and images[0, -1, -1, 0] == -1.0
    with pytest.raises(OpenL3liteError, match="shape"):
        localize.network_frames(np.zeros((120, 160, 3), np.uint8))


# ---------------------------------------------------------------- the network

def test_maps_agree_with_the_avc_model(model):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (3, 224, 224, 3)).astype(np.float32)
    windows = rng.normal(0, 0.1, (3, 48000)).astype(np.float32)
    maps = localize.correspondence_maps(model, images, windows, batch_size=2)
    assert maps.image_logit.shape == (3, 28, 28)
    assert maps.audio_logit.shape == (3, 16, 24)  # mel128: 128 / 8 rows, 199 // 8 columns
    assert maps.spectrogram.shape == (3, 128, 199)
    expected = model.avc_model.predict({"audio": windows, "image": images}, verbose=0)[:, 1]
    np.testing.assert_allclose(localize.probability(maps.pair_logit), expected, atol=1e-5)
    # the image map pairs the pooled audio vector with each position's own features (both
    # after conv4_2's BN and ReLU, which pool4 takes the maximum of)
    features = network.pool4_activations(model.image_pool4, model.image_trunk(images))
    spec = model.spectrogram(windows)
    audio_vec = network.pool4_activations(model.audio_pool4,
                                          model.audio_trunk(spec)).max(axis=(1, 2))
    joint = np.concatenate([audio_vec[0], features[0, 5, 7]])[None].astype(np.float32)
    p = model.fusion.predict(joint, verbose=0)[0, 1]
    assert localize.probability(maps.image_logit[0, 5, 7]) == pytest.approx(p, abs=1e-5)
    with pytest.raises(OpenL3liteError, match="2 audio windows"):
        localize.correspondence_maps(model, images, windows[:2])


def test_model_file_round_trip_and_refusals(model, model_file, tmp_path):
    loaded = L3Net.from_file(model_file, "localisation")
    assert loaded.metadata.width == WIDTH and loaded.metadata.input_repr == "mel128"
    rng = np.random.default_rng(1)
    inputs = {"audio": rng.normal(0, 0.1, (2, 48000)).astype(np.float32),
              "image": rng.uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)}
    np.testing.assert_allclose(loaded.avc_model.predict(inputs, verbose=0),
                               model.avc_model.predict(inputs, verbose=0), atol=1e-6)
    no_fusion = _save(model, tmp_path / "nofusion.h5", ("audio", "image"))
    with pytest.raises(OpenL3liteError, match=r"nofusion\.h5.*no fusion part"):
        L3Net.from_file(no_fusion, "localisation")
    with pytest.raises(OpenL3liteError, match="no fusion head"):
        L3Net.from_file(require(FIXTURES / "openl3_audio_random.h5"), "localisation")
    with pytest.raises(OpenL3liteError, match="missing.h5: model file not found"):
        L3Net.from_file(tmp_path / "missing.h5", "localisation")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(OpenL3liteError, match="junk.h5"):
        L3Net.from_file(tmp_path / "junk.h5", "localisation")


def test_localize_video(model, corpus, tmp_path):
    video = corpus / "theo_000.mp4"
    sidecar = json.loads((corpus / "theo_000.json").read_text())
    result = localize.localize_video(video, model, fps=None, frame_indices=[0, 3, 7])
    assert result.frames.shape == (3, 128, 128, 3)
    np.testing.assert_allclose(result.times, [0.0, 0.3, 0.7])
    np.testing.assert_allclose(result.audio_centres, [0.05, 0.35, 0.75])
    assert result.maps.image_logit.shape == (3, 32, 32)  # 128 px scaled to 256, / 8
    assert result.image_map(1).shape == (128, 128) and result.audio_map(1).shape == (128, 199)
    peaks = result.peaks()
    assert peaks.shape == (3, 2) and np.all((peaks >= 0) & (peaks < 128))
    assert sidecar["n_frames"] == 22
    every = localize.localize_video(video, model, fps=2.0)
    np.testing.assert_allclose(every.times, np.arange(len(every.times)) / 2.0)
    assert len(every.times) == 4  # 2.2 s of video at 2 frames/s: 0, 0.5, 1, 1.5 s
    with pytest.raises(OpenL3liteError, match="frame index out of range"):
        localize.localize_video(video, model, fps=None, frame_indices=[22])
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(OpenL3liteError, match="bad.mp4"):
        localize.localize_video(tmp_path / "bad.mp4", model)


# ---------------------------------------------------------------- the command

def test_cli_writes_maps_pngs_and_video(model_file, corpus, tmp_path):
    from moviepy import VideoFileClip

    out = tmp_path / "out"
    runner = CliRunner()
    args = ["localize", str(corpus / "theo_000.mp4"), "-o", str(out), "--model", str(model_file),
            "--fps", "2", "--video", "-q"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    with np.load(out / "theo_000_localize.npz") as data:
        assert data["image_probability"].shape == (4, 32, 32)
        assert data["audio_probability"].shape == (4, 16, 24)
        assert data["spectrogram"].shape == (4, 128, 199)
        assert data["frame_size"].tolist() == [128, 128]
        np.testing.assert_allclose(data["image_probability"],
                                   localize.probability(data["image_logit"]))
        assert np.all((data["pair_probability"] >= 0) & (data["pair_probability"] <= 1))
    pngs = sorted(p.name for p in (out / "theo_000_localize").iterdir())
    assert len(pngs) == 8 and pngs[0] == "0000.000s_audio.png"
    assert (out / "theo_000_localize" / pngs[1]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    clip = VideoFileClip(str(out / "theo_000_localize.mp4"))
    try:
        assert clip.audio is not None and clip.size == [128, 128]
        assert clip.duration == pytest.approx(2.0, abs=0.15)
    finally:
        clip.close()
    again = runner.invoke(main, args)  # outputs exist: skipped, not overwritten
    assert again.exit_code == 0 and "1 skipped" in again.output
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"junk")
    failed = runner.invoke(main, ["localize", str(bad), "-o", str(out), "--model",
                                  str(model_file), "-q"])
    assert failed.exit_code == 1 and "bad.mp4" in failed.output
    assert not (out / "bad_localize.npz").exists()


def test_cli_refuses_a_model_without_fusion_head(corpus, tmp_path):
    result = CliRunner().invoke(main, ["localize", str(corpus / "theo_000.mp4"), "-o",
                                       str(tmp_path), "--model",
                                       str(require(FIXTURES / "openl3_image_random.h5"))])
    assert result.exit_code == 2 and "no fusion head" in result.output


# ---------------------------------------------------------------- the pointing game

def test_pointing_game_script(model_file, corpus, tmp_path):
    game = _load(REPO / "examples" / "avdigits" / "pointing_game.py", "pointing_game")
    sidecar = json.loads((corpus / "theo_000.json").read_text())
    indices, boxes = game.scored_frames(sidecar)
    spoken = [range(*s["spoken_frames"]) for s in sidecar["segments"]]
    assert indices == [k for r in spoken for k in r]
    assert game.main([str(corpus), "--model", str(model_file), "-o", str(tmp_path),
                      "--examples", "1", "-q"]) == 0
    report = json.loads((tmp_path / "pointing_game.json").read_text())
    assert report["frames"] == len(indices) and report["videos"] == 1
    results = report["results"]
    centre = np.mean([localize.point_in_box((64.0, 64.0), b) for b in boxes])
    assert results["centre prior"]["accuracy"] == pytest.approx(centre)
    share = np.mean([(b[2] - b[0]) * (b[3] - b[1]) / 128 ** 2 for b in boxes])
    assert results["chance"]["accuracy"] == pytest.approx(share)
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in results.values())
    mine = localize.localize_video(corpus / "theo_000.mp4", L3Net.from_file(model_file),
                                   fps=None, frame_indices=indices)
    hits = localize.pointing_hits(mine.peaks(), boxes)
    assert results[f"trained (random-w{WIDTH})"]["accuracy"] == pytest.approx(hits.mean())
    assert "| centre prior |" in (tmp_path / "pointing_game.md").read_text()
    assert len(list(tmp_path.glob("trained_*.png"))) == 1
    assert len(list(tmp_path.glob("random_*.png"))) == 1
    assert game.main([str(tmp_path), "--model", str(model_file), "-o", str(tmp_path)]) == 2
