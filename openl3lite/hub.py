"""Download OpenL3 0.4.2's published weight files into a per-user cache, once, verified.

OpenL3 publishes its twelve trained models as gzipped Keras HDF5 files
(``openl3_<modality>_<input_repr>_<content_type>-v0_4_0.h5.gz``) on the ``models`` branch of
its git repository. This module lists them (from the packaged ``openl3_weights.json``), fetches
one on first use the way KerasHub presets and ``torch.hub`` do, checks the downloaded bytes
against the git blob id pinned in that list *before* installing anything, and installs the
decompressed ``.h5`` atomically into ``cache_dir() / "openl3"`` with a JSON record beside it.

Environment
-----------
``OPENL3LITE_HOME``
    The cache folder (default: ``platformdirs.user_cache_dir("openl3lite")``, e.g.
    ``~/.cache/openl3lite`` on Linux).
``OPENL3LITE_OFFLINE``
    ``1``, ``true``, ``yes`` or ``on``: never use the network; a file that is not installed is
    an error that says how to install it by hand (``l3embed download ... --from ...``).
``http_proxy``, ``https_proxy``, ``no_proxy``
    Honoured by the download (``urllib.request``).

Every failure raises :class:`openl3lite.errors.OpenL3liteError` naming the file and the
problem, and leaves nothing partial in the cache. This module imports neither Keras nor
TensorFlow.
"""

import datetime
import functools
import gzip
import hashlib
import http.client
import json
import os
import sys
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import platformdirs

from .errors import OpenL3liteError, check_input_file, short_reason
from .output import fsync_folder, new_temporary

#: Bytes read or written at a time while downloading, hashing and decompressing.
_CHUNK = 1 << 20
#: The first bytes of every gzip file.
_GZIP_MAGIC = b"\x1f\x8b"
#: The first bytes of an HDF5 file (without a user block).
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: Values of ``OPENL3LITE_OFFLINE`` (compared lower-cased) that mean "offline".
_TRUE_WORDS = ("1", "true", "yes", "on")
_REQUIRED_KEYS = ("file", "git_blob_sha1", "decompressed_name")
_METADATA_PATH = Path(__file__).with_name("openl3_weights.json")


class _DownloadProblem(Exception):
    """Internal: why a download failed, in words; :func:`fetch` turns it into an
    :class:`OpenL3liteError` naming the file and the URL."""


# ----------------------------------------------------------------------------- metadata


@functools.lru_cache(maxsize=1)
def _metadata_text():
    try:
        return _METADATA_PATH.read_text(encoding="utf-8")
    except OSError as exc:
        raise OpenL3liteError(
            f"{_METADATA_PATH}: cannot read the packaged list of OpenL3 weight files "
            f"({short_reason(exc)}); reinstall openl3lite") from None


def _metadata():
    """The packaged ``openl3_weights.json`` as a fresh dict (callers may modify it)."""
    return json.loads(_metadata_text())


def weight_files():
    """OpenL3 0.4.2's published weight files.

    Returns
    -------
    list of dict
        One dict per file, in the packaged list's order, with the keys ``file`` (the
        ``.h5.gz`` name), ``modality`` (``"audio"`` or ``"image"``), ``input_repr``
        (``"linear"``, ``"mel128"`` or ``"mel256"``), ``content_type`` (``"env"`` or
        ``"music"``), ``git_blob_sha1`` (40 hex digits: git's object id of the ``.h5.gz``),
        ``decompressed_name`` (the ``.h5`` name once installed), and ``url`` (str: where to
        download the ``.h5.gz``, from the list's ``download_url_pattern``). Fresh copies.
    """
    meta = _metadata()
    pattern = meta["download_url_pattern"]
    return [dict(entry, url=pattern.format(file=entry["file"])) for entry in meta["files"]]


def licence_text():
    """The licence and citation of OpenL3's published weights.

    Returns
    -------
    str
        The packaged list's ``licence`` (CC BY 4.0, with the paper to cite).
    """
    return _metadata()["licence"]


