"""``l3embed download`` and ``l3embed models`` over the weights cache (no network: files are
installed with ``--from``, and the registry is pointed at synthetic entries whose pinned git
blob ids are those of test files)."""

import gzip
import hashlib

import pytest
from click.testing import CliRunner

from openl3lite import hub, registry
from openl3lite.cli import main


def _blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture()
def synthetic(tmp_path, monkeypatch):
    """A registry with one OpenL3-kind model whose audio part is a gzip of known bytes."""
    payload = bytes(range(256)) * 400
    gz = tmp_path / "openl3_audio_mel256_test-v0_4_0.h5.gz"
    gz.write_bytes(gzip.compress(payload))
    record = {"file": gz.name, "modality": "audio", "input_repr": "mel256",
              "content_type": "music", "git_blob_sha1": _blob_id(gz.read_bytes()),
              "decompressed_name": "openl3_audio_mel256_test.h5",
              "url": "http://127.0.0.1:9/never-used", "model": "openl3-test"}
    entry = registry.ModelEntry(name="openl3-test", kind="openl3", description="a test model",
                                licence="CC BY 4.0", input_repr="mel256",
                                content_type="music", parts={"audio": record})
    monkeypatch.setattr(registry, "_entries", lambda: {"openl3-test": entry})
    home = tmp_path / "home"
    monkeypatch.setenv("OPENL3LITE_HOME", str(home))
    monkeypatch.setenv("OPENL3LITE_OFFLINE", "1")
    return {"gz": gz, "payload": payload, "record": record, "home": home}


def test_download_from_a_right_file_installs_it(synthetic):
    listed = CliRunner().invoke(main, ["models"])
    assert listed.exit_code == 0 and "openl3-test" in listed.output
    assert "not installed" in listed.output and "CC BY 4.0" in listed.output
    result = CliRunner().invoke(main, ["download", "openl3-test", "--from",
                                       str(synthetic["gz"])])
    assert result.exit_code == 0, result.output
    installed = hub.installed_path(synthetic["record"])
    assert installed.read_bytes() == synthetic["payload"]
    assert hub.installed_record(synthetic["record"])["sha256"] == \
        hashlib.sha256(synthetic["payload"]).hexdigest()
    listed = CliRunner().invoke(main, ["models"])
    assert "openl3-test  installed" in listed.output
    again = CliRunner().invoke(main, ["download", "openl3-test"])  # offline, already there
    assert again.exit_code == 0 and "already installed" in again.output


def test_download_from_a_wrong_file_is_refused_and_installs_nothing(synthetic, tmp_path):
    wrong = tmp_path / "openl3_audio_mel256_test-v0_4_0-other.h5.gz"
    wrong.write_bytes(gzip.compress(b"not the published weights" * 100))
    result = CliRunner().invoke(main, ["download", "openl3-test", "--from", str(wrong)])
    assert result.exit_code == 1
    assert synthetic["record"]["git_blob_sha1"] in result.output
    assert not hub.is_installed(synthetic["record"])
    leftovers = [p for p in synthetic["home"].rglob("*") if p.is_file()
                 and not p.name.endswith(".lock")]
    assert leftovers == []


def test_download_offline_says_where_to_get_the_file(synthetic):
    result = CliRunner().invoke(main, ["download", "openl3-test"])
    assert result.exit_code == 1
    assert "http://127.0.0.1:9/never-used" in result.output
    assert "l3embed download openl3-test --from" in result.output


def test_download_refuses_unknown_names_and_ambiguous_parts(synthetic, tmp_path):
    unknown = CliRunner().invoke(main, ["download", "openl3-nothing"])
    assert unknown.exit_code == 1 and "unknown model" in unknown.output
    unnamed = tmp_path / "weights.gz"
    unnamed.write_bytes(synthetic["gz"].read_bytes())
    result = CliRunner().invoke(main, ["download", "openl3-test", "--from", str(unnamed)])
    assert result.exit_code == 1 and "--part" in result.output
    result = CliRunner().invoke(main, ["download", "openl3-test", "--from", str(unnamed),
                                       "--part", "audio"])
    assert result.exit_code == 0, result.output
    assert hub.installed_path(synthetic["record"]).read_bytes() == synthetic["payload"]
