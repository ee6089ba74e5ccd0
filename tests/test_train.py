"""AVC training on a few generated videos: logs, refusals, kill -9 and resume, export, embedding.

Tiny settings (width 0.0625, batch 4, a handful of steps) keep the whole module well under a
minute and a half on two CPU cores.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import openl3lite
from openl3lite.errors import OpenL3liteError

from conftest import FIXTURES, require, write_test_video

REPO = Path(__file__).resolve().parents[1]
TINY = dict(width=0.0625, batch_size=4, val_fraction=0.25, val_batches=1, workers=2,
            progress=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A prepared dataset of 4 videos of 2-3.5 s (1 held out for validation at 0.25)."""
    from openl3lite.training.prepare import prepare_dataset

    folder = tmp_path_factory.mktemp("videos")
    videos = []
    for i in range(4):
        videos.append(folder / f"clip{i}.mp4")
        write_test_video(videos[-1], 2.0 + 0.5 * i, i, fps=4, size=(256, 240))
    out = tmp_path_factory.mktemp("dataset")
    prepare_dataset([str(v) for v in videos], str(out), fps=4, workers=2, progress=False)
    return str(out)


def _read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _checkpoint_arrays(run_dir):
    from openl3lite.training.train import read_checkpoint_state

    state, path = read_checkpoint_state(run_dir)
    with np.load(path) as data:
        return state, {k: data[k] for k in data.files}