def source_info():
    """Where the list of weight files comes from.

    Returns
    -------
    dict
        The packaged ``openl3_weights.json`` without its ``files`` list: ``source_repository``,
        ``branch``, ``branch_commit``, ``download_url_pattern``, ``integrity``, ``licence``...
    """
    meta = _metadata()
    meta.pop("files", None)
    return meta


# ----------------------------------------------------------------------------- places


def cache_dir():
    """The openl3lite cache folder (not created here).

    Returns
    -------
    pathlib.Path
        ``$OPENL3LITE_HOME`` when set and not empty (``~`` expanded), else
        ``platformdirs.user_cache_dir("openl3lite")``. Weight files live in its ``openl3``
        subfolder.
    """
    home = os.environ.get("OPENL3LITE_HOME", "").strip()
    if home:
        return Path(home).expanduser()
    return Path(platformdirs.user_cache_dir("openl3lite"))


def _weights_dir():
    return cache_dir() / "openl3"


def is_offline():
    """Whether the network must not be used.

    Returns
    -------
    bool
        True when ``OPENL3LITE_OFFLINE`` is ``1``, ``true``, ``yes`` or ``on`` (any case).
    """
    return os.environ.get("OPENL3LITE_OFFLINE", "").strip().lower() in _TRUE_WORDS


def _check_entry(entry):
    """Refuse an entry that lacks a key or whose ``decompressed_name`` is not a plain name."""
    if not isinstance(entry, dict):
        raise OpenL3liteError(f"weight file entry must be a dict, got {type(entry).__name__}")
    missing = [key for key in _REQUIRED_KEYS if not entry.get(key)]
    if missing:
        raise OpenL3liteError(
            f"weight file entry {entry.get('file', entry)!r} lacks {', '.join(missing)}")
    name = entry["decompressed_name"]
    if (not isinstance(name, str) or os.path.basename(name) != name or name.startswith(".")
            or "/" in name or "\\" in name):
        raise OpenL3liteError(
            f"{entry['file']}: decompressed_name {name!r} must be a plain file name")
    return entry


def installed_path(entry):
    """Where the decompressed ``.h5`` of a weight file lives once installed.

    Parameters
    ----------
    entry : dict
        An item of :func:`weight_files` (or any dict with ``file``, ``git_blob_sha1`` and
        ``decompressed_name``).

    Returns
    -------
    pathlib.Path
        ``cache_dir() / "openl3" / entry["decompressed_name"]``, whether or not it exists.
    """
    return _weights_dir() / _check_entry(entry)["decompressed_name"]


def _record_path(entry):
    path = installed_path(entry)
    return path.with_name(path.name + ".json")


def _lock_path(entry):
    path = installed_path(entry)
    return path.with_name(path.name + ".lock")


