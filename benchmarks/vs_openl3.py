"""openl3lite against OpenL3 0.4.2, side by side on one machine, in alternating fresh processes.

Both libraries run the same computation: the same inputs, the same random-weight files in
OpenL3's format (``../shared/fixtures/openl3/openl3_{audio,image}_random.h5``, installed under
OpenL3's model names for both), mel256, 6144-D audio and 8192-D image embeddings, OpenL3's
``kapre`` frontend, batch 32. Every measurement is one fresh process (a worker mode of this
script) so that each library starts cold, and the runs alternate (OpenL3, openl3lite, OpenL3,
...) so that changes of machine load fall on both. Printed: median, range and ratio of

- ``get_audio_embedding`` on 20 s of 44.1 kHz audio at hop 0.1 and hop 1.0 (windows/s),
- ``get_image_embedding`` on 32 images of 256x256 (images/s),
- ``process_video_file`` on a short video (seconds per call),
- ``process_audio_file`` at hop 1.0 on a 5- and a 15-minute file (seconds, peak RSS and the
  growth of peak RSS from the short to the long file),
- RSS after import and after loading the model (before the first call),

and how far the two libraries' embeddings are apart on each input (max abs difference), so the
comparison is of one computation. OpenL3 runs in a reference environment built once outside
the repository (``--ref-env``): Python 3.11, TensorFlow 2.15, kapre 0.3.7 from its sdist,
numpy 1.23, resampy 0.2.2, and OpenL3's source from its sdist (its set-up script downloads the
published weights, so it is never run), with the fixture weights copied in under OpenL3's file
names.

    python benchmarks/vs_openl3.py                  # everything, 2 repeats (about 25 min quiet)
    python benchmarks/vs_openl3.py --quick          # smoke: short inputs, 1 repeat
    python benchmarks/vs_openl3.py --only audio,image --repeats 3
    python benchmarks/vs_openl3.py --variant "onnx={\"engine\": \"onnxruntime\"}"

``--variant LABEL=JSON`` adds an openl3lite column whose embedding calls get the JSON object's
keyword arguments, added to or replacing the benchmark's own (repeat it for several; every
task's call gets them, so give only arguments that all the chosen tasks take, or choose the
tasks with ``--only``); the default is one column, ``openl3lite`` with none.
"""

import argparse
import hashlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "openl3"
AUDIO_WEIGHTS = FIXTURES / "openl3_audio_random.h5"
IMAGE_WEIGHTS = FIXTURES / "openl3_image_random.h5"
VIDEO = FIXTURES / "inputs" / "video" / "bento.mp4"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "openl3lite-bench"

OPENL3_VERSION = "0.4.2"
INDEX = "https://pypi.org/simple"
#: The reference environment: what ``../shared/fixtures/openl3/manifest.json`` records for the
#: fixtures' OpenL3 0.4.2 run (kapre comes separately, from its 2021 sdist, without its deps).
REF_PACKAGES = [
    "setuptools<81", "tensorflow-cpu==2.15.1", "numpy==1.23.5", "scipy==1.13.1",
    "librosa==0.10.2.post1", "numba==0.60.0", "resampy==0.2.2", "soundfile", "h5py",
    "scikit-image==0.24.0", "moviepy==1.0.3", "imageio-ffmpeg",
]
KAPRE = "kapre==0.3.7"

SR = 44100
AUDIO_SECONDS = 20.0
N_IMAGES = 32
IMAGE_SIDE = 256
BATCH = 32
INPUT_REPR = "mel256"
CONTENT_TYPE = "music"
AUDIO_SIZE = 6144
IMAGE_SIZE = 8192
FRONTEND = "kapre"
WARMUP_SECONDS = 4.0
RESULT_TAG = "RESULT "


# ----------------------------------------------------------------------------- reference env


