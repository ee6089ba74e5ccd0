"""Inputs for batch jobs without Ray: ``--files-from LIST`` and ``--shard I/N``."""

import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from openl3lite.cli import main, parse_file_list, select_inputs, shard_of
from conftest import FSDD, REPO, require

MODEL = "avdigits-mel128-w0125"
WAV = (".wav",)


@pytest.fixture(scope="module")
def recordings():
    """Every recording of the free spoken digit dataset (3000 paths, sorted)."""
    folder = require(FSDD / "recordings")
    return sorted(str(folder / name) for name in os.listdir(folder) if name.endswith(".wav"))


@pytest.mark.parametrize("n_shards", [1, 2, 3, 7])
def test_shards_cover_every_input_exactly_once(recordings, n_shards):
    shards = [select_inputs([os.path.dirname(recordings[0])], None, (i, n_shards), WAV)[0]
              for i in range(n_shards)]
    together = sorted(p for shard in shards for p in shard)
    assert together == recordings  # every file once: no gaps, no duplicates
    if n_shards > 1:  # a hash spreads files as independent draws: binomial shard sizes
        sizes = np.array([len(shard) for shard in shards])
        share = 1.0 / n_shards
        spread = np.sqrt(len(recordings) * share * (1 - share))  # 19 files for 7 shards
        assert np.all(np.abs(sizes - len(recordings) * share) < 5 * spread), sizes


def test_shard_of_a_file_does_not_depend_on_the_other_inputs(recordings):
    everything = {p: shard_of(p, 5) for p in recordings}
    subset = recordings[::7]
    for index in range(5):
        chosen, _ = select_inputs(subset[::-1], None, (index, 5), WAV)
        assert set(chosen) == {p for p in subset if everything[p] == index}
    assert shard_of("./a/../b.wav", 5) == shard_of("b.wav", 5)  # the same path, spelled twice


def test_shards_are_stable_across_runs(recordings):
    """Another interpreter, with another string-hash seed, puts each file in the same shard."""
    sample = recordings[::97]
    code = ("import sys; from openl3lite.cli import shard_of; "
            "print(' '.join(str(shard_of(p, 4)) for p in sys.argv[1:]))")
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", code, *sample], capture_output=True,
                          text=True, env=env, check=True)
    assert done.stdout.split() == [str(shard_of(p, 4)) for p in sample]


@pytest.mark.parametrize("value, message", [
    ("3/3", "I must be from 0 to N-1 = 2"), ("-1/2", "I must be from 0"),
    ("0/0", "N must be at least 1"), ("1", "expected I/N"), ("a/b", "expected I/N"),
])
def test_bad_shard_is_a_usage_error(value, message, recordings):
    result = CliRunner().invoke(main, ["audio", recordings[0], "--shard", value])
    assert result.exit_code == 2 and message in result.output, result.output


def test_parse_file_list():
    lines = ["a.wav\n", "\n", "   \n", "# a comment\n", "  b c.wav  \r\n", "./#d.wav\n"]
    assert parse_file_list(lines) == ["a.wav", "b c.wav", "./#d.wav"]


def test_files_from_file_and_sharded(recordings, tmp_path):
    """A list with comments, a folder, a missing file; four shards of it write every output
    once, and only the shard holding the missing file reports it (and fails)."""
    folder = tmp_path / "more"
    folder.mkdir()
    os.symlink(recordings[1], folder / "x.wav")
    listing = tmp_path / "list.txt"
    missing = str(tmp_path / "missing.wav")
    listing.write_text(f"# inputs\n{recordings[0]}\n\n{folder}\n{missing}\n{recordings[2]}\n")
    out = tmp_path / "out"
    codes, errors = [], []
    for index in range(4):
        result = CliRunner().invoke(main, ["audio", "--files-from", str(listing), "-o", str(out),
                                           "--shard", f"{index}/4", "--model", MODEL, "-q"])
        codes.append(result.exit_code)
        errors.extend(line for line in result.output.splitlines() if line.startswith("error"))
    names = {os.path.basename(p)[:-4] + ".npz" for p in (recordings[0], recordings[2])}
    assert set(os.listdir(out)) == names | {"x.npz"}
    assert errors == [f"error: {missing}: no such file, or no supported file matched"]
    assert sorted(codes) == [0, 0, 0, 1]


def test_files_from_stdin_with_inputs(recordings, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["audio", recordings[3], "--files-from", "-", "-o",
                                       str(out), "--model", MODEL],
                                input=f"{recordings[4]}\n# {recordings[5]}\n")
    assert result.exit_code == 0, result.output
    assert "2 processed, 0 skipped (output exists), 0 failed" in result.output
    assert len(os.listdir(out)) == 2


def test_no_inputs_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["audio", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "--files-from" in result.output
    missing = CliRunner().invoke(main, ["audio", "--files-from", str(tmp_path / "none.txt")])
    assert missing.exit_code == 2 and "cannot read" in missing.output, missing.output


def test_ray_address_that_is_an_input_is_refused(recordings, tmp_path):
    """`--ray DIR` would take the folder as the cluster's address: a usage error, not a
    connection attempt."""
    result = CliRunner().invoke(main, ["audio", "--ray", os.path.dirname(recordings[0]),
                                       "-o", str(tmp_path)])
    assert result.exit_code == 2 and "--ray=ADDRESS" in result.output, result.output


def test_ray_sizes_without_ray_are_a_usage_error(recordings, tmp_path):
    result = CliRunner().invoke(main, ["audio", recordings[0], "-o", str(tmp_path),
                                       "--ray-workers", "2"])
    assert result.exit_code == 2 and "add --ray" in result.output, result.output
    assert not os.listdir(tmp_path)


def test_ray_missing_says_how_to_install(recordings, tmp_path):
    """Without Ray installed (hidden from the import system here), --ray fails at once with
    the install command, before loading a model."""
    code = ("import sys; sys.modules['ray'] = None; from openl3lite.cli import main; "
            f"main(['audio', {recordings[0]!r}, '-o', {str(tmp_path)!r}, '--ray'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), check=False)
    assert done.returncode == 2, done.stderr
    assert "pip install 'openl3lite[ray]'" in done.stderr and "Traceback" not in done.stderr
    assert not os.listdir(tmp_path)