def installed_record(entry):
    """The JSON record written beside an installed weight file.

    Parameters
    ----------
    entry : dict
        An item of :func:`weight_files`.

    Returns
    -------
    dict or None
        ``file``, ``decompressed_name``, ``git_blob_sha1`` (of the ``.h5.gz``),
        ``compressed_size`` and ``size`` (bytes of the ``.h5.gz`` and of the ``.h5``),
        ``sha256`` (of the ``.h5``), ``source`` (the URL, or ``"from file <path>"``) and
        ``installed_at`` (ISO 8601, UTC); None when there is no readable record.
    """
    try:
        record = json.loads(_record_path(entry).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def is_installed(entry):
    """Whether a weight file is installed (its ``.h5`` and its record exist).

    Parameters
    ----------
    entry : dict
        An item of :func:`weight_files`.

    Returns
    -------
    bool
        The contents are not checked here; :func:`verify_installed` does that.
    """
    return installed_path(entry).is_file() and installed_record(entry) is not None


# ----------------------------------------------------------------------------- hashing


def git_blob_sha1(path_or_bytes):
    """Git's object id of a file's bytes (what ``git hash-object`` prints).

    Parameters
    ----------
    path_or_bytes : str, os.PathLike, bytes, bytearray or memoryview
        A file (read in chunks) or the data itself.

    Returns
    -------
    str
        40 lower-case hex digits: ``sha1(b"blob " + str(len(data)).encode() + b"\\0" + data)``.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    path = os.fspath(path_or_bytes)
    if os.path.isdir(path):
        raise OpenL3liteError(f"{path}: is a folder, not a file")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            digest = hashlib.sha1(b"blob %d\0" % size)
            read = 0
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                digest.update(chunk)
                read += len(chunk)
    except FileNotFoundError:
        raise OpenL3liteError(f"{path}: file not found") from None
    except OSError as exc:
        raise OpenL3liteError(f"{path}: cannot read ({short_reason(exc)})") from None
    if read != size:
        raise OpenL3liteError(f"{path}: file changed while it was being read")
    return digest.hexdigest()


def _sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- files


def _temp_file(folder, name, kind):
    """A new, uniquely named temporary file in ``folder``: ``(fd, path)``, open for writing.

    Named and created by :func:`openl3lite.output.new_temporary` (``.tmp-<host>-<pid>-...``,
    mode from the umask, cleared by a later run when its process was killed); ``name`` and
    ``kind`` end the name, to tell the files of one install apart.
    """
    path = new_temporary(folder, f"-{name}.{kind}")
    return os.open(path, os.O_WRONLY | os.O_TRUNC), Path(path)


def _remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:  # already gone (renamed into place), or not ours to remove
        pass


def _gunzip(source, fd, label):
    """Decompress the gzip file ``source`` into the open file descriptor ``fd`` (closed here).

    Returns
    -------
    (str, int)
        The sha256 (hex) and size in bytes of the decompressed data.
    """
    digest = hashlib.sha256()
    size = 0
    with open(fd, "wb") as out, gzip.open(source, "rb") as gz:
        while True:
            try:
                chunk = gz.read(_CHUNK)
            except (OSError, EOFError, zlib.error) as exc:
                raise OpenL3liteError(
                    f"{label}: not a valid gzip file ({short_reason(exc)})") from None
            if not chunk:
                break
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size


def _write_json(fd, data):
    with open(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=1)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())


def _install_gz(entry, gz_path, source, temps):
    """Decompress the verified ``gz_path`` and install the ``.h5`` and its record atomically.

    ``temps`` collects the temporary files made here, for the caller's clean-up.
    """
    final = installed_path(entry)
    h5_fd, h5_tmp = _temp_file(final.parent, final.name, "h5")
    temps.append(h5_tmp)
    sha256, size = _gunzip(gz_path, h5_fd, entry["file"])
    return _install_h5(entry, h5_tmp, {"compressed_size": os.path.getsize(gz_path),
                                       "sha256": sha256, "size": size, "source": source},
                       temps)


def _install_h5(entry, h5_tmp, facts, temps):
    """Move the complete temporary ``h5_tmp`` into place with its record (the entry's names
    and git blob id, ``facts`` and the time), atomically: without its record the ``.h5``
    counts as not installed, so it is removed if the record cannot be written."""
    final = installed_path(entry)
    record_path = _record_path(entry)
    folder = final.parent
    record = {
        "file": entry["file"],
        "decompressed_name": entry["decompressed_name"],
        "git_blob_sha1": entry["git_blob_sha1"],
        **facts,
        "installed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
    }
    json_fd, json_tmp = _temp_file(folder, record_path.name, "json")
    temps.append(json_tmp)
    _write_json(json_fd, record)
    os.replace(h5_tmp, final)
    try:
        os.replace(json_tmp, record_path)
    except BaseException:
        _remove_quietly(final)
        raise
    fsync_folder(folder)
    return str(final)


def install_substitute(entry, h5_path):
    """Install a decompressed HDF5 file *in place of* a published weight file, unchecked.

    For tests and benchmarks that stand OpenL3's weights in with files of the same layout
    (the fixtures' random weights): the cache then holds what :func:`fetch` would leave, and
    OpenL3's model names resolve to ``h5_path``'s copy. Its record says
    ``"source": "substitute from file <path>"``; :func:`verify_installed` checks the copy
    against the sha256 recorded here, not against the published file.

    Parameters
    ----------
    entry : dict
        An item of :func:`weight_files`.
    h5_path : str or os.PathLike
        An HDF5 weights file in OpenL3's format.

    Returns
    -------
    str
        The path of the installed copy.
    """
    _check_entry(entry)
    source = os.path.abspath(check_input_file(h5_path))

    def work(temps):
        final = installed_path(entry)
        h5_fd, h5_tmp = _temp_file(final.parent, final.name, "h5")
        temps.append(h5_tmp)
        with open(source, "rb") as src, open(h5_fd, "wb") as out:
            out.writelines(iter(lambda: src.read(_CHUNK), b""))
        return _install_h5(entry, h5_tmp, {"sha256": _sha256_file(h5_tmp),
                                           "size": os.path.getsize(h5_tmp),
                                           "source": f"substitute from file {source}"},
                           temps)

    return _guarded_install(entry, False, work, f"from {source}")


def _check_blob(entry, path):
    """The git blob id of ``path`` (str) and whether it is the entry's pinned one (bool)."""
    got = git_blob_sha1(path)
    return got, got == entry["git_blob_sha1"].lower()


def _other_weight_file(blob):
    """The name of the published weight file whose blob id is ``blob``, if any."""
    for other in weight_files():
        if other["git_blob_sha1"] == blob:
            return other["file"]
    return None


def _locked(entry, progress):
    """Take the cross-process lock of one weight file; returns the held ``FileLock``."""
    import filelock

    lock = filelock.FileLock(os.fspath(_lock_path(entry)))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        if progress:
            print(f"waiting for another process installing {entry['file']} into "
                  f"{_weights_dir()}", file=sys.stderr, flush=True)
        lock.acquire()
    return lock


def _prepare_folder(entry):
    folder = _weights_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OpenL3liteError(
            f"{entry['file']}: cannot create the cache folder {folder} ({short_reason(exc)}); "
            "set OPENL3LITE_HOME to a writable folder") from None
    return folder


def _guarded_install(entry, progress, work, what):
    """Run ``work(temps)`` under the entry's lock; clean every temporary file afterwards.

    Errors other than :class:`OpenL3liteError` (disk full, permissions...) become one, with
    ``what`` (e.g. ``"from <url>"``) in the message; KeyboardInterrupt and SystemExit are
    re-raised after the clean-up.
    """
    folder = _prepare_folder(entry)
    temps = []
    try:
        lock = _locked(entry, progress)
    except OSError as exc:
        raise OpenL3liteError(
            f"{entry['file']}: cannot lock {_lock_path(entry)} ({short_reason(exc)}); "
            "set OPENL3LITE_HOME to a writable folder") from None
    try:
        return work(temps)
    except OpenL3liteError:
        raise
    except Exception as exc:  # noqa: BLE001 - disk full, permissions...: one clear error
        raise OpenL3liteError(
            f"{entry['file']}: could not install {what} into {folder} "
            f"({short_reason(exc)}); nothing was installed") from None
    finally:
        for path in temps:
            _remove_quietly(path)
        lock.release()


# ----------------------------------------------------------------------------- download


def _network_reason(exc, timeout):
    """A network exception as a short reason."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, BaseException):
            return _network_reason(reason, timeout)
        return str(reason)
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return f"no answer within {timeout:g} s (timed out)"
    if isinstance(exc, http.client.IncompleteRead):
        return f"the connection was closed after {len(exc.partial)} bytes"
    return short_reason(exc)


def _progress_bar(total, label):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
                file=sys.stderr, leave=True)


def _download(url, fd, timeout, progress, label):
    """Stream ``url`` into the open file descriptor ``fd`` (closed here).

    Raises
    ------
    _DownloadProblem
        On any network failure, or when fewer bytes came than ``Content-Length`` said.
    """
    from . import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"openl3lite/{__version__}"})
    with open(fd, "wb") as out:
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()
            raise _DownloadProblem(_network_reason(exc, timeout)) from None
        with response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.strip().isdigit() else None
            bar = _progress_bar(total, label) if progress else None
            # read1: what has arrived (up to _CHUNK), so the bar moves and a timeout mid-way
            # knows how much came
            read = getattr(response, "read1", response.read)
            received = 0
            try:
                while True:
                    try:
                        chunk = read(_CHUNK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _DownloadProblem(
                            f"{_network_reason(exc, timeout)} after {received} bytes") from None
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
        out.flush()
        os.fsync(out.fileno())
    if total is not None and received != total:
        raise _DownloadProblem(
            f"the connection was closed after {received} of {total} bytes")
    return received


def _offline_error(entry):
    url = entry.get("url") or "(no URL known)"
    model = entry.get("model") or "<model name>"
    return OpenL3liteError(
        f"{entry['file']} is not installed in {_weights_dir()} and OPENL3LITE_OFFLINE is set, "
        f"so it was not downloaded. Download it by hand from {url} (e.g. curl -LO {url}), "
        f"then install it with: l3embed download {model} --from {entry['file']} "
        f"(cache folder: {cache_dir()}, set by OPENL3LITE_HOME)")


def fetch(entry, progress=True, timeout=60.0):
    """The installed ``.h5`` of a weight file, downloading and installing it if need be.

    When it is installed this returns at once, without any network access. Otherwise (and
    unless ``OPENL3LITE_OFFLINE`` is set) it takes a cross-process lock on
    ``<cache>/openl3/<decompressed_name>.lock`` (a second process asking for the same file
    waits, then finds it installed), downloads ``entry["url"]`` with ``urllib.request``
    (which honours ``http_proxy``, ``https_proxy`` and ``no_proxy``) into a temporary file in
    the cache folder, checks its git blob id against ``entry["git_blob_sha1"]`` before
    installing anything, decompresses it into another temporary file, and renames that into
    place, with its record (:func:`installed_record`) beside it.

    Parameters
    ----------
    entry : dict
        An item of :func:`weight_files`, or any dict with ``file``, ``git_blob_sha1``,
        ``decompressed_name`` and ``url`` (and optionally ``model``, the model name used in
        the offline error's ``l3embed download`` hint).
    progress : bool
        Show a progress bar (bytes) on stderr.
    timeout : float
        Seconds to wait for the server to connect or to send more data (per socket
        operation, not for the whole download).

    Returns
    -------
    str
        The path of the installed ``.h5``.

    Raises
    ------
    OpenL3liteError
        Offline and not installed (the message says where to download the file and how to
        install it by hand), or the download failed (HTTP error, timeout, connection dropped,
        data not matching the pinned git blob id, bad gzip). The message names the file, the
        URL and the reason; nothing partial is left in the cache, also after Ctrl-C.
    """
    _check_entry(entry)
    final = installed_path(entry)
    if is_installed(entry):
        return str(final)
    if is_offline():
        raise _offline_error(entry)
    url = entry.get("url")
    if not url:
        raise OpenL3liteError(f"{entry['file']}: the weight file entry has no url to fetch from")
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise OpenL3liteError(f"timeout must be a positive number of seconds, got {timeout!r}")

    def work(temps):
        if is_installed(entry):  # another process installed it while we waited for the lock
            return str(final)
        gz_fd, gz_tmp = _temp_file(final.parent, entry["file"], "download")
        temps.append(gz_tmp)
        try:
            _download(url, gz_fd, timeout, progress, entry["file"])
        except _DownloadProblem as exc:
            raise OpenL3liteError(
                f"{entry['file']}: could not download {url}: {exc}; nothing was installed"
            ) from None
        got, ok = _check_blob(entry, gz_tmp)
        if not ok:
            raise OpenL3liteError(
                f"{entry['file']}: data downloaded from {url} does not match the pinned git "
                f"blob id {entry['git_blob_sha1']}: got {got} (corrupted or truncated "
                "download); nothing was installed")
        try:
            return _install_gz(entry, gz_tmp, url, temps)
        except OpenL3liteError as exc:
            raise OpenL3liteError(f"{exc} (downloaded from {url}); nothing was installed") \
                from None

    return _guarded_install(entry, progress, work, f"from {url}")


def install_from_file(entry, source):
    """Install a weight file from a ``.h5.gz`` downloaded by hand (no network access).

    The file is copied into the cache folder, checked against the pinned git blob id, and
    installed as :func:`fetch` would (replacing any installed copy).

    Parameters
    ----------
    entry : dict
        An item of :func:`weight_files`.
    source : str or os.PathLike
        The ``.h5.gz`` exactly as downloaded (not decompressed).

    Returns
    -------
    str
        The path of the installed ``.h5``.

    Raises
    ------
    OpenL3liteError
        ``source`` is missing, a folder, empty, an already decompressed HDF5 file, or not the
        published file (git blob id mismatch); nothing is installed then.
    """
    _check_entry(entry)
    source = os.path.abspath(check_input_file(source))
    try:
        with open(source, "rb") as f:
            head = f.read(len(_HDF5_MAGIC))
    except OSError as exc:
        raise OpenL3liteError(f"{source}: cannot read ({short_reason(exc)})") from None
    if head.startswith(_HDF5_MAGIC):
        raise OpenL3liteError(
            f"{source}: is an HDF5 file, already decompressed; pass the {entry['file']} "
            "exactly as downloaded (the .h5.gz), because the pinned git blob id is of the "
            "compressed file; nothing was installed")

    def work(temps):
        gz_fd, gz_tmp = _temp_file(installed_path(entry).parent, entry["file"], "copy")
        temps.append(gz_tmp)
        with open(source, "rb") as src, open(gz_fd, "wb") as out:
            out.writelines(iter(lambda: src.read(_CHUNK), b""))
        got, ok = _check_blob(entry, gz_tmp)
        if not ok:
            other = _other_weight_file(got)
            if other:
                why = f"it is {other}, another published weight file"
            elif not head.startswith(_GZIP_MAGIC):
                why = "it is not even a gzip file"
            else:
                why = "a different, corrupted or truncated file"
            raise OpenL3liteError(
                f"{source}: is not {entry['file']}: its git blob id is {got}, the pinned one "
                f"is {entry['git_blob_sha1']} ({why}); download it again from "
                f"{entry.get('url', 'OpenL3 models branch')}; nothing was installed")
        return _install_gz(entry, gz_tmp, f"from file {source}", temps)

    return _guarded_install(entry, False, work, f"from {source}")


# ----------------------------------------------------------------------------- verify

#: ``(path, mtime_ns, size) -> sha256`` of installed files already checked in this process.
_VERIFIED = {}


def verify_installed(entry):
    """Check that an installed ``.h5`` still has the contents recorded when it was installed.

    The file is hashed at most once per process for a given path, modification time and size.

    Parameters
    ----------
    entry : dict
        An item of :func:`weight_files`.

    Returns
    -------
    str
        The path of the installed ``.h5``.

    Raises
    ------
    OpenL3liteError
        Not installed; its record is of another file version; or its sha256 or size differ
        from its record (the message says to delete it and fetch it again).
    """
    path = installed_path(entry)
    record = installed_record(entry)
    if record is None or not path.is_file():
        raise OpenL3liteError(f"{entry['file']}: not installed in {path.parent}; fetch it first")
    if record.get("git_blob_sha1", "").lower() != entry["git_blob_sha1"].lower():
        raise OpenL3liteError(
            f"{path}: was installed from git blob {record.get('git_blob_sha1')}, not the pinned "
            f"{entry['git_blob_sha1']}; delete it and {_record_path(entry).name}, then fetch "
            "it again")
    stat = path.stat()
    key = (os.fspath(path), stat.st_mtime_ns, stat.st_size)
    if _VERIFIED.get(key) == record.get("sha256"):
        return str(path)
    got = _sha256_file(path)
    if got != record.get("sha256") or stat.st_size != record.get("size"):
        raise OpenL3liteError(
            f"{path}: modified or corrupted since it was installed (sha256 {got}, "
            f"{stat.st_size} bytes; its record says {record.get('sha256')}, "
            f"{record.get('size')} bytes); delete it and fetch it again")
    _VERIFIED[key] = got
    return str(path)