def _run(cmd, **kwargs):
    print("  $", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def _sdist_url(name, filename):
    """The URL (with its ``#sha256=`` fragment) of ``filename`` on the index's simple page."""
    with urllib.request.urlopen(f"{INDEX}/{name}/", timeout=60) as page:
        html = page.read().decode()
    for href in re.findall(r'href="([^"]+)"', html):
        if href.split("#")[0].rsplit("/", 1)[-1] == filename:
            return href.replace("&amp;", "&")
    raise SystemExit(f"{filename} is not listed on {INDEX}/{name}/")


def _fetch_verified(url, target):
    """Download ``url`` to ``target`` and check the sha256 in its fragment."""
    want = url.split("#sha256=")[1] if "#sha256=" in url else None
    with urllib.request.urlopen(url.split("#")[0], timeout=300) as src:
        data = src.read()
    got = hashlib.sha256(data).hexdigest()
    if want and got != want:
        raise SystemExit(f"{url}: sha256 {got}, the index says {want}")
    target.write_bytes(data)


def ref_paths(ref_env):
    """``(python, openl3 source folder)`` of a reference environment folder."""
    return ref_env / "venv" / "bin" / "python", ref_env / f"openl3-{OPENL3_VERSION}"


def build_ref_env(ref_env, python):
    """Build the OpenL3 0.4.2 reference environment in ``ref_env`` unless it is complete.

    A venv of ``python`` (3.11) with :data:`REF_PACKAGES` and kapre 0.3.7 from its sdist
    (``--no-deps``: its wheel on the index today is a 2025 rebuild for numpy 2 and TF 2.16),
    and OpenL3's sdist unpacked beside it, its package folder holding the fixture weights
    under the names of OpenL3's published files (``openl3_audio_mel256_music.h5`` etc.), where
    ``openl3.models`` looks for them. ``READY.json`` marks a complete build.

    Returns
    -------
    dict
        The contents of ``READY.json``: package versions of the environment.
    """
    ready = ref_env / "READY.json"
    if ready.exists():
        return json.loads(ready.read_text())
    print(f"building the OpenL3 {OPENL3_VERSION} reference environment in {ref_env}", flush=True)
    ref_env.mkdir(parents=True, exist_ok=True)
    venv_python, source = ref_paths(ref_env)
    if not venv_python.exists():
        _run([python, "-m", "venv", ref_env / "venv"])
    pip = [venv_python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run(pip + REF_PACKAGES)
    _run(pip + ["--no-deps", "--no-binary", "kapre", KAPRE])
    if not (source / "openl3" / "core.py").exists():
        name = f"openl3-{OPENL3_VERSION}.tar.gz"
        url = _sdist_url("openl3", name)
        print(f"  fetching {url.split('#')[0]}", flush=True)
        archive = ref_env / name
        _fetch_verified(url, archive)
        with tarfile.open(archive) as tar:
            tar.extractall(ref_env, filter="data")
        archive.unlink()
    for modality, weights in (("audio", AUDIO_WEIGHTS), ("image", IMAGE_WEIGHTS)):
        for input_repr in ("linear", "mel128", "mel256"):
            for content_type in ("music", "env"):
                shutil.copyfile(weights, source / "openl3" /
                                f"openl3_{modality}_{input_repr}_{content_type}.h5")
    freeze = subprocess.run([venv_python, "-m", "pip", "freeze"], capture_output=True,
                            text=True, check=True).stdout.split()
    version = subprocess.run([venv_python, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    info = {"python": version,
            "packages": freeze, "openl3_source": str(source)}
    ready.write_text(json.dumps(info, indent=1))
    return info


def install_lite_home(home):
    """Install the fixture weights under OpenL3's model names in an openl3lite weights cache
    (as ``tests/conftest.py`` does), so that both libraries load the same files by name."""
    sys.path.insert(0, str(REPO))
    from openl3lite import hub

    os.environ["OPENL3LITE_HOME"] = str(home)
    for entry in hub.weight_files():
        source = AUDIO_WEIGHTS if entry["modality"] == "audio" else IMAGE_WEIGHTS
        record = hub.installed_record(entry) or {}
        if hub.is_installed(entry) and record.get("source", "").endswith(f" file {source}"):
            continue
        hub.install_substitute(entry, source)


# ----------------------------------------------------------------------------- inputs


def test_signal(seconds, sr=SR, seed=0, start=0):
    """Chirps (50 Hz -> 16 kHz, repeating every 20 s) plus white noise: samples
    ``start .. start + seconds * sr`` of one endless signal.

    Returns
    -------
    np.ndarray, float32, shape (int(seconds * sr),), in [-0.55, 0.55] roughly
    """
    import numpy as np

    n = round(seconds * sr)
    t = ((start + np.arange(n)) / sr) % AUDIO_SECONDS
    k = np.log(16000 / 50) / AUDIO_SECONDS
    phase = 2 * np.pi * 50 * (np.exp(k * t) - 1) / k
    noise = np.random.RandomState(seed + start % 9973).standard_normal(n)
    return (0.5 * np.sin(phase) + 0.05 * noise).astype(np.float32)


def write_wav(path, seconds, block_seconds=60):
    """Write :func:`test_signal` as a 16-bit 44.1 kHz mono WAV, block by block, via a temp
    file renamed into place (kept if it already exists)."""
    import soundfile as sf

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with sf.SoundFile(tmp, "w", SR, 1, "PCM_16", format="WAV") as out:
        for start in range(0, int(seconds * SR), block_seconds * SR):
            n = min(block_seconds * SR, int(seconds * SR) - start)
            out.write(test_signal(n / SR, start=start))
    os.replace(tmp, path)
    return path


def write_images(path):
    """32 random 256x256 RGB uint8 images (seeded), saved as ``.npy``."""
    import numpy as np

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        images = np.random.RandomState(0).randint(0, 256, (N_IMAGES, IMAGE_SIDE, IMAGE_SIDE, 3))
        np.save(path, images.astype(np.uint8))
    return path


# ----------------------------------------------------------------------------- worker


def _status_mb(field):
    """A size from /proc/self/status in MB: ``VmRSS`` (resident now) or ``VmHWM`` (this
    process's own peak; ``ru_maxrss`` would carry the RSS of the process that forked it)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _load_npz(path):
    import numpy as np

    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def worker(spec):
    """One measurement in this (fresh) process; returns a dict of figures.

    ``spec``: ``lib`` (``openl3`` or ``openl3lite``), ``task`` (``audio``, ``image``,
    ``video`` or ``file``), ``kwargs`` (extra keyword arguments for openl3lite's calls),
    ``input``, ``hop``, ``save`` (where to write the embedding for the agreement check).
    """
    import importlib

    t0 = time.perf_counter()
    lib = importlib.import_module(spec["lib"])
    models = importlib.import_module(spec["lib"] + ".models")
    import numpy as np

    out = {"import_s": time.perf_counter() - t0, "rss_import_mb": _status_mb("VmRSS")}
    kwargs = spec.get("kwargs", {})
    task = spec["task"]
    t0 = time.perf_counter()
    audio_model = image_model = None
    if task in ("audio", "file", "video"):
        audio_model = models.load_audio_embedding_model(INPUT_REPR, CONTENT_TYPE, AUDIO_SIZE,
                                                        frontend=FRONTEND)
    if task in ("image", "video"):
        image_model = models.load_image_embedding_model(INPUT_REPR, CONTENT_TYPE, IMAGE_SIZE)
    out["load_s"] = time.perf_counter() - t0
    out["rss_idle_mb"] = _status_mb("VmRSS")
    save = spec["save"]
    if task == "audio":
        import soundfile as sf

        samples, sr = sf.read(spec["input"], dtype="float32")
        call = lambda x: lib.get_audio_embedding(x, sr, **{
            "model": audio_model, "hop_size": spec["hop"], "batch_size": BATCH, "center": True,
            "frontend": FRONTEND, "verbose": False, **kwargs})
        call(samples[: int(WARMUP_SECONDS * sr)])
        t0 = time.perf_counter()
        emb, ts = call(samples)
        out["call_s"] = time.perf_counter() - t0
        out["rate"] = len(emb) / out["call_s"]
        np.savez(save, embedding=emb, timestamps=ts)
    elif task == "image":
        images = np.load(spec["input"])
        call = lambda x: lib.get_image_embedding(x, **{
            "model": image_model, "batch_size": BATCH, "verbose": False, **kwargs})
        call(images[:2])
        t0 = time.perf_counter()
        emb = call(images)
        out["call_s"] = time.perf_counter() - t0
        out["rate"] = len(emb) / out["call_s"]
        np.savez(save, embedding=emb)
    elif task == "video":
        folder = tempfile.mkdtemp(prefix="vs-openl3-video-")
        t0 = time.perf_counter()
        lib.process_video_file(spec["input"], **{
            "output_dir": folder, "audio_model": audio_model, "image_model": image_model,
            "audio_batch_size": BATCH, "image_batch_size": BATCH, "audio_frontend": FRONTEND,
            "verbose": False, **kwargs})
        out["call_s"] = time.perf_counter() - t0
        stem = Path(spec["input"]).stem
        arrays = {}
        for kind in ("audio", "image"):
            arrays.update({f"{kind}_{k}": v for k, v in _load_npz(
                Path(folder) / f"{stem}_{kind}.npz").items()})
        np.savez(save, **arrays)
        shutil.rmtree(folder)
    elif task == "file":
        folder = tempfile.mkdtemp(prefix="vs-openl3-file-")
        t0 = time.perf_counter()
        lib.process_audio_file(spec["input"], **{
            "output_dir": folder, "model": audio_model, "hop_size": spec["hop"],
            "batch_size": BATCH, "center": True, "frontend": FRONTEND, "verbose": False,
            **kwargs})
        out["call_s"] = time.perf_counter() - t0
        got = _load_npz(Path(folder) / (Path(spec["input"]).stem + ".npz"))
        out["rate"] = len(got["embedding"]) / out["call_s"]
        np.savez(save, **got)
        shutil.rmtree(folder)
    else:
        raise SystemExit(f"unknown task {task!r}")
    out["rss_peak_mb"] = _status_mb("VmHWM")
    versions = {}
    for name in ("tensorflow", "keras", "numpy", "resampy", "kapre", spec["lib"]):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "?")
    out["versions"] = versions
    return out


# ----------------------------------------------------------------------------- driver


class Libraries:
    """How to start a worker process for each column: OpenL3 in the reference environment,
    openl3lite (one column per variant) in this Python with this repository on the path."""

    def __init__(self, ref_env, lite_home, variants):
        self.ref_python, self.ref_source = ref_paths(ref_env)
        self.lite_home = lite_home
        self.variants = variants  # list of (label, kwargs)

    @property
    def labels(self):
        return ["OpenL3"] + [label for label, _ in self.variants]

    def command(self, label, spec):
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
        env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        if label == "OpenL3":
            python = self.ref_python
            env["PYTHONPATH"] = str(self.ref_source)
            spec = dict(spec, lib="openl3", kwargs={})
        else:
            python = sys.executable
            env.update(PYTHONPATH=str(REPO), OPENL3LITE_HOME=str(self.lite_home),
                       OPENL3LITE_OFFLINE="1")
            spec = dict(spec, lib="openl3lite", kwargs=dict(self.variants)[label])
        return [str(python), __file__, "--worker", json.dumps(spec)], env


def run_worker(libs, label, spec, timeout):
    """Run one measurement in a fresh process; returns its figures plus the load average."""
    cmd, env = libs.command(label, spec)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    wall = time.perf_counter() - t0
    lines = [l for l in proc.stdout.splitlines() if l.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-25:])
        raise SystemExit(f"{label} {spec['task']} failed (exit {proc.returncode}):\n{tail}")
    result = json.loads(lines[-1][len(RESULT_TAG):])
    result.update(process_s=wall, load_before=load_before, load_after=os.getloadavg()[0])
    return result


def agreement_figures(a_path, b_path):
    """How far apart the embeddings two workers saved are, per embedding array.

    Returns
    -------
    dict
        array name -> dict with ``max_abs_diff``, ``median_abs_diff``, ``max_abs_openl3`` (the
        scale: largest |value| of the first file's array), ``min_cosine`` (row-wise, over
        windows / frames); all inf / nan where the shapes differ.
    """
    import numpy as np

    a, b = _load_npz(a_path), _load_npz(b_path)
    out = {}
    for key in a:
        if not (key.endswith("embedding") and key in b):
            continue
        x, y = a[key].astype(np.float64), b[key].astype(np.float64)
        scale = float(np.max(np.abs(x))) if x.size else 0.0
        if x.shape != y.shape or not x.size:
            out[key] = {"max_abs_diff": float("inf"), "median_abs_diff": float("inf"),
                        "max_abs_openl3": scale, "min_cosine": float("nan")}
            continue
        diff = np.abs(x - y)
        cosine = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
                                   + 1e-30)
        out[key] = {"max_abs_diff": float(diff.max()), "median_abs_diff": float(np.median(diff)),
                    "max_abs_openl3": scale, "min_cosine": float(cosine.min())}
    return out


def workloads(args, data):
    """The measurements to make: ``(key, title, spec, what)`` with ``what`` the figure read
    off each worker (``rate`` is higher-better, the others lower-better)."""
    items = []
    if "audio" in args.only:
        wav = write_wav(data / f"signal_{args.audio_seconds:g}s.wav", args.audio_seconds)
        for hop in (0.1, 1.0):
            items.append((f"audio_hop{hop:g}",
                          (f"get_audio_embedding, {args.audio_seconds:g} s, hop {hop:g} "
                           "(windows/s)"),
                          {"task": "audio", "input": str(wav), "hop": hop}, "rate"))
    if "image" in args.only:
        items.append(("image", (f"get_image_embedding, {N_IMAGES} images {IMAGE_SIDE}x"
                                f"{IMAGE_SIDE}, batch {BATCH} (images/s)"),
                      {"task": "image", "input": str(write_images(data / "images.npy"))},
                      "rate"))
    if "video" in args.only:
        items.append(("video", f"process_video_file, {VIDEO.name} (s per call)",
                      {"task": "video", "input": str(VIDEO)}, "call_s"))
    if "long" in args.only:
        for minutes in args.long_minutes:
            wav = write_wav(data / f"signal_{minutes:g}min.wav", minutes * 60)
            items.append((f"file_{minutes:g}min",
                          f"process_audio_file, {minutes:g}-min file, hop 1 (s per call)",
                          {"task": "file", "input": str(wav), "hop": 1.0}, "call_s"))
    return items


def machine_info():
    """CPU model, cores and ``uptime``."""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    cpu = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines()
                if l.startswith("Model name")), platform.processor() or "unknown CPU")
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release()}


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def fmt(value):
    if math.isnan(value):
        return "-"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def summarise(values):
    """``median [min-max]`` of a list of numbers."""
    if not values:
        return "-", float("nan")
    med = statistics.median(values)
    if len(values) == 1:
        return fmt(med), med
    return f"{fmt(med)} [{fmt(min(values))}-{fmt(max(values))}]", med


def report(results, libs, items, long_minutes):
    """Print the side-by-side table (Markdown) from ``results[key][label] -> list of dict``."""
    labels = libs.labels
    header = ["workload"] + labels + [f"{l} / OpenL3" for l in labels[1:]]
    rows = []

    def add(title, per_label, higher_better):
        cells, meds = [], []
        for label in labels:
            text, med = summarise(per_label.get(label, []))
            cells.append(text)
            meds.append(med)
        ratios = []
        for med in meds[1:]:
            if math.isnan(meds[0]) or math.isnan(med) or med == 0:
                ratios.append("-")
            else:
                ratios.append(f"{(med / meds[0]) if higher_better else (meds[0] / med):.2f}")
        rows.append([title] + cells + ratios)

    for key, title, _, what in items:
        add(title, {l: [r[what] for r in results[key].get(l, [])] for l in labels},
            what == "rate")
        if key.startswith("file_"):
            add("  same, windows/s", {l: [r["rate"] for r in results[key].get(l, [])]
                                       for l in labels}, True)
    for key, title, _, _ in items:
        if key.startswith("file_"):
            add(f"peak RSS, {title.split(',')[1].strip()} (MB)",
                {l: [r["rss_peak_mb"] for r in results[key].get(l, [])] for l in labels}, False)
    files = [k for k, *_ in items if k.startswith("file_")]
    if len(files) >= 2:
        short, long_ = files[0], files[-1]
        growth = {}
        for label in labels:
            a = [r["rss_peak_mb"] for r in results[short].get(label, [])]
            b = [r["rss_peak_mb"] for r in results[long_].get(label, [])]
            if a and b:
                growth[label] = [statistics.median(b) - statistics.median(a)]
        rows.append([f"peak RSS growth {long_minutes[0]:g} -> {long_minutes[-1]:g} min (MB)"]
                    + [fmt(growth[l][0]) if l in growth else "-" for l in labels]
                    + ["-"] * (len(labels) - 1))
    first = items[0][0]
    for what, title in (("rss_import_mb", "RSS after import (MB)"),
                        ("rss_idle_mb", f"RSS before the first call, {first} (MB)"),
                        ("import_s", "import time (s)"), ("load_s", f"model load, {first} (s)")):
        add(title, {l: [r[what] for r in results[first].get(l, [])] for l in labels}, False)
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\nratios: openl3lite's speed-up (rates: its rate / OpenL3's; seconds and MB: "
          "OpenL3's / its), of the medians; [min-max] over the repeats")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--ref-env", type=Path, default=CACHE / f"openl3-{OPENL3_VERSION}",
                        help="OpenL3 reference environment (built there if missing)")
    parser.add_argument("--data", type=Path, default=CACHE / "data",
                        help="where the generated inputs are kept (long files take 100 MB)")
    parser.add_argument("--python311", default="python3.11",
                        help="the Python that the reference venv is made from")
    parser.add_argument("--repeats", type=int, default=2, help="fresh processes per library")
    parser.add_argument("--long-repeats", type=int, default=1,
                        help="repeats of the long-file runs")
    parser.add_argument("--only", default="audio,image,video,long",
                        help="comma-separated subset of audio,image,video,long")
    parser.add_argument("--long-minutes", default="5,15",
                        help="comma-separated lengths (minutes) of the long files")
    parser.add_argument("--audio-seconds", type=float, default=AUDIO_SECONDS)
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=JSON",
                        help="an openl3lite column with these keyword arguments")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 repeat, 5 s audio, 0.5- and 1.5-min files")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per process")
    parser.add_argument("--build-only", action="store_true",
                        help="build the reference environment and stop")
    args = parser.parse_args()
    if args.worker:
        print(RESULT_TAG + json.dumps(worker(json.loads(args.worker))), flush=True)
        return
    if args.quick:
        args.repeats, args.long_repeats, args.audio_seconds = 1, 1, 5.0
        args.long_minutes = "0.5,1.5"
    args.only = set(args.only.split(","))
    args.long_minutes = [float(m) for m in args.long_minutes.split(",")]
    for path in (AUDIO_WEIGHTS, IMAGE_WEIGHTS, VIDEO):
        if not path.exists():
            raise SystemExit(f"{path}: missing (the shared fixtures must be beside the repo)")
    ref_info = build_ref_env(args.ref_env.expanduser().resolve(), args.python311)
    if args.build_only:
        return
    variants = [("openl3lite", {})]  # the defaults always run; each --variant adds a column
    for text in args.variant:
        label, _, kw = text.partition("=")
        if label in ("OpenL3", "openl3lite") or label in dict(variants):
            raise SystemExit(f"--variant {text!r}: the label {label!r} is taken")
        variants.append((label, json.loads(kw) if kw else {}))
    lite_home = CACHE / "openl3lite-home"
    install_lite_home(lite_home)
    libs = Libraries(args.ref_env.expanduser().resolve(), lite_home, variants)
    data = args.data.expanduser()
    items = workloads(args, data)
    info = machine_info()
    start_uptime = uptime()
    print(f"machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}")
    print(f"OpenL3 {OPENL3_VERSION} env: Python {ref_info['python']}, " + ", ".join(
        p for p in ref_info["packages"] if p.split("==")[0].lower() in
        ("tensorflow-cpu", "kapre", "numpy", "resampy", "librosa", "keras")))
    print(f"start: {start_uptime}", flush=True)
    results = {}
    saves = Path(tempfile.mkdtemp(prefix="vs-openl3-"))
    for key, title, spec, what in items:
        results[key] = {label: [] for label in libs.labels}
        repeats = args.long_repeats if spec["task"] == "file" else args.repeats
        for rep in range(repeats):
            for label in libs.labels:  # ABAB...: OpenL3 then each variant, repeat
                save = saves / f"{key}_{label}_{rep}.npz"
                result = run_worker(libs, label, dict(spec, save=str(save)), args.timeout)
                result["save"] = str(save)
                results[key][label].append(result)
                shown = result[what]
                print(f"  {key:<13} {label:<12} run {rep + 1}: {what} {fmt(shown)}, "
                      f"peak RSS {result['rss_peak_mb']:.0f} MB, load "
                      f"{result['load_before']:.2f}->{result['load_after']:.2f}", flush=True)
    end_uptime = uptime()
    versions = {label: results[items[0][0]][label][0]["versions"] for label in libs.labels}
    print(f"\nend:   {end_uptime}")
    print("versions: " + "; ".join(f"{label}: " + ", ".join(f"{k} {v}" for k, v in vs.items())
                                   for label, vs in versions.items()))
    report(results, libs, items, args.long_minutes)
    print("\nagreement with OpenL3 (same input, first run of each; |difference| of the "
          "values, cosine of each window's / frame's embeddings):")
    agreement = {}
    for key, *_ in items:
        for label in libs.labels[1:]:
            for array, fig in agreement_figures(results[key]["OpenL3"][0]["save"],
                                                results[key][label][0]["save"]).items():
                agreement[f"{key}/{label}/{array}"] = fig
                print(f"  {key:<13} {label:<12} {array:<16} max abs diff "
                      f"{fig['max_abs_diff']:.3g} (median {fig['median_abs_diff']:.2g}; "
                      f"OpenL3's largest |value| {fig['max_abs_openl3']:.3g}), lowest cosine "
                      f"{fig['min_cosine']:.6f}")
    print(f"\ncommand: python benchmarks/vs_openl3.py {' '.join(sys.argv[1:])}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "uptime_start": start_uptime,
                                         "uptime_end": end_uptime, "reference": ref_info,
                                         "versions": versions, "results": results,
                                         "agreement": agreement,
                                         "argv": sys.argv[1:]}, indent=1))
    shutil.rmtree(saves)


if __name__ == "__main__":
    main()