def test_train_logs_and_refusals(dataset, tmp_path):
    from openl3lite.training.train import train

    run = tmp_path / "run"
    result = train(dataset, run, steps=4, eval_every=2, checkpoint_every=3, **TINY)
    assert result.step == 4 and not result.interrupted
    rows = _read_csv(run / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [2, 4]
    for row in rows:
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert np.isfinite(float(row[key])), (key, row)
    assert (run / "curves.png").stat().st_size > 1000
    config = json.loads((run / "config.json").read_text())
    assert config["width"] == 0.0625 and config["steps"] == 4 and config["optimizer"] == "AdamW"
    state, arrays = _checkpoint_arrays(run)
    assert state["step"] == 4 and len(state["history"]) == 2
    assert [f for f in os.listdir(run / "checkpoint")] == ["state.json", "step-00000004.npz"]

    # Held-out AVC accuracy of the exported model: reproducible, on the pairs asked for.
    from click.testing import CliRunner

    from openl3lite.cli import main
    from openl3lite.training.export import export_model

    export_model(run, tmp_path / "run.h5", "tiny-logs")
    args = ["evaluate-avc", str(tmp_path / "run.h5"), dataset, "--pairs", "10", "-b", "4", "-q"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    lines = first.output.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("tiny-logs: AVC accuracy")
    assert "random weights (width 0.0625)" in lines[1] and "on 12 pairs" in lines[0]
    accuracy = float(lines[0].split("AVC accuracy ")[1].split()[0])
    assert 0.0 <= accuracy <= 1.0
    assert CliRunner().invoke(main, args).output == first.output
    missing = CliRunner().invoke(main, ["evaluate-avc", str(tmp_path / "run.h5"),
                                        str(tmp_path)])
    assert missing.exit_code == 2 and "error:" in missing.output

    with pytest.raises(OpenL3liteError, match="not empty"):
        train(dataset, run, steps=4, **TINY)
    with pytest.raises(OpenL3liteError, match="width"):
        train(dataset, run, steps=6, resume=True, **dict(TINY, width=0.125))
    with pytest.raises(OpenL3liteError, match="batch_size"):
        train(dataset, tmp_path / "other", steps=4, **dict(TINY, batch_size=3))
    with pytest.raises(OpenL3liteError, match="bn_batches -1"):
        train(dataset, tmp_path / "other", steps=4, bn_batches=-1, **TINY)
    assert not (tmp_path / "other").exists()


def test_learning_rate_changes_on_resume_are_logged_and_exported(dataset, tmp_path):
    """metrics.csv and the checkpoint record the learning rate of every step, the checkpoint
    also the speed jitter's; export copies both schedules into the model file's metadata."""
    from openl3lite.training.export import export_model
    from openl3lite.training.train import read_checkpoint_state, record_setting, train

    run = tmp_path / "run"
    tiny = dict(TINY, learning_rate=1e-3)
    train(dataset, run, steps=4, eval_every=2, checkpoint_every=2, **tiny)
    train(dataset, run, steps=4, eval_every=2, checkpoint_every=2, resume=True,
          **dict(tiny, learning_rate=5e-4))  # nothing left to train: no step used 5e-4
    train(dataset, run, steps=6, eval_every=2, checkpoint_every=2, resume=True,
          **dict(tiny, learning_rate=2e-4))
    rows = _read_csv(run / "metrics.csv")
    assert [(int(r["step"]), float(r["learning_rate"])) for r in rows] == \
        [(2, 1e-3), (4, 1e-3), (6, 2e-4)]
    state, _ = read_checkpoint_state(run)
    assert state["learning_rates"] == [[1, 1e-3], [5, 2e-4]]
    train(dataset, run, steps=8, eval_every=2, checkpoint_every=2, resume=True,
          speed_jitter=0.05, **dict(tiny, learning_rate=2e-4))  # augmentation may change too
    assert read_checkpoint_state(run)[0]["learning_rates"] == [[1, 1e-3], [5, 2e-4]]
    metadata = export_model(run, tmp_path / "run.h5", "tiny-lr")
    assert metadata.extra["speed_jitter"] == 0.05
    assert metadata.extra["learning_rate_schedule"] == [[1, 1e-3], [5, 2e-4]]
    assert metadata.extra["speed_jitter_schedule"] == [[1, 0.0], [7, 0.05]]
    assert metadata.extra["learning_rate"] == 2e-4

    old_run = {"step": 300}  # a checkpoint written before the record existed
    record_setting(old_run, "learning_rate", 1e-4)
    record_setting(old_run, "speed_jitter", 0.1)
    assert old_run["learning_rates"] == [[301, 1e-4]] and old_run["speed_jitters"] == [[301, 0.1]]


def test_export_can_recompute_batchnorm_for_runs_trained_without(dataset, tmp_path):
    """BatchNorm statistics do not steer training, so a run trained with bn_batches=0 and
    exported with --bn-batches 3 holds exactly the statistics of the same run trained with
    bn_batches=3; exported as it is, it holds Keras' stale moving averages."""
    from click.testing import CliRunner

    from openl3lite.cli import main
    from openl3lite.training.export import export_model
    from openl3lite.training.train import train
    from openl3lite.weights import read_model_file

    plain, refreshed = tmp_path / "plain", tmp_path / "refreshed"
    train(dataset, plain, steps=3, eval_every=3, bn_batches=0, **TINY)
    train(dataset, refreshed, steps=3, eval_every=3, bn_batches=3, **TINY)
    runner = CliRunner()
    for args in ([str(plain), str(tmp_path / "stale.h5")],
                 [str(plain), str(tmp_path / "late.h5"), "--bn-batches", "3"]):
        done = runner.invoke(main, ["export", *args])
        assert done.exit_code == 0, done.output
    export_model(refreshed, tmp_path / "reference.h5", "reference")
    stale, late, reference = (read_model_file(tmp_path / f"{n}.h5")
                              for n in ("stale", "late", "reference"))
    assert late[0].extra["batchnorm_recomputed_at_export"] == 3
    assert "batchnorm_recomputed_at_export" not in stale[0].extra
    n_batchnorm = 0
    for part, layers in reference[1].items():
        for layer, arrays in layers.items():
            for i, array in enumerate(arrays):
                np.testing.assert_allclose(late[1][part][layer][i], array, rtol=1e-5,
                                           atol=1e-6, err_msg=f"{part}/{layer}/{i}")
            if "bn" in layer and len(arrays) == 4:  # gamma, beta, moving mean, variance
                n_batchnorm += 1
                assert not np.allclose(stale[1][part][layer][2], arrays[2])  # moving mean
    assert n_batchnorm > 0
    bad = runner.invoke(main, ["export", str(plain), str(tmp_path / "x.h5"), "--bn-batches",
                               "-1"])
    assert bad.exit_code == 2 and not (tmp_path / "x.h5").exists()


def test_loading_a_checkpoint_that_a_running_training_replaces(dataset, tmp_path, monkeypatch):
    """The file state.json names may be removed by a training run writing a newer checkpoint
    before it is read; loading then reads the newer one, and says so clearly if none comes."""
    import shutil

    from openl3lite.training import checkpoints
    from openl3lite.training.train import load_checkpoint, train

    run = tmp_path / "run"
    train(dataset, run, steps=2, eval_every=2, **TINY)
    folder = run / "checkpoint"
    state = json.loads((folder / "state.json").read_text())
    shutil.move(folder / state["checkpoint"], tmp_path / "moved.npz")  # removed mid-read

    def newer_checkpoint_arrives(seconds):  # what the training process does meanwhile
        shutil.move(tmp_path / "moved.npz", folder / "step-00000003.npz")
        (folder / "state.json").write_text(json.dumps(dict(state, step=3,
                                                           checkpoint="step-00000003.npz")))

    monkeypatch.setattr(checkpoints.time, "sleep", newer_checkpoint_arrives)
    net, loaded = load_checkpoint(run)
    assert loaded["step"] == 3 and net.avc_model.count_params() > 0
    (folder / "step-00000003.npz").unlink()
    monkeypatch.setattr(checkpoints.time, "sleep", lambda seconds: None)
    with pytest.raises(OpenL3liteError, match="names step-00000003.npz, which is missing"):
        load_checkpoint(run)


def _train_in_subprocess(dataset, run_dir, steps):
    code = ("from openl3lite.training.train import train; "
            f"train({dataset!r}, {str(run_dir)!r}, steps={steps}, checkpoint_every=2, "
            f"eval_every=2, **{TINY!r})")
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _wait_for_checkpoint(proc, run_dir, min_step, timeout=120):
    state_path = Path(run_dir) / "checkpoint" / "state.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if state_path.exists() and json.loads(state_path.read_text())["step"] >= min_step:
            return
        if proc.poll() is not None:
            pytest.fail(f"training subprocess ended early: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no checkpoint written in time")


def test_kill_resume_matches_uninterrupted_run_then_export(dataset, tmp_path):
    """SIGKILL mid-run, resume: same weights and optimizer state as an uninterrupted run.

    Resumed runs restore every model and optimizer variable and continue with batch k = step of
    the deterministic sampler, so the results match up to float round-off of the backend's
    kernels (identical here on CPU; a small tolerance allows for thread-order effects).
    """
    from openl3lite.training.export import export_model
    from openl3lite.training.train import train

    killed = tmp_path / "killed"
    proc = _train_in_subprocess(dataset, killed, steps=10_000)
    _wait_for_checkpoint(proc, killed, min_step=2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stopped_at, _ = _checkpoint_arrays(killed)
    stopped_at = stopped_at["step"]
    assert stopped_at >= 2 and stopped_at % 2 == 0
    total = stopped_at + 2

    resumed = train(dataset, killed, steps=total, checkpoint_every=2, eval_every=2, resume=True,
                    **TINY)
    assert resumed.step == total
    steps_logged = [int(r["step"]) for r in _read_csv(killed / "metrics.csv")]
    assert steps_logged == list(range(2, total + 1, 2))  # continued, nothing redone or lost

    reference = tmp_path / "reference"
    train(dataset, reference, steps=total, checkpoint_every=2, eval_every=2, **TINY)
    state_a, arrays_a = _checkpoint_arrays(reference)
    state_b, arrays_b = _checkpoint_arrays(killed)
    assert state_a["step"] == state_b["step"] == total
    assert arrays_a.keys() == arrays_b.keys()
    for key in arrays_a:  # model weights, BN statistics, Adam moments, iteration count
        np.testing.assert_allclose(arrays_a[key], arrays_b[key], rtol=1e-5, atol=1e-6,
                                   err_msg=key)
    for row_a, row_b in zip(state_a["history"], state_b["history"]):
        assert row_a["train_loss"] == pytest.approx(row_b["train_loss"], rel=1e-4)

    out = tmp_path / "tiny.h5"
    metadata = export_model(killed, out, "tiny-test", extra={"note": "test"})
    assert metadata.width == 0.0625 and metadata.input_repr == "mel128"
    assert metadata.image_scaling == "symmetric" and metadata.content_type is None
    assert metadata.extra["training_steps"] == total and metadata.extra["note"] == "test"

    audio_model = openl3lite.load_audio_embedding_model_from_path(out, embedding_size=512)
    audio = np.sin(2 * np.pi * 440 * np.arange(24000) / 16000)
    emb, ts = openl3lite.get_audio_embedding(audio, 16000, model=audio_model, verbose=False)
    assert emb.shape == (len(ts), 512) and np.all(np.isfinite(emb))
    image_model = openl3lite.load_image_embedding_model_from_path(out, embedding_size=8192)
    image = np.full((240, 320, 3), 90, np.uint8)
    image_emb = openl3lite.get_image_embedding(image, model=image_model, verbose=False)
    assert image_emb.shape == (1, 8192) and np.all(np.isfinite(image_emb))


def test_kill_inside_a_checkpoint_write_resumes_from_the_last_complete_one(dataset, tmp_path):
    """SIGKILL while a checkpoint file is being written (its temporary file is on disk): the
    run's state still names a complete checkpoint, resuming continues from it, and the next
    checkpoint removes what the killed write left."""
    from openl3lite.training.train import train

    run = tmp_path / "run"
    folder = run / "checkpoint"
    proc = _train_in_subprocess(dataset, run, steps=10_000)
    _wait_for_checkpoint(proc, run, min_step=2)
    deadline = time.time() + 120
    caught = []
    while time.time() < deadline and proc.poll() is None and not caught:
        caught = [n for n in os.listdir(folder) if n.startswith(".tmp")]
        if not caught:
            time.sleep(0.0005)
    assert caught, "no checkpoint write was seen in progress"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state, arrays = _checkpoint_arrays(run)  # the state names a complete, readable file
    assert state["step"] >= 2 and state["step"] % 2 == 0 and arrays
    stopped_at = state["step"]

    resumed = train(dataset, run, steps=stopped_at + 2, checkpoint_every=2, eval_every=2,
                    resume=True, **TINY)
    assert resumed.step == stopped_at + 2
    steps_logged = [int(r["step"]) for r in _read_csv(run / "metrics.csv")]
    assert steps_logged == list(range(2, stopped_at + 3, 2))
    assert not [n for n in os.listdir(folder) if n.startswith(".tmp")]
    assert _checkpoint_arrays(run)[0]["step"] == stopped_at + 2


def test_train_on_jax_backend_exports_weights_tensorflow_loads(dataset, tmp_path):
    """The same training code runs on JAX (the backend of GPU machines); its export loads here."""
    pytest.importorskip("jax")  # installed by the `test` extra; absent only in a bare install
    run = tmp_path / "jax_run"
    out = tmp_path / "jax.h5"
    jax_embedding = tmp_path / "jax_embedding.npy"
    code = ("import numpy as np, openl3lite; "
            "from openl3lite.training.train import train; "
            "from openl3lite.training.export import export_model; "
            f"r = train({dataset!r}, {str(run)!r}, steps=3, checkpoint_every=2, eval_every=3, "
            f"**{TINY!r}); "
            f"export_model({str(run)!r}, {str(out)!r}, 'tiny-jax'); print('step', r.step); "
            f"m = openl3lite.load_audio_embedding_model_from_path({str(out)!r}, "
            "embedding_size=512); "
            "e, _ = openl3lite.get_audio_embedding(np.sin(np.arange(20000) / 5.0), 16000, "
            "model=m, verbose=False); "
            f"np.save({str(jax_embedding)!r}, e)")
    env = dict(os.environ, PYTHONPATH=str(REPO), KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3",
               JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "step 3" in proc.stdout
    state, arrays = _checkpoint_arrays(run)
    assert state["backend"] == "jax" and state["step"] == 3
    assert all(np.all(np.isfinite(a)) for a in arrays.values())
    row = _read_csv(run / "metrics.csv")[-1]
    assert int(row["step"]) == 3 and np.isfinite(float(row["val_loss"]))

    audio_model = openl3lite.load_audio_embedding_model_from_path(out, embedding_size=512)
    assert audio_model.metadata.extra["backend"] == "jax"
    emb, ts = openl3lite.get_audio_embedding(np.sin(np.arange(20000) / 5.0), 16000,
                                             model=audio_model, verbose=False)
    assert emb.shape == (len(ts), 512) and np.all(np.isfinite(emb))
    # TensorFlow computes from the exported file what JAX computed from it
    expected = np.load(jax_embedding)
    np.testing.assert_allclose(emb, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    assert np.std(emb, axis=0).max() > 0


def test_data_parallel_over_two_devices_on_jax(dataset, tmp_path):
    """Several local devices: batches are sharded with keras.distribution.DataParallel.

    CI has no accelerators, so JAX is given two virtual CPU devices and the trainer is told to
    treat them as accelerators; the code path is the one a multi-GPU machine takes.
    """
    pytest.importorskip("jax")
    code = (
        "import keras; import openl3lite.training.runtime as rt; "
        "from openl3lite.training.train import train; "
        "rt._accelerators = lambda: keras.distribution.list_devices(); "
        f"r = train({dataset!r}, {str(tmp_path / 'dp')!r}, steps=2, checkpoint_every=2, "
        f"eval_every=2, **{TINY!r}); "
        "d = keras.distribution.distribution(); "
        "print(type(d).__name__, len(d.device_mesh.devices.ravel()), r.step, "
        "r.metrics['train_loss'])")
    env = dict(os.environ, PYTHONPATH=str(REPO), KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=2", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    kind, n_devices, step, loss = proc.stdout.split()[-4:]
    assert (kind, n_devices, step) == ("DataParallel", "2", "2") and np.isfinite(float(loss))


def test_all_pairs_model_scores_every_combination_like_the_pair_model():
    import keras

    from openl3lite.l3net import L3Net

    net = L3Net.random("mel128", width=0.0625, seed=4)
    avc, grid_model = net.avc_model, net.all_pairs_model()
    assert grid_model is net.all_pairs_model()  # made once
    assert {id(v) for v in grid_model.weights} == {id(v) for v in avc.weights}  # shared
    rng = np.random.default_rng(0)
    audio = rng.uniform(-0.3, 0.3, (3, 48000)).astype(np.float32)
    images = rng.uniform(-1, 1, (3, 224, 224, 3)).astype(np.float32)
    grid = keras.ops.convert_to_numpy(grid_model({"audio": audio, "image": images}))
    assert grid.shape == (3, 3, 2)
    for i in range(3):  # row: image i; column: audio clip j
        pairs = keras.ops.convert_to_numpy(avc({"audio": audio, "image": images[[i] * 3]}))
        np.testing.assert_allclose(grid[i], pairs, atol=1e-5)


def test_train_with_in_batch_negatives_resume_and_export(dataset, tmp_path):
    from openl3lite.training.export import export_model
    from openl3lite.training.train import train

    run = tmp_path / "in_batch"
    settings = dict(TINY, negatives="in-batch", eval_every=2, checkpoint_every=2)
    first = train(dataset, run, steps=2, **settings)
    resumed = train(dataset, run, steps=4, resume=True, **settings)
    assert (first.step, resumed.step) == (2, 4)
    rows = _read_csv(run / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [2, 4]
    for row in rows:  # train accuracy is balanced over the grid; validation uses sampled pairs
        assert 0 <= float(row["train_acc"]) <= 1 and np.isfinite(float(row["train_loss"]))
        assert np.isfinite(float(row["val_loss"])) and 0 <= float(row["val_acc"]) <= 1
    assert json.loads((run / "config.json").read_text())["negatives"] == "in-batch"
    with pytest.raises(OpenL3liteError, match="negatives"):
        train(dataset, run, steps=6, resume=True, **TINY)
    with pytest.raises(OpenL3liteError, match="negatives"):
        train(dataset, tmp_path / "bad", steps=2, **dict(TINY, negatives="hard"))

    # The checkpoint's BatchNorm statistics were recomputed with the final weights on the run's
    # fixed BN batches: recomputing them again changes nothing (the moving averages of 4
    # steps at momentum 0.99 would still be near their initial 0 and 1).
    from openl3lite.training.batches import _pair_dataset, refresh_batchnorm
    from openl3lite.training.batchnorm import batchnorm_layers
    from openl3lite.training.prepare import load_manifest
    from openl3lite.training.sampling import split_videos
    from openl3lite.training.train import TrainConfig, load_checkpoint

    def statistics(model):
        return [np.array(v) for layer in batchnorm_layers(model)
                for v in (layer.moving_mean, layer.moving_variance)]

    net, _ = load_checkpoint(run, optimizer=False)
    avc_model = net.avc_model
    saved = statistics(avc_model)
    assert len(saved) == 2 * 19  # every BatchNorm of both trunks, both pool4s and the head
    train_ids, _ = split_videos(load_manifest(dataset), TINY["val_fraction"], 0)
    bn_sampler = _pair_dataset(dataset, train_ids, TINY["batch_size"], 0, True, "in-batch")
    refresh_batchnorm(net.all_pairs_model(), avc_model, bn_sampler,
                      TrainConfig.bn_batches)
    for before, after in zip(saved, statistics(avc_model)):
        np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-5)

    out = tmp_path / "in_batch.h5"
    metadata = export_model(run, out, "tiny-in-batch")  # verifies the file against the run
    assert metadata.extra["training_steps"] == 4
    audio_model = openl3lite.load_audio_embedding_model_from_path(out, embedding_size=512)
    emb, ts = openl3lite.get_audio_embedding(np.sin(np.arange(16000) / 3.0), 16000,
                                             model=audio_model, verbose=False)
    assert emb.shape == (len(ts), 512) and np.all(np.isfinite(emb))


def test_training_starts_every_pair_at_one_half(dataset):
    """The fusion head's output layer starts at zero (random trunks and hidden layer)."""
    from openl3lite.training.sampling import PairSampler
    from openl3lite.training.train import TrainConfig, build_models

    config = TrainConfig(dataset_dir=dataset, width=0.0625, negatives="in-batch")
    train_model, net = build_models(config)
    inputs, labels = PairSampler(dataset, batch_size=4, seed=2).sample_batch(0)
    np.testing.assert_allclose(np.asarray(net.predict_on_batch(inputs)), 0.5, atol=1e-7)
    hidden = net.fusion_layers()[0].get_weights()[0]
    assert hidden.std() > 0.01  # only the output layer starts at zero
    assert train_model.output_shape == (None, None, 2)


def test_matching_head_init_scores_equal_vectors_as_corresponding(dataset):
    """``head_init="matching"``: the paper's head shape, started as a distance between the two
    pooled vectors, so identical vectors score high and distant ones low; bad values refused."""
    from openl3lite.training.train import TrainConfig, build_models, check_config

    config = TrainConfig(dataset_dir=dataset, width=0.0625, negatives="in-batch",
                         head_init="matching")
    _, net = build_models(config)
    fusion = net.fusion
    channels = fusion.input_shape[-1] // 2
    rng = np.random.default_rng(0)
    audio = np.abs(rng.normal(size=(64, channels))).astype("float32")
    image = np.abs(rng.normal(size=(64, channels))).astype("float32")
    same = np.asarray(fusion.predict_on_batch(np.concatenate([audio, audio], axis=1)))[:, 1]
    other = np.asarray(fusion.predict_on_batch(np.concatenate([audio, image], axis=1)))[:, 1]
    assert same.min() > 0.9 and other.mean() < same.mean() - 0.2
    near = np.asarray(fusion.predict_on_batch(
        np.concatenate([audio, audio + 0.1 * (image - audio)], axis=1)))[:, 1]
    assert np.all(near > other)  # closer pairs score higher, pair by pair
    hidden = fusion.get_layer("fusion_fc1").get_weights()[0]
    np.testing.assert_allclose(hidden[:channels], -hidden[channels:])  # audio minus image
    with pytest.raises(OpenL3liteError, match="head_init"):
        check_config(TrainConfig(dataset_dir=dataset, head_init="ones"))


def _kernels(model_file):
    """Conv and dense kernels of every part of an exported model file, by part/layer."""
    from openl3lite.weights import read_model_file

    _, parts = read_model_file(model_file)
    return {f"{part}/{layer}": arrays[0] for part, layers in parts.items()
            for layer, arrays in layers.items() if arrays[0].ndim >= 2}


def test_a_run_can_start_from_an_exported_model(dataset, tmp_path):
    """--init-from: a new run trains on from a model file's weights, and says so."""
    from click.testing import CliRunner

    from openl3lite.cli import main
    from openl3lite.training.export import export_model
    from openl3lite.training.train import train
    from openl3lite.weights import sha256_of

    settings = dict(TINY, steps=2, eval_every=2, checkpoint_every=2)
    train(dataset, tmp_path / "base", **settings)
    base = tmp_path / "base.h5"
    export_model(tmp_path / "base", base, "tiny-base")

    train(dataset, tmp_path / "tuned", seed=1, init_from=base, **settings)
    train(dataset, tmp_path / "fresh", seed=1, **settings)
    tuned = export_model(tmp_path / "tuned", tmp_path / "tuned.h5", "tiny-tuned")
    export_model(tmp_path / "fresh", tmp_path / "fresh.h5", "tiny-fresh")
    assert tuned.extra["init_from"] == {"path": str(base), "sha256": sha256_of(base),
                                        "name": "tiny-base", "training_steps": 2}
    assert tuned.extra["training_steps"] == 2  # this run's own steps

    # Two Adam steps at lr 1e-4 move each weight by about 2e-4: the fine-tuned kernels are the
    # base's, while a run from random weights (seed 1) is somewhere else entirely (but for the
    # head's output layer, which every new run starts at zero).
    base_k, tuned_k, fresh_k = (_kernels(tmp_path / f"{n}.h5") for n in ("base", "tuned", "fresh"))
    assert len(base_k) == 2 * 8 + 2  # 8 convs per trunk, 2 dense layers in the head
    for key in base_k:
        moved = np.abs(tuned_k[key] - base_k[key]).max()
        assert 0 < moved < 2e-3, key
        if key != "fusion/fusion_fc2":
            assert np.abs(fresh_k[key] - base_k[key]).max() > 10 * moved, key

    # Resuming continues from the checkpoint: a different --init-from is ignored.
    train(dataset, tmp_path / "tuned", seed=1, resume=True, init_from=tmp_path / "fresh.h5",
          **dict(settings, steps=4))
    resumed = export_model(tmp_path / "tuned", tmp_path / "resumed.h5", "tiny-resumed")
    assert resumed.extra["init_from"]["sha256"] == sha256_of(base)

    # The CLI takes --width and --input-repr from the file unless they are given.
    args = ["train", dataset, "--init-from", str(base), "--steps", "1", "--batch-size", "4",
            "--val-fraction", "0.25", "--eval-every", "1", "-q"]
    result = CliRunner().invoke(main, args + ["-o", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "cli" / "config.json").read_text())["width"] == 0.0625

    # Refusals name the file and the problem, and leave no run folder behind.
    refusals = [(dict(init_from=base, width=0.125), "has width=0.0625, the run asks for width"),
                (dict(init_from=base, input_repr="linear"), "input_repr"),
                (dict(init_from=tmp_path / "missing.h5"), "missing.h5: file not found"),
                (dict(init_from=tmp_path), "is a folder, not a file"),
                (dict(init_from=require(FIXTURES / "openl3_image_random.h5")),
                 "OpenL3 weight file holds one subnetwork")]
    for extra, message in refusals:
        with pytest.raises(OpenL3liteError, match=message):
            train(dataset, tmp_path / "refused", **dict(settings, **extra))
        assert not (tmp_path / "refused").exists()
    result = CliRunner().invoke(main, args + ["-o", str(tmp_path / "refused"), "--width", "0.5"])
    assert result.exit_code == 2 and "base.h5: has width=0.0625" in result.output
    assert not (tmp_path / "refused").exists()


def test_defaults_and_help_are_written_once_in_train_config():
    """train()'s keyword arguments and l3embed train's options take TrainConfig's defaults and
    descriptions (openl3lite.training.config), so none can drift from the others."""
    import inspect

    from openl3lite.cli import train as train_command
    from openl3lite.training.config import TRAIN_OPTIONS, TrainConfig, default_of, help_of
    from openl3lite.training.train import train

    signature = inspect.signature(train)
    for name in TRAIN_OPTIONS:
        assert signature.parameters[name].default == default_of(name) == getattr(TrainConfig,
                                                                                  name), name
        assert help_of(name).split(". ")[0] in " ".join(train.__doc__.split()), name
    options = {p.name: p for p in train_command.params}
    shared = [n for n in TRAIN_OPTIONS if n in options]
    # all but val_batches, jit_compile and progress (the CLI's --quiet is its opposite)
    assert len(shared) == len(TRAIN_OPTIONS) - 3
    for name in shared:
        assert options[name].default == default_of(name), name
        assert options[name].help.startswith(help_of(name)), name
    assert "{options}" not in train.__doc__ and "{options}" not in TrainConfig.__doc__


def test_batch_stream_is_in_order_and_leaves_no_thread_behind(dataset):
    """The training prefetcher (batching.prefetch over worker threads) yields the sampler's
    batches k = start, start + 1, ...; stopped early while its buffer is full and its requests
    are all made, its threads still end (the producer used to block forever on the last put)."""
    import threading

    from openl3lite.training.batches import batch_stream
    from openl3lite.training.sampling import PairSampler

    sampler = PairSampler(dataset, batch_size=4, seed=3)
    with batch_stream(sampler, 5, 8, workers=2) as batches:
        for k, (inputs, labels) in zip(range(5, 8), batches):
            expected = sampler.sample_batch(k)
            np.testing.assert_array_equal(inputs["image"], expected[0]["image"])
            np.testing.assert_array_equal(labels, expected[1])
    before = set(threading.enumerate())
    with batch_stream(sampler, 0, 4, workers=2) as batches:  # 3 ahead + 1 held: all 4 asked
        next(batches)
        time.sleep(1.0)  # the producer has queued the rest and waits to say "done"
        started = [t for t in set(threading.enumerate()) - before
                   if t.name.startswith(("openl3lite-prefetch", "avc-batches"))]
    assert any(t.name == "openl3lite-prefetch" for t in started)
    for thread in started:
        thread.join(timeout=5)
        assert not thread.is_alive(), thread.name
