"""The audio-visual digits corpus generator (examples/avdigits/make_avdigits.py), on real FSDD data.

A tiny corpus (one train and one heldout speaker, one video of three utterances each, 128 px) is
generated once per module and decoded back with moviepy.
"""

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
FSDD = SHARED / "data" / "fsdd"
SCRIPT = REPO / "examples" / "avdigits" / "make_avdigits.py"
TINY = ["--speakers", "george", "theo", "--videos-per-speaker", "1",
        "--utterances-per-video", "3", "--size", "128", "--workers", "1", "--quiet"]


def _load_script():
    spec = importlib.util.spec_from_file_location("make_avdigits", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_avdigits"] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


mk = _load_script()


@pytest.fixture(scope="module")
def fsdd():
    if not (FSDD / "recordings").is_dir():
        pytest.skip(f"FSDD not found at {FSDD} (CI places ../shared beside the checkout)")
    return FSDD


@pytest.fixture(scope="module")
def corpus(fsdd, tmp_path_factory):
    out = tmp_path_factory.mktemp("avdigits")
    assert mk.main(["--fsdd", str(fsdd), "-o", str(out), "--seed", "3", *TINY]) == 0
    return out


def _sidecars(out):
    return {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*_*.json"))}


def _frames(path, fps):
    from moviepy import VideoFileClip

    clip = VideoFileClip(str(path))
    try:
        return np.stack(list(clip.iter_frames(fps=fps, dtype="uint8"))).astype(np.float64)
    finally:
        clip.close()


def test_corpus_json_lists_videos_splits_and_licences(corpus):
    summary = json.loads((corpus / "corpus.json").read_text())
    assert [(v["video"], v["speaker"], v["split"]) for v in summary["videos"]] == [
        ("george_000.mp4", "george", "train"), ("theo_000.mp4", "theo", "heldout")]
    assert summary["seed"] == 3 and summary["arguments"]["seed"] == 3
    assert "CC BY-SA 4.0" in summary["licences"]["fsdd"]
    assert "CC BY 4.0" in summary["licences"]["digits"]
    assert summary["failed"] == {}
    assert summary["totals"]["train"]["videos"] == 1
    assert summary["totals"]["heldout"]["segments"] == 3
    assert not list(corpus.glob(".tmp-*"))


def test_videos_decode_with_audio_of_the_expected_duration(corpus):
    from moviepy import VideoFileClip

    for name, meta in _sidecars(corpus).items():
        clip = VideoFileClip(str(corpus / meta["video"]))
        try:
            assert tuple(clip.size) == (meta["width"], meta["height"]) == (128, 128)
            assert clip.fps == meta["fps"] == 10
            assert clip.duration == pytest.approx(meta["duration"], abs=0.1)
            assert clip.audio is not None
            assert clip.audio.duration == pytest.approx(meta["duration"], abs=0.1)
            audio = clip.audio.to_soundarray(fps=16000).mean(axis=1)
        finally:
            clip.close()
        assert len(audio) / 16000 == pytest.approx(meta["duration"], abs=0.1)
        speech = np.zeros(len(audio), bool)
        for seg in meta["segments"]:
            assert 0 <= seg["start"] < seg["end"] <= meta["duration"]
            speech[int(seg["start"] * 16000):int(seg["end"] * 16000)] = True
        # The audio track is loud during the segments and near silent between them (AAC pre-echo
        # aside: keep 50 ms away from the edges).
        near = np.convolve(speech, np.ones(1601), "same") > 0
        loud = np.sqrt(np.mean(audio[speech] ** 2))
        quiet = np.sqrt(np.mean(audio[~near] ** 2))
        assert loud > 20 * quiet, name


@pytest.fixture(scope="module")
def spoken_corpus(fsdd, tmp_path_factory):
    out = tmp_path_factory.mktemp("avdigits_spoken")
    assert mk.main(["--fsdd", str(fsdd), "-o", str(out), "--seed", "3", "--display", "spoken",
                    "--background", "video", *TINY]) == 0
    return out


def test_nearest_display_tiles_the_video(corpus):
    for name, meta in _sidecars(corpus).items():
        assert meta["display"] == "nearest"
        shown = [tuple(seg["frames"]) for seg in meta["segments"]]
        assert shown[0][0] == 0 and shown[-1][1] == meta["n_frames"]
        assert all(a[1] == b[0] for a, b in zip(shown, shown[1:])), name
        for seg in meta["segments"]:
            first, end = seg["frames"]
            said_first, said_end = seg["spoken_frames"]
            assert first <= said_first < said_end <= end
            assert said_first / meta["fps"] == pytest.approx(seg["start"], abs=1e-3)
            assert seg["end"] <= said_end / meta["fps"] < seg["end"] + 1 / meta["fps"]


def test_each_segment_has_a_background_of_its_own(corpus):
    """Default --background segment: nothing in the picture but the digit ties it to its video."""
    for name, meta in _sidecars(corpus).items():
        assert meta["background"] == "segment"
        frames = _frames(corpus / meta["video"], meta["fps"])
        pictures, masks = [], []
        for seg in meta["segments"]:
            assert seg["background"] in ("plain", "gradient", "texture")
            first, end = seg["frames"]
            clip = frames[first:end]
            assert np.abs(clip - clip[0]).mean(axis=(1, 2, 3)).max() < 3, name  # static
            outside = np.ones(clip.shape[1:3], bool)  # background: away from the digit's patch
            x0, y0, x1, y1 = seg["patch"]
            outside[max(0, y0 - 2):y1 + 2, max(0, x0 - 2):x1 + 2] = False
            pictures.append(clip[0])
            masks.append(outside)
        changes = [np.abs(a - b)[m & n].mean() for a, b, m, n in
                   zip(pictures, pictures[1:], masks, masks[1:])]
        assert min(changes) > 5, (name, changes)  # a new background at every segment


def test_display_frames_boundaries_in_the_middle_of_gaps():
    spoken = [(2, 5), (9, 12), (13, 20)]
    assert mk.display_frames(spoken, 24, "spoken") == spoken
    assert mk.display_frames(spoken, 24, "nearest") == [(0, 7), (7, 13), (13, 24)]
    with pytest.raises(mk.AVDigitsError, match="display rule"):
        mk.display_frames(spoken, 24, "sometimes")


def test_digit_shown_in_its_box_only_while_spoken(spoken_corpus):
    corpus = spoken_corpus
    for name, meta in _sidecars(corpus).items():
        frames = _frames(corpus / meta["video"], meta["fps"])
        assert len(frames) == meta["n_frames"]
        shown = np.zeros(len(frames), bool)
        for seg in meta["segments"]:
            first, end = seg["frames"]
            assert [first, end] == seg["spoken_frames"]
            shown[first:end] = True
            # The frames that show the digit cover the whole utterance (starts on the grid).
            assert first / meta["fps"] == pytest.approx(seg["start"], abs=1e-3)
            assert seg["end"] <= end / meta["fps"] < seg["end"] + 1 / meta["fps"]
        background = frames[~shown]
        assert len(background) >= len(meta["segments"]) + 1
        reference = np.median(background, axis=0)
        # Outside segments the picture is the (static) background everywhere.
        assert np.abs(background - reference).mean(axis=(1, 2, 3)).max() < 3, name
        for seg in meta["segments"]:
            x0, y0, x1, y1 = seg["box"]
            assert 0 <= x0 < x1 <= meta["width"] and 0 <= y0 < y1 <= meta["height"]
            assert x1 - x0 >= 10 and y1 - y0 >= 20
            inside = np.zeros(reference.shape[:2], bool)
            inside[y0:y1, x0:x1] = True
            for frame in frames[seg["frames"][0]:seg["frames"][1]]:
                diff = np.abs(frame - reference).mean(axis=2)
                assert diff[inside].mean() > 10, (name, seg["digit"])
                px0, py0, px1, py1 = seg["patch"]
                outside = np.ones_like(inside)
                outside[max(py0 - 4, 0):py1 + 4, max(px0 - 4, 0):px1 + 4] = False
                assert diff[outside].mean() < 3, (name, seg["digit"])


def test_sidecar_records_segments(corpus, fsdd):
    images, labels = mk.load_digit_images()
    for name, meta in _sidecars(corpus).items():
        assert meta["speaker"] == name.split("_")[0]
        assert meta["audio_sr"] == 48000
        assert len(meta["segments"]) == 3
        for seg in meta["segments"]:
            digit, speaker, _ = seg["recording"][:-4].split("_")
            assert int(digit) == seg["digit"] and speaker == meta["speaker"]
            assert (fsdd / "recordings" / seg["recording"]).exists()
            assert labels[seg["digit_image_index"]] == seg["digit"]


def test_train_and_heldout_are_disjoint(fsdd):
    images, labels = mk.load_digit_images()
    split = mk.digit_image_split(labels)
    train = np.concatenate(list(split["train"].values()))
    heldout = np.concatenate(list(split["heldout"].values()))
    assert not set(train) & set(heldout)
    assert len(train) + len(heldout) == len(labels)
    recordings = mk.list_recordings(fsdd)
    plans = mk.plan_corpus(recordings, list(mk.TRAIN_SPEAKERS + mk.HELDOUT_SPEAKERS), 0, (8, 12))
    used = {"train": [], "heldout": []}
    for plan in plans:
        assert 1 <= len(plan.items) <= 12
        for rec, index in plan.items:
            assert rec.speaker == plan.speaker
            assert index in set(split[plan.split][rec.digit])
            used[plan.split].append(rec.name)
    assert {p.speaker for p in plans if p.split == "train"} == set(mk.TRAIN_SPEAKERS)
    assert {p.speaker for p in plans if p.split == "heldout"} == set(mk.HELDOUT_SPEAKERS)
    # Every recording is used exactly once by default.
    every = sorted(r.name for rs in recordings.values() for r in rs)
    assert sorted(used["train"] + used["heldout"]) == every


def test_same_seed_same_corpus_and_resume(corpus, fsdd, tmp_path):
    again = tmp_path / "again"
    assert mk.main(["--fsdd", str(fsdd), "-o", str(again), "--seed", "3", *TINY]) == 0
    for name in ("george_000", "theo_000"):
        assert (again / f"{name}.json").read_text() == (corpus / f"{name}.json").read_text()
        assert (again / f"{name}.mp4").read_bytes() == (corpus / f"{name}.mp4").read_bytes()
    # Existing videos are skipped unless --overwrite.
    video = again / "george_000.mp4"
    stamp = video.stat().st_mtime_ns
    (again / "theo_000.json").unlink()  # an interrupted video is rebuilt
    assert mk.main(["--fsdd", str(fsdd), "-o", str(again), "--seed", "3", *TINY]) == 0
    assert video.stat().st_mtime_ns == stamp
    assert (again / "theo_000.json").read_text() == (corpus / "theo_000.json").read_text()
    other = tmp_path / "other"
    assert mk.main(["--fsdd", str(fsdd), "-o", str(other), "--seed", "4", *TINY]) == 0
    assert (other / "george_000.json").read_text() != (corpus / "george_000.json").read_text()


def test_timeline_starts_on_frames_with_gaps():
    rng = np.random.default_rng(0)
    lengths = [4000, 20000, 48000, 100]
    frames, n_frames = mk.layout_timeline(lengths, 48000, 10, (0.2, 0.8), rng)
    previous_end = 0
    for (first, end), n in zip(frames, lengths):
        assert first - previous_end >= 2  # at least 0.2 s of background before each
        assert end - first == int(np.ceil(n / 4800))
        previous_end = end
    assert n_frames - previous_end >= 2


def test_export_clips(fsdd, tmp_path):
    out = tmp_path / "clips"
    assert mk.main(["--fsdd", str(fsdd), "-o", str(tmp_path / "unused"), "--no-videos",
                    "--speakers", "theo", "--size", "128", "--export-clips", str(out),
                    "--export-max-images", "2", "--quiet"]) == 0
    assert not (tmp_path / "unused").exists()
    wavs = sorted(out.glob("heldout/*/*.wav"))
    assert len(wavs) == 500 and all(w.name.startswith(w.parent.name + "_theo_") for w in wavs)
    pngs = sorted(out.glob("heldout-images/*/*.png"))
    assert len(pngs) == 20 and not (out / "train").exists()
    with open(out / "clips.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 520
    _, labels = mk.load_digit_images()
    from PIL import Image

    for row in rows:
        if row["kind"] == "image":
            index = int(row["source"].split("[")[1].rstrip("]"))
            assert labels[index] == int(row["label"])
            picture = np.asarray(Image.open(out / row["path"]))
            assert picture.shape == (128, 128, 3)
            x0, y0, x1, y1 = (int(row[k]) for k in ("x0", "y0", "x1", "y1"))
            assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128


def test_clear_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        mk.main(["--fsdd", str(tmp_path / "missing"), "-o", str(tmp_path / "out")])
    assert info.value.code == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty" / "recordings").mkdir(parents=True)
    with pytest.raises(SystemExit):
        mk.main(["--fsdd", str(tmp_path / "empty"), "-o", str(tmp_path / "out")])
    assert "no recordings" in capsys.readouterr().err
    (tmp_path / "empty" / "recordings" / "3_alice_0.wav").write_bytes(b"")
    with pytest.raises(SystemExit):
        mk.main(["--fsdd", str(tmp_path / "empty"), "-o", str(tmp_path / "out"),
                 "--speakers", "bob"])
    assert "not in the FSDD folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mk.main(["--fsdd", str(tmp_path / "empty"), "-o", str(tmp_path / "out"),
                 "--speakers", "alice"])
    assert "has no split" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mk.main(["--fsdd", str(tmp_path / "empty"), "-o", str(tmp_path / "out"),
                 "--size", "100x63"])
    assert "must be even" in capsys.readouterr().err


def test_font_glyphs_show_the_right_digits():
    """Typeset digits look like the handwritten ones of the same label: a classifier trained on
    the UCI digits reads the (downscaled) font digits far above chance (10%)."""
    from skimage.transform import resize
    from sklearn.linear_model import LogisticRegression

    handwritten, labels = mk.load_digit_images("handwritten")
    fonts, font_labels = mk.load_digit_images("fonts")
    assert fonts.shape == (10 * len(mk.DIGIT_FONTS), mk.GLYPH_SIZE, mk.GLYPH_SIZE)
    assert 0 <= fonts.min() and fonts.max() <= 1
    assert np.array_equal(np.bincount(font_labels), np.full(10, len(mk.DIGIT_FONTS)))
    small = np.stack([resize(f, (8, 8), anti_aliasing=True) for f in fonts])
    reader = LogisticRegression(max_iter=2000).fit(handwritten.reshape(len(handwritten), -1),
                                                   labels)
    assert (reader.predict(small.reshape(len(small), -1)) == font_labels).mean() > 0.5
    # Each font's glyphs are split between train and heldout like the handwritten images.
    split = mk.digit_image_split(font_labels)
    for digit in range(10):
        assert len(split["train"][digit]) == len(split["heldout"][digit]) == 8
        assert not set(split["train"][digit]) & set(split["heldout"][digit])
    with pytest.raises(mk.AVDigitsError, match="glyph set"):
        mk.load_digit_images("graffiti")


def test_font_corpus_and_clips(fsdd, tmp_path):
    out = tmp_path / "fonts"
    assert mk.main(["--fsdd", str(fsdd), "-o", str(out), "--glyphs", "fonts",
                    "--export-clips", str(tmp_path / "clips"), "--export-max-images", "1",
                    *TINY]) == 0
    summary = json.loads((out / "corpus.json").read_text())
    assert summary["render"]["glyphs"] == "fonts" and "fonts" in summary["licences"]
    _, labels = mk.load_digit_images("fonts")
    split = mk.digit_image_split(labels)
    for meta in _sidecars(out).values():
        for seg in meta["segments"]:
            assert labels[seg["digit_image_index"]] == seg["digit"]
            assert seg["digit_image_index"] in set(split[meta["split"]][seg["digit"]])
    with open(tmp_path / "clips" / "clips.csv") as f:
        images = [row for row in csv.DictReader(f) if row["kind"] == "image"]
    assert len(images) == 20
    for row in images:
        _, font, digit = row["source"].split(":")
        assert font in mk.DIGIT_FONTS and int(digit) == int(row["label"])
