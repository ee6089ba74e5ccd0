"""Linear-probe evaluation on real FSDD clips, loaders and report files."""

import os

import numpy as np
import pytest

from conftest import FSDD, require
from openl3lite import evaluation
from openl3lite.errors import OpenL3liteError
from openl3lite.facts import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS


@pytest.fixture(scope="module")
def small_fsdd():
    """Digits 0 and 1 of three speakers: 20 clips per digit per speaker."""
    clips = evaluation.fsdd_clip_set(str(require(FSDD)))
    keep = [i for i, (path, label, group) in enumerate(zip(clips.paths, clips.labels,
                                                           clips.groups))
            if label in ("0", "1") and group in ("george", "jackson", "theo")
            and int(os.path.basename(path).split("_")[2][:-4]) < 20]
    return evaluation.ClipSet([clips.paths[i] for i in keep], [clips.labels[i] for i in keep],
                              [clips.groups[i] for i in keep])


def test_fsdd_clip_set_has_speakers():
    clips = evaluation.fsdd_clip_set(str(require(FSDD)))
    assert len(clips.paths) == 3000 and set(clips.labels) == set("0123456789")
    assert set(clips.groups) == {"george", "jackson", "lucas", "nicolas", "theo", "yweweler"}


def test_logmel_probe_beats_chance_on_unseen_speaker(small_fsdd, tmp_path):
    features = {"log-mel statistics": evaluation.logmel_features(small_fsdd.paths,
                                                                 progress=False)}
    report = evaluation.evaluate(small_fsdd, features, ["george", "jackson"], ["theo"])
    result = report["results"]["log-mel statistics"]
    assert report["n_test"] == 40 and report["n_train"] == 80
    assert result.accuracy > 0.7  # 0 vs 1 by an unseen speaker; chance is 0.5
    written = evaluation.write_report(report, tmp_path)
    assert (tmp_path / "report.md").read_text().startswith("linear probe")
    png = [p for p in written if p.endswith(".png")][0]
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_network_features_and_kfold(small_fsdd):
    from openl3lite.models import random_audio_model

    model = random_audio_model("mel128", 512, width=0.0625, seed=0)
    subset = evaluation.ClipSet(small_fsdd.paths[::4], small_fsdd.labels[::4],
                                small_fsdd.groups[::4])
    x = evaluation.audio_clip_features(subset.paths, model, progress=False)
    assert x.shape == (len(subset.paths), 1024) and np.all(np.isfinite(x))
    report = evaluation.evaluate(subset, {"random": x}, kfold=3)
    assert len(report["results"]["random"].fold_accuracies) == 3


def test_kfold_scores_held_out_speakers(small_fsdd):
    """k-fold holds out whole speakers (GroupKFold): features that give the label away score 1
    on every fold, noise scores about chance, and features whose label code is reversed for
    one speaker score about 0 on the fold that holds that speaker out (a split that mixed
    speakers would score about 2/3 there)."""
    labels = np.asarray(small_fsdd.labels)
    groups = np.asarray(small_fsdd.groups)
    rng = np.random.default_rng(0)
    code = np.where(labels == "1", 1.0, -1.0)[:, None]
    noise = rng.standard_normal((len(labels), 4))
    reversed_for_theo = code * np.where(groups == "theo", -1.0, 1.0)[:, None]
    report = evaluation.evaluate(small_fsdd, {
        "label": np.hstack([code, 0.01 * noise]), "noise": noise,
        "reversed for theo": np.hstack([reversed_for_theo, 0.01 * noise])}, kfold=3)
    results = report["results"]
    assert results["label"].fold_accuracies == [1.0, 1.0, 1.0]
    assert 0.25 < np.mean(results["noise"].fold_accuracies) < 0.75
    folds = results["reversed for theo"].fold_accuracies
    assert sorted(folds)[0] < 0.05 and all(0.2 < f < 0.8 for f in sorted(folds)[1:]), folds


