"""Shared pieces of the benchmark scripts: timing, models, test signals and tables."""

import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
OPENL3_AUDIO_WEIGHTS = SHARED / "fixtures" / "openl3" / "openl3_audio_random.h5"
OPENL3_IMAGE_WEIGHTS = SHARED / "fixtures" / "openl3" / "openl3_image_random.h5"
FSDD_RECORDINGS = SHARED / "data" / "fsdd" / "recordings"
VIDEO = SHARED / "fixtures" / "openl3" / "inputs" / "video" / "bento.mp4"


def cores_busy(func, repeats):
    """Cores this process kept busy while running ``func()`` ``repeats`` times: its CPU time
    (user + system, all threads) over the wall time. Near the machine's core count means the
    work leaves no core idle for other work to overlap with.

    Returns
    -------
    float
    """
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for _ in range(repeats):
        func()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu / wall


def median_time(func, repeats, warmup=True):
    """Median wall time of ``func()`` over ``repeats`` runs, after one untimed warm-up run.

    Parameters
    ----------
    func : callable
        Called with no arguments.
    repeats : int
    warmup : bool
        Run once untimed first.

    Returns
    -------
    float
        Median seconds (``time.perf_counter``).
    """
    if warmup:
        func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine_line():
    """One line naming the machine, the backend and whether other work was running."""
    import keras

    try:
        cpu = [l.split(":", 1)[1].strip() for l in subprocess.run(
            ["lscpu"], capture_output=True, text=True).stdout.splitlines()
            if l.startswith("Model name")][0]
    except Exception:  # noqa: BLE001 - informational only
        cpu = platform.processor() or "unknown CPU"
    busy = subprocess.run(["pgrep", "-f", "l3embed train"], capture_output=True).returncode == 0
    load = os.getloadavg()[0]
    return (f"machine: {cpu}, {os.cpu_count()} cores, keras {keras.__version__} "
            f"({keras.backend.backend()} backend), load avg {load:.1f}"
            + (", a training job running concurrently (figures are lower bounds)" if busy else ""))


def randomise_like_fixtures(trunk, seed=0):
    """Draw an audio trunk's weights from the distributions of the OpenL3 fixture weights (He
    normal kernels, biases N(0, 0.1), BatchNorm statistics like a trained network's; a new
    layer's BatchNorm is the identity, which leaves the [-80, 0] dB input unnormalised).

    Parameters
    ----------
    trunk : keras.Model
        An audio trunk; changed in place.
    seed : int
    """
    import keras

    rng = np.random.RandomState(seed)
    for layer in trunk.layers:
        if isinstance(layer, keras.layers.Conv2D):
            shape = layer.kernel.shape
            fan_in = shape[0] * shape[1] * shape[2]
            layer.set_weights([rng.normal(0, np.sqrt(2 / fan_in), shape),
                               rng.normal(0, 0.1, shape[-1])])
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        n = layer.gamma.shape[0]
        is_input = layer.name == "input_bn"
        layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n),
                           rng.uniform(-50, -30, n) if is_input else rng.normal(0, 0.1, n),
                           rng.uniform(100, 400, n) if is_input else rng.uniform(0.5, 1.5, n)])


def audio_model(width, input_repr="mel256", embedding_size=6144):
    """An audio embedding model: OpenL3's layout with the fixture weights at width 1 (when the
    shared fixtures are present); otherwise random weights with fixture-like BatchNorm
    statistics (see :func:`randomise_like_fixtures`).

    Returns
    -------
    openl3lite.models.AudioEmbeddingModel
    """
    import openl3lite
    from openl3lite.models import random_audio_model

    if width == 1.0 and OPENL3_AUDIO_WEIGHTS.exists():
        return openl3lite.load_audio_embedding_model_from_path(
            OPENL3_AUDIO_WEIGHTS, input_repr, embedding_size)
    model = random_audio_model(input_repr, embedding_size, width)
    randomise_like_fixtures(model.trunk)
    return model


def named_audio_model(name):
    """A model by name (``l3embed models`` lists them), e.g. the shipped
    ``avdigits-mel128-w0125``; OpenL3's names need their weights installed (``l3embed
    download``).

    Returns
    -------
    openl3lite.models.AudioEmbeddingModel
    """
    import openl3lite

    return openl3lite.load_audio_embedding_model_from_path(name)


def image_model(width, embedding_size=8192):
    """An image embedding model (fixture weights at width 1 when present, random otherwise)."""
    import openl3lite
    from openl3lite.models import random_image_model

    if width == 1.0 and OPENL3_IMAGE_WEIGHTS.exists():
        return openl3lite.load_image_embedding_model_from_path(OPENL3_IMAGE_WEIGHTS,
                                                               embedding_size)
    return random_image_model(embedding_size, width)


def chirp_signal(seconds, sr=44100, seed=0):
    """OpenL3's speed-baseline input: an exponential chirp 50 Hz -> 16 kHz plus noise.

    Returns
    -------
    np.ndarray, float64, shape (seconds * sr,)
    """
    t = np.arange(int(seconds * sr)) / sr
    k = np.log(16000 / 50) / seconds
    phase = 2 * np.pi * 50 * (np.exp(k * t) - 1) / k
    noise = np.random.RandomState(seed).standard_normal(len(t))
    return 0.5 * np.sin(phase) + 0.05 * noise


def print_table(title, header, rows):
    """Print a Markdown table.

    Parameters
    ----------
    title : str
    header : list of str
    rows : list of list
        Cells; floats are printed with 3 significant digits.
    """
    def cell(value):
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
        return str(value)

    print(f"\n{title}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(cell(v) for v in row) + " |")
