"""A batch killed outright (SIGKILL, which no clean-up code survives) leaves only complete
outputs, and a rerun finishes the batch and removes what the killed process left behind."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import FSDD, require

from openl3lite import output

MODEL = "avdigits-mel128-w0125"


def _l3embed(*args):
    return [sys.executable, "-m", "openl3lite", *args]


def _temporaries(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith(output.TEMP_PREFIX))


def _dead_pid():
    """The id of a process that has just exited (and so exists no more)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture(scope="module")
def recordings():
    folder = require(FSDD / "recordings")
    return sorted(str(p) for p in folder.glob("*_theo_*.wav"))[:40]


def test_sigkill_mid_batch_leaves_no_unreadable_output_and_a_rerun_completes(recordings,
                                                                             tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    args = _l3embed("audio", *recordings, "-o", str(out), "--model", MODEL, "-t", "0.05", "-q")
    job = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # once one output is complete, kill as soon as the next one shows, as a temporary file or
    # (for a writer that is not atomic) under its final name: the kill lands inside a write
    deadline = time.monotonic() + 300
    caught_mid_write = False
    while time.monotonic() < deadline and job.poll() is None:
        names = os.listdir(out)
        temporaries = [name for name in names if name.startswith(output.TEMP_PREFIX)]
        finals = [name for name in names if name not in temporaries]
        if finals and (temporaries or len(finals) > 1):
            caught_mid_write = bool(temporaries)
            break
        time.sleep(0.0005)
    assert job.poll() is None, job.stderr.read().decode()  # the batch must still be running
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert job.returncode == -signal.SIGKILL

    finished = sorted(name for name in os.listdir(out) if name.endswith(".npz")
                      and not name.startswith(output.TEMP_PREFIX))
    assert len(finished) < len(recordings)
    for name in finished:  # every visible output is complete and readable
        with np.load(out / name) as data:
            assert data["embedding"].shape == (len(data["timestamps"]), 6144)
            assert np.all(np.isfinite(data["embedding"]))
    left = _temporaries(out)
    assert not caught_mid_write or left or finished, "the kill left nothing to look at"

    # a leftover of another (dead) process and a file a live process is still writing
    host = __import__("socket").gethostname()
    dead = out / f"{output.TEMP_PREFIX}{host}-{_dead_pid()}-abcd.npz"
    dead.write_bytes(b"half")
    live = out / f"{output.TEMP_PREFIX}{host}-{os.getpid()}-efgh.npz"
    live.write_bytes(b"in progress")

    done = subprocess.run(args, check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr + done.stdout
    assert f"{len(recordings) - len(finished)} processed, {len(finished)} skipped" in (
        done.stdout + done.stderr)
    assert _temporaries(out) == [live.name]  # the killed run's and the dead process's are gone
    for name in finished:  # kept, not recomputed
        assert (out / name).exists()
    for path in recordings:
        name = os.path.splitext(os.path.basename(path))[0] + ".npz"
        with np.load(out / name) as data:
            assert data["embedding"].shape[0] == len(data["timestamps"]) > 0


def test_a_clean_write_leaves_no_temporary_and_honours_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        output.write_npz_atomic(tmp_path / "x.npz", embedding=np.ones((2, 3), np.float32))
    finally:
        os.umask(previous)
    assert os.listdir(tmp_path) == ["x.npz"]
    assert (os.stat(tmp_path / "x.npz").st_mode & 0o777) == 0o640
    np.testing.assert_array_equal(np.load(tmp_path / "x.npz")["embedding"], np.ones((2, 3)))


def test_stale_temporaries_of_other_hosts_and_live_processes_are_kept(tmp_path):
    host = __import__("socket").gethostname()
    other_host = tmp_path / f"{output.TEMP_PREFIX}not-{host}-{_dead_pid()}-x.npz"
    live = tmp_path / f"{output.TEMP_PREFIX}{host}-{os.getpid()}-y.npz"
    dead = tmp_path / f"{output.TEMP_PREFIX}{host}-{_dead_pid()}-z.npz"
    user_file = tmp_path / ".tmp-notes.npz"
    for path in (other_host, live, dead, user_file):
        path.write_bytes(b"x")
    assert output.remove_stale_temporaries(tmp_path) == [str(dead)]
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in (other_host, live, user_file))