def test_cli_leaves_out_unreadable_files_and_refuses_impossible_plans(small_fsdd, tmp_path):
    """`l3embed evaluate` keeps going past a bad file (reported, left out of every feature set,
    listed in report.json, exit status 1); a k-fold count or split the clips cannot support is
    refused before anything is embedded."""
    import json
    import shutil

    from click.testing import CliRunner

    from openl3lite import network
    from openl3lite.cli import main
    from openl3lite.weights import ModelMetadata, save_model_file

    model_file = tmp_path / "tiny.h5"
    save_model_file(model_file, {"audio": network.build_audio_trunk("mel128", 0.0625)},
                    ModelMetadata(name="tiny", input_repr="mel128", width=0.0625,
                                  image_scaling="symmetric"))
    root = tmp_path / "labels"
    for i, (path, label) in enumerate(zip(small_fsdd.paths[::10], small_fsdd.labels[::10])):
        (root / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / label / os.path.basename(path))
    bad = root / "1" / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    n_good = len(list(root.rglob("*.wav"))) - 1
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["evaluate", str(root), "--model", str(model_file),
                                       "-o", str(out), "-q", "--no-logmel-baseline"])
    assert result.exit_code == 1, result.output
    assert f"error: {bad}: not a readable audio file" in result.output
    report = json.loads((out / "report.json").read_text())
    assert [path for path, _ in report["skipped"]] == [str(bad)]
    assert report["n_train"] + report["n_test"] == n_good
    assert set(report["results"]) == {"tiny", "random weights (width 0.0625)"}
    assert "1 unreadable file(s) left out" in (out / "report.md").read_text()

    for args, message in ((["--kfold", "40"], "kfold 40 needs at least 40 clips of every label"),
                          (["--kfold", "1"], "invalid kfold 1"),
                          (["--test-fraction", "1.5"], "invalid test_fraction 1.5")):
        refused = CliRunner().invoke(main, ["evaluate", str(root), "--model", str(model_file),
                                            "-q", *args])
        assert refused.exit_code == 2 and message in refused.output, refused.output
        assert "Traceback" not in refused.output
    shutil.rmtree(root / "1")
    (root / "1").mkdir()
    one_label = CliRunner().invoke(main, ["evaluate", str(root), "--model", str(model_file),
                                          "-q"])
    assert one_label.exit_code == 2 and "only one label" in one_label.output


def test_clip_set_loaders(tmp_path):
    for label in ("cat", "dog"):
        (tmp_path / "tree" / label).mkdir(parents=True)
        (tmp_path / "tree" / label / f"{label}1.wav").write_bytes(b"")
    clips = evaluation.load_clip_set(str(tmp_path / "tree"), (".wav",))
    assert clips.labels == ["cat", "dog"]
    (tmp_path / "labels.csv").write_text("path,label,group\na.wav,x,g1\n/abs/b.wav,y,g2\n")
    clips = evaluation.load_clip_set(str(tmp_path / "labels.csv"), (".wav",))
    assert clips.paths == [str(tmp_path / "a.wav"), "/abs/b.wav"] and clips.groups == ["g1", "g2"]
    # The AV digits export: audio and images in one CSV, speaker as group, "heldout" split.
    (tmp_path / "clips.csv").write_text(
        "path,kind,split,label,speaker\ntrain/3/a.wav,audio,train,3,george\n"
        "heldout/3/b.wav,audio,heldout,3,theo\ntrain-images/3/c.png,image,train,3,\n")
    clips = evaluation.load_clip_set(str(tmp_path / "clips.csv"), AUDIO_EXTENSIONS)
    assert clips.paths == [str(tmp_path / "train/3/a.wav"), str(tmp_path / "heldout/3/b.wav")]
    assert clips.splits == ["train", "test"] and clips.groups == ["george", "theo"]
    images = evaluation.load_clip_set(str(tmp_path / "clips.csv"), IMAGE_EXTENSIONS)
    assert images.paths == [str(tmp_path / "train-images/3/c.png")] and images.splits == ["train"]
    (tmp_path / "odd.csv").write_text("path,label,split\na.wav,x,validation\n")
    with pytest.raises(OpenL3liteError, match="split"):
        evaluation.load_clip_set(str(tmp_path / "odd.csv"), (".wav",))
    (tmp_path / "bad.csv").write_text("file,class\na.wav,x\n")
    with pytest.raises(OpenL3liteError, match="path"):
        evaluation.load_clip_set(str(tmp_path / "bad.csv"), (".wav",))


def test_embedding_map_plot(tmp_path):
    from openl3lite.plots import plot_embedding_maps

    rng = np.random.default_rng(0)
    labels = ["a"] * 20 + ["b"] * 20
    features = {"trained": np.r_[rng.normal(0, 1, (20, 8)), rng.normal(4, 1, (20, 8))],
                "random": rng.normal(0, 1, (40, 8))}
    plot_embedding_maps(features, labels, str(tmp_path / "map.png"))
    assert (tmp_path / "map.png").stat().st_size > 1000
