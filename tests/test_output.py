"""The one atomic writer (openl3lite.output.atomic_path): every kind of file the project writes
gets the umask's permissions, leaves no temporary file after success or failure, and two writers
of one path never share a temporary file."""

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from openl3lite import output


@pytest.fixture()
def umask_027():
    previous = os.umask(0o027)
    yield 0o640
    os.umask(previous)


def _mode(path):
    return os.stat(path).st_mode & 0o777


def _write_every_kind(folder):
    """Write one file of each kind through the project's own writers; their paths."""
    import keras

    from openl3lite import network
    from openl3lite.plots import plot_confusion_matrix
    from openl3lite.training.logs import write_metrics_csv
    from openl3lite.weights import ModelMetadata, save_model_file

    paths = {kind: os.path.join(folder, f"x.{kind}") for kind in ("npz", "json", "csv", "png",
                                                                   "h5")}
    output.write_npz_atomic(paths["npz"], embedding=np.ones((2, 3), np.float32))
    output.write_json_atomic(paths["json"], {"a": 1})
    write_metrics_csv(paths["csv"], [{"step": 1, "train_loss": 0.5}])
    plot_confusion_matrix(np.eye(2, dtype=int), ["a", "b"], paths["png"], "t")
    keras.utils.set_random_seed(0)
    save_model_file(paths["h5"], {"audio": network.build_audio_trunk("mel128", 0.0625)},
                    ModelMetadata(name="tiny", input_repr="mel128", width=0.0625))
    return paths


def test_every_kind_of_output_honours_the_umask_and_leaves_no_temporary(tmp_path, umask_027):
    paths = _write_every_kind(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in paths.values())
    for kind, path in paths.items():
        assert _mode(path) == umask_027, kind
    with np.load(paths["npz"]) as data:
        np.testing.assert_array_equal(data["embedding"], np.ones((2, 3)))
    assert json.loads(Path(paths["json"]).read_text()) == {"a": 1}
    assert Path(paths["csv"]).read_text().startswith("step,")
    assert Path(paths["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from openl3lite.weights import read_model_file

    assert read_model_file(paths["h5"])  # a complete, readable model file


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "report.json"
    output.write_json_atomic(path, {"old": True})
    with pytest.raises(KeyboardInterrupt), output.atomic_write(path, "w") as f:
        f.write('{"new": ')
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["report.json"]
    assert json.loads(path.read_text()) == {"old": True}
    with pytest.raises(ValueError), output.atomic_path(tmp_path / "new.h5"):
        raise ValueError("converter failed")
    assert os.listdir(tmp_path) == ["report.json"]


def test_two_writers_of_one_path_use_different_temporaries(tmp_path):
    path = tmp_path / "x.bin"
    both_open = threading.Barrier(2, timeout=30)
    temporaries = []

    def write(byte):
        with output.atomic_path(path) as tmp:
            temporaries.append(tmp)
            with open(tmp, "wb") as f:
                f.write(byte * 100_000)
            both_open.wait()  # both temporaries exist at once

    threads = [threading.Thread(target=write, args=(b,)) for b in (b"a", b"b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(temporaries)) == 2
    assert all(os.path.basename(t).startswith(output.TEMP_PREFIX) for t in temporaries)
    assert os.listdir(tmp_path) == ["x.bin"]
    content = path.read_bytes()
    assert content in (b"a" * 100_000, b"b" * 100_000)  # one whole write, never a mixture


def test_a_folder_output_replaces_the_old_folder(tmp_path, umask_027):
    destination = tmp_path / "saved_model"
    destination.mkdir()
    (destination / "old.pb").write_bytes(b"old")
    work = output.temporary_folder(str(tmp_path))
    assert os.path.basename(work).startswith(output.TEMP_PREFIX)
    new = os.path.join(work, "model")
    os.mkdir(new)
    with open(os.path.join(new, "saved_model.pb"), "wb") as f:
        f.write(b"new")
    output.place_atomic(new, destination)
    os.rmdir(work)
    assert os.listdir(tmp_path) == ["saved_model"]
    assert os.listdir(destination) == ["saved_model.pb"]
    assert _mode(destination / "saved_model.pb") == umask_027
