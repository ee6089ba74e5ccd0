"""openl3lite.hub: fetching OpenL3's weight files into the cache, verified, atomically, once.

No test touches the internet: files are served by a local HTTP server on 127.0.0.1.
"""

import gzip
import hashlib
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import platformdirs
import pytest

from openl3lite import hub
from openl3lite.errors import OpenL3liteError

SHARED_JSON = (Path(__file__).resolve().parents[2] / "shared" / "data" / "openl3_weights"
               / "openl3_weights.json")
SERVE_CHUNK = 16 * 1024


def blob_id(data):
    """Git's object id of ``data``, computed here independently of the module under test."""
    header = b"blob " + str(len(data)).encode() + b"\0"
    return hashlib.sha1(header + data).hexdigest()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Every test gets its own cache folder, online, with no proxy in the way."""
    folder = tmp_path / "home"
    monkeypatch.setenv("OPENL3LITE_HOME", str(folder))
    monkeypatch.delenv("OPENL3LITE_OFFLINE", raising=False)
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    return folder


def leftovers(home):
    """Names in the weights folder other than lock files (empty if the folder is absent)."""
    folder = home / "openl3"
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


@pytest.fixture()
def server():
    """A local HTTP server. ``routes[path]`` says what to serve: ``body`` (bytes), optionally
    ``length`` (the Content-Length to declare), ``send`` (how many bytes to actually send
    before closing) and ``delay`` (seconds to sleep between 16 KiB chunks). ``requests``
    lists the paths asked for; ``spans`` the (start, end) times of each body sent to its last
    chunk (end: just before that chunk, when the client cannot have it all yet)."""
    state = SimpleNamespace(routes={}, requests=[], spans=[], lock=threading.Lock())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            with state.lock:
                state.requests.append(self.path)
            route = state.routes.get(self.path)
            if route is None:
                self.send_error(404, "Not Found")
                return
            body = route["body"]
            length = route.get("length", len(body))
            send = route.get("send", length)
            start = time.time()
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(length))
            self.end_headers()
            try:
                for offset in range(0, send, SERVE_CHUNK):
                    if offset and route.get("delay"):
                        time.sleep(route["delay"])
                    if offset + SERVE_CHUNK >= send:  # the last chunk: the client lacks it yet
                        with state.lock:
                            state.spans.append((start, time.time()))
                    self.wfile.write(body[offset:min(offset + SERVE_CHUNK, send)])
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return
            self.close_connection = True

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    port = httpd.server_address[1]
    state.url = lambda name: f"http://127.0.0.1:{port}/{name}"
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def make_weight(server, name="x", size=300_000, seed=0, serve=True, **route):
    """A synthetic weight file: ``(entry, raw, gz)``; served by ``server`` when ``serve``."""
    raw = random.Random(seed).randbytes(size)
    gz = gzip.compress(raw, mtime=0)
    entry = {"file": f"{name}.h5.gz", "git_blob_sha1": blob_id(gz),
             "decompressed_name": f"{name}.h5", "url": server.url(f"{name}.h5.gz"),
             "model": "openl3-test"}
    if serve:
        server.routes[f"/{name}.h5.gz"] = dict(route, body=route.get("body", gz))
    return entry, raw, gz


# ----------------------------------------------------------------------------- 1. download


def test_fetch_installs_verified_file_and_second_fetch_makes_no_request(server, home):
    entry, raw, gz = make_weight(server)
    assert not hub.is_installed(entry)
    path = hub.fetch(entry, progress=False)
    assert path == str(home / "openl3" / "x.h5") == str(hub.installed_path(entry))
    assert Path(path).read_bytes() == raw
    record = hub.installed_record(entry)
    assert record["sha256"] == hashlib.sha256(raw).hexdigest()
    assert record["git_blob_sha1"] == blob_id(gz)
    assert record["size"] == len(raw) and record["compressed_size"] == len(gz)
    assert record["source"] == entry["url"]
    assert record["installed_at"].endswith("+00:00")
    assert json.loads((home / "openl3" / "x.h5.json").read_text()) == record
    assert hub.is_installed(entry)
    assert leftovers(home) == ["x.h5", "x.h5.json"]
    assert server.requests == ["/x.h5.gz"]

    assert hub.fetch(entry, progress=False) == path
    assert server.requests == ["/x.h5.gz"]


def test_fetch_shows_a_byte_progress_bar_on_stderr(server, capsys):
    entry, _, _ = make_weight(server)
    hub.fetch(entry, progress=True)
    captured = capsys.readouterr()
    assert "x.h5.gz" in captured.err and "B" in captured.err
    assert captured.out == ""


# ----------------------------------------------------------------------------- 2-5. failures


def test_corrupted_download_is_refused_and_nothing_is_installed(server, home):
    entry, _, gz = make_weight(server, serve=False)
    bad = bytearray(gz)
    bad[len(bad) // 2] ^= 0xFF
    server.routes["/x.h5.gz"] = {"body": bytes(bad)}
    with pytest.raises(OpenL3liteError) as err:
        hub.fetch(entry, progress=False)
    message = str(err.value)
    assert "x.h5.gz" in message and entry["url"] in message
    assert f"does not match the pinned git blob id {entry['git_blob_sha1']}" in message
    assert f"got {blob_id(bytes(bad))}" in message
    assert "nothing was installed" in message
    assert leftovers(home) == []
    assert not hub.is_installed(entry)


def test_truncated_download_is_refused(server, home):
    entry, _, gz = make_weight(server, serve=False)
    server.routes["/x.h5.gz"] = {"body": gz[: len(gz) // 2]}
    with pytest.raises(OpenL3liteError, match="does not match the pinned git blob id"):
        hub.fetch(entry, progress=False)
    assert leftovers(home) == []


def test_interrupted_download_is_refused_and_nothing_is_left(server, home):
    entry, _, gz = make_weight(server, serve=False)
    half = len(gz) // 2
    server.routes["/x.h5.gz"] = {"body": gz, "length": len(gz), "send": half}
    with pytest.raises(OpenL3liteError) as err:
        hub.fetch(entry, progress=False)
    message = str(err.value)
    assert "x.h5.gz" in message and entry["url"] in message
    assert f"closed after {half} of {len(gz)} bytes" in message
    assert leftovers(home) == []
    assert not hub.is_installed(entry)


def test_http_404_is_a_clear_error(server, home):
    entry, _, _ = make_weight(server, serve=False)
    with pytest.raises(OpenL3liteError) as err:
        hub.fetch(entry, progress=False)
    message = str(err.value)
    assert "x.h5.gz" in message and entry["url"] in message and "HTTP 404" in message
    assert leftovers(home) == []


def test_server_that_never_answers_times_out(server, home):
    entry, _, _ = make_weight(server, serve=False)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # connections complete in the kernel's backlog; nothing ever answers
    try:
        entry["url"] = f"http://127.0.0.1:{silent.getsockname()[1]}/x.h5.gz"
        start = time.monotonic()
        with pytest.raises(OpenL3liteError) as err:
            hub.fetch(entry, progress=False, timeout=0.5)
        assert time.monotonic() - start < 5
    finally:
        silent.close()
    message = str(err.value)
    assert entry["url"] in message and "timed out" in message and "0.5 s" in message
    assert leftovers(home) == []


def test_server_that_stalls_mid_body_times_out(server, home):
    entry, _, _ = make_weight(server, delay=3.0)
    with pytest.raises(OpenL3liteError) as err:
        hub.fetch(entry, progress=False, timeout=0.5)
    message = str(err.value)
    assert "timed out" in message and f"after {SERVE_CHUNK} bytes" in message
    assert leftovers(home) == []


def test_ctrl_c_mid_download_leaves_nothing_and_releases_the_lock(server, home, monkeypatch):
    entry, raw, gz = make_weight(server)

    class Interrupted:
        def __init__(self):
            self.headers = {"Content-Length": str(len(gz))}
            self.calls = 0

        def read(self, n):
            self.calls += 1
            if self.calls > 1:
                raise KeyboardInterrupt
            return gz[:1000]

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    with monkeypatch.context() as patch:
        patch.setattr(hub.urllib.request, "urlopen", lambda *a, **k: Interrupted())
        with pytest.raises(KeyboardInterrupt):
            hub.fetch(entry, progress=False)
    assert leftovers(home) == []
    assert Path(hub.fetch(entry, progress=False)).read_bytes() == raw


def test_bad_timeout_and_unsafe_names_are_refused(server):
    entry, _, _ = make_weight(server)
    with pytest.raises(OpenL3liteError, match="timeout"):
        hub.fetch(entry, timeout=0)
    with pytest.raises(OpenL3liteError, match="plain file name"):
        hub.installed_path(dict(entry, decompressed_name="../evil.h5"))
    with pytest.raises(OpenL3liteError, match="lacks git_blob_sha1"):
        hub.fetch({"file": "y.h5.gz", "decompressed_name": "y.h5"})
    assert server.requests == []


# ----------------------------------------------------------------------------- 6. offline


@pytest.mark.parametrize("value, offline", [("1", True), ("true", True), ("Yes", True),
                                            ("ON", True), ("0", False), ("", False),
                                            ("no", False)])
def test_is_offline(monkeypatch, value, offline):
    monkeypatch.setenv("OPENL3LITE_OFFLINE", value)
    assert hub.is_offline() is offline


def test_offline_refuses_to_download_and_says_how_to_install_by_hand(server, home,
                                                                      monkeypatch):
    entry, raw, _ = make_weight(server)
    monkeypatch.setenv("OPENL3LITE_OFFLINE", "1")
    with pytest.raises(OpenL3liteError) as err:
        hub.fetch(entry, progress=False)
    message = str(err.value)
    assert "x.h5.gz" in message and entry["url"] in message
    assert "l3embed download openl3-test --from x.h5.gz" in message
    assert str(hub.cache_dir()) in message
    assert server.requests == []
    assert not (home / "openl3").exists()

    monkeypatch.delenv("OPENL3LITE_OFFLINE")
    path = hub.fetch(entry, progress=False)
    monkeypatch.setenv("OPENL3LITE_OFFLINE", "true")
    assert hub.fetch(entry, progress=False) == path
    assert Path(path).read_bytes() == raw
    assert server.requests == ["/x.h5.gz"]


# ----------------------------------------------------------------------------- 7. by hand


def test_install_from_file_right_file_needs_no_network(server, home, tmp_path):
    entry, raw, gz = make_weight(server, serve=False)
    source = tmp_path / "downloads" / "x.h5.gz"
    source.parent.mkdir()
    source.write_bytes(gz)
    path = hub.install_from_file(entry, source)
    assert Path(path).read_bytes() == raw
    assert hub.installed_record(entry)["source"] == f"from file {source}"
    assert hub.installed_record(entry)["sha256"] == hashlib.sha256(raw).hexdigest()
    assert leftovers(home) == ["x.h5", "x.h5.json"]
    assert source.read_bytes() == gz
    assert hub.fetch(entry) == path
    assert server.requests == []


def test_install_from_file_refuses_wrong_files(server, home, tmp_path):
    entry, _, _ = make_weight(server, serve=False)
    _, _, other_gz = make_weight(server, seed=1, serve=False)
    wrong = tmp_path / "wrong.h5.gz"
    wrong.write_bytes(other_gz)
    with pytest.raises(OpenL3liteError) as err:
        hub.install_from_file(entry, wrong)
    message = str(err.value)
    assert str(wrong) in message and "x.h5.gz" in message
    assert blob_id(other_gz) in message and entry["git_blob_sha1"] in message
    assert "nothing was installed" in message

    text = tmp_path / "notes.h5.gz"
    text.write_text("not a gzip file\n")
    with pytest.raises(OpenL3liteError, match="not even a gzip file"):
        hub.install_from_file(entry, text)
    with pytest.raises(OpenL3liteError, match="file not found"):
        hub.install_from_file(entry, tmp_path / "missing.h5.gz")
    with pytest.raises(OpenL3liteError, match="is a folder"):
        hub.install_from_file(entry, tmp_path)
    assert leftovers(home) == []
    assert not hub.is_installed(entry)
    assert server.requests == []


def test_install_from_file_refuses_a_decompressed_hdf5_file(server, home, tmp_path):
    h5py = pytest.importorskip("h5py")
    entry, _, _ = make_weight(server, serve=False)
    decompressed = tmp_path / "x.h5"
    with h5py.File(decompressed, "w") as f:
        f.create_dataset("w", data=[1.0, 2.0])
    with pytest.raises(OpenL3liteError) as err:
        hub.install_from_file(entry, decompressed)
    message = str(err.value)
    assert str(decompressed) in message and "already decompressed" in message
    assert ".h5.gz" in message and "exactly as downloaded" in message
    assert leftovers(home) == []


# ----------------------------------------------------------------------------- 8. two processes


def test_two_processes_fetching_at_once_download_once(server, home):
    # ~19 chunks of 16 KiB, 60 ms each: the download lasts over a second
    entry, raw, _ = make_weight(server, delay=0.06)
    code = ("import json, sys, time\n"
            "from openl3lite import hub\n"
            "print(time.time(), flush=True)\n"
            "print(hub.fetch(json.loads(sys.argv[1]), progress=False))\n")
    children = [subprocess.Popen([sys.executable, "-c", code, json.dumps(entry)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    results = [child.communicate(timeout=60) + (child.returncode,) for child in children]
    for out, err, code_ in results:
        assert code_ == 0, err
    started = [float(out.split()[0]) for out, _, _ in results]
    paths = [out.split()[1] for out, _, _ in results]
    assert paths[0] == paths[1] == str(home / "openl3" / "x.h5")
    assert Path(paths[0]).read_bytes() == raw
    assert server.requests == ["/x.h5.gz"]
    # both children were asking while the one download was under way
    (_, download_end), = server.spans
    assert max(started) < download_end
    assert leftovers(home) == ["x.h5", "x.h5.json"]


# ----------------------------------------------------------------------------- 9. verify


def test_verify_installed_hashes_once_and_detects_a_modified_file(server, monkeypatch):
    entry, _, _ = make_weight(server)
    with pytest.raises(OpenL3liteError, match="not installed"):
        hub.verify_installed(entry)
    path = hub.fetch(entry, progress=False)
    calls = []
    real = hub._sha256_file
    monkeypatch.setattr(hub, "_sha256_file", lambda p: calls.append(p) or real(p))
    assert hub.verify_installed(entry) == path
    assert hub.verify_installed(entry) == path
    assert len(calls) == 1

    data = bytearray(Path(path).read_bytes())
    data[100] ^= 0x01
    Path(path).write_bytes(bytes(data))
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(OpenL3liteError) as err:
        hub.verify_installed(entry)
    assert path in str(err.value) and "delete it and fetch it again" in str(err.value)


# ----------------------------------------------------------------------------- 10. places


def test_cache_dir_honours_openl3lite_home_and_falls_back_to_platformdirs(monkeypatch,
                                                                          tmp_path):
    monkeypatch.setenv("OPENL3LITE_HOME", str(tmp_path / "elsewhere"))
    assert hub.cache_dir() == tmp_path / "elsewhere"
    entry = {"file": "a.h5.gz", "git_blob_sha1": "0" * 40, "decompressed_name": "a.h5"}
    assert hub.installed_path(entry) == tmp_path / "elsewhere" / "openl3" / "a.h5"
    expected = Path(platformdirs.user_cache_dir("openl3lite"))
    monkeypatch.setenv("OPENL3LITE_HOME", "")
    assert hub.cache_dir() == expected
    monkeypatch.delenv("OPENL3LITE_HOME")
    assert hub.cache_dir() == expected
    assert not (tmp_path / "elsewhere").exists()


def test_import_is_light_and_creates_nothing(tmp_path):
    home = tmp_path / "never"
    code = ("import sys, openl3lite.hub as h\n"
            "h.weight_files(); h.cache_dir()\n"
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))\n")
    env = dict(os.environ, OPENL3LITE_HOME=str(home))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert out.strip() == "[]"
    assert not home.exists()


# ----------------------------------------------------------------------------- metadata


def test_weight_files_lists_openl3s_twelve_files_with_urls():
    files = hub.weight_files()
    assert len(files) == 12
    pattern = "https://github.com/marl/openl3/raw/models/{}"
    for entry in files:
        assert entry["file"].endswith("-v0_4_0.h5.gz")
        assert entry["url"] == pattern.format(entry["file"])
        assert len(entry["git_blob_sha1"]) == 40
        int(entry["git_blob_sha1"], 16)
        assert entry["decompressed_name"] == (
            f"openl3_{entry['modality']}_{entry['input_repr']}_{entry['content_type']}.h5")
    assert len({e["decompressed_name"] for e in files}) == 12
    files[0]["file"] = "changed"
    assert hub.weight_files()[0]["file"] != "changed"
    assert "CC BY 4.0" in hub.licence_text()
    info = hub.source_info()
    assert "files" not in info
    assert info["download_url_pattern"] == pattern.format("{file}")
    assert info["licence"] == hub.licence_text()


def test_packaged_json_is_the_shared_copy():
    if not SHARED_JSON.exists():
        pytest.skip(f"shared data not found at {SHARED_JSON}")
    packaged = Path(hub.__file__).with_name("openl3_weights.json")
    assert packaged.read_bytes() == SHARED_JSON.read_bytes()


def test_git_blob_sha1_matches_git(tmp_path):
    assert hub.git_blob_sha1(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert hub.git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    data = random.Random(2).randbytes(3 * 1024 * 1024 + 7)  # several read chunks
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    assert hub.git_blob_sha1(path) == hub.git_blob_sha1(data) == blob_id(data)
    assert hub.git_blob_sha1(str(path)) == blob_id(data)
    with pytest.raises(OpenL3liteError, match="file not found"):
        hub.git_blob_sha1(tmp_path / "missing")
    with pytest.raises(OpenL3liteError, match="is a folder"):
        hub.git_blob_sha1(tmp_path)


def test_a_substitute_is_installed_as_a_fetch_would_leave_it(home):
    """hub.install_substitute (what the suite and the OpenL3 benchmark use to stand the random
    fixture weights in for OpenL3's): the copy and its record in place, nothing else left in the
    folder, verify_installed satisfied, a missing source refused by name."""
    from conftest import FIXTURES

    entry = hub.weight_files()[0]
    source = FIXTURES / "openl3_audio_random.h5"
    path = Path(hub.install_substitute(entry, source))
    assert hub.is_installed(entry) and path.read_bytes() == source.read_bytes()
    record = hub.installed_record(entry)
    assert record["source"] == f"substitute from file {source}"
    assert record["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert record["git_blob_sha1"] == entry["git_blob_sha1"]
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")) == \
        sorted([path.name, path.name + ".json"])
    hub.verify_installed(entry)
    missing = home / "missing.h5"
    with pytest.raises(OpenL3liteError, match="missing.h5"):
        hub.install_substitute(entry, missing)
