"""Which training features work on which Keras backend: tiny `l3embed` runs under each.

Writes four short videos (a tone and coloured frames each), prepares them once
(`l3embed prepare`), then under each backend (a fresh process per command, since Keras fixes
its backend at import) runs: training with the paper's sampled pairs (evaluation, precise
BatchNorm, checkpoints), `--resume`, `l3embed export` and embedding with the export, in-batch
negatives, `--head-init matching`, `--speed-jitter`, `--init-from`, `--bn-batches 0` followed by
`export --bn-batches`, and `l3embed evaluate-avc`. Prints a table of pass / FAIL with the
seconds each took, and the last error line of each failure.

    python benchmarks/training_backends.py                    # tensorflow jax torch
    python benchmarks/training_backends.py --backends torch

Tiny settings (width 0.0625, batch 4, 4 steps): this checks that each feature runs and writes
what it should, not how well it trains.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from _common import REPO, machine_line, print_table

TINY = ["--width", "0.0625", "--batch-size", "4", "--val-fraction", "0.25",
        "--checkpoint-every", "2", "--eval-every", "2", "--bn-batches", "2", "-q"]


def write_video(path, seconds, seed, fps=4, size=(256, 240)):
    """A small H.264/AAC video: frames of one colour drifting, a tone of one pitch."""
    from moviepy import AudioArrayClip, ImageSequenceClip

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, 3)
    frames = [np.full((size[1], size[0], 3), (base + 20 * k) % 255, np.uint8)
              for k in range(int(seconds * fps))]
    t = np.arange(int(seconds * 16000)) / 16000
    tone = 0.3 * np.sin(2 * np.pi * (200 + 100 * seed) * t)
    clip = ImageSequenceClip(frames, fps=fps).with_audio(
        AudioArrayClip(np.stack([tone, tone], 1), fps=16000)).with_duration(seconds)
    clip.write_videofile(str(path), fps=fps, codec="libx264", audio_codec="aac",
                         preset="ultrafast", logger=None)
    clip.close()


def l3embed(args, backend, timeout=900):
    """Run ``l3embed ARGS`` under ``backend``; returns (ok, seconds, last error line)."""
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO),
               TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "openl3lite", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.perf_counter() - start
    lines = [x for x in done.stderr.strip().splitlines() if x.strip()]
    return done.returncode == 0, seconds, (lines[-1][:160] if lines else "")


def features(work, dataset, backend):
    """The (feature, l3embed arguments) to run in order for one backend."""
    run, model = os.path.join(work, "run"), os.path.join(work, "model.h5")
    return [
        ("train (sampled pairs, eval, precise BN, checkpoints)",
         ["train", dataset, "-o", run, "--steps", "2", *TINY]),
        ("--resume", ["train", dataset, "-o", run, "--steps", "4", "--resume", *TINY]),
        ("export", ["export", run, model, "--name", f"tiny-{backend}"]),
        ("embed with the exported model",
         ["audio", str(REPO / "examples" / "data" / "theo_314159.wav"), "--model", model,
          "-o", os.path.join(work, "emb"), "-q"]),
        ("--negatives in-batch", ["train", dataset, "-o", os.path.join(work, "inbatch"),
                                  "--steps", "2", "--negatives", "in-batch", *TINY]),
        ("--head-init matching", ["train", dataset, "-o", os.path.join(work, "matching"),
                                  "--steps", "2", "--head-init", "matching", *TINY]),
        ("--speed-jitter 0.1", ["train", dataset, "-o", os.path.join(work, "jitter"),
                                "--steps", "2", "--speed-jitter", "0.1", *TINY]),
        ("--init-from (the export)", ["train", dataset, "-o", os.path.join(work, "init"),
                                      "--steps", "2", "--init-from", model, *TINY]),
        ("--bn-batches 0, then export --bn-batches 2",
         ["train", dataset, "-o", os.path.join(work, "nobn"), "--steps", "2",
          *TINY[:-3], "--bn-batches", "0", "-q"]),
        ("", ["export", os.path.join(work, "nobn"), os.path.join(work, "nobn.h5"),
              "--bn-batches", "2"]),
        ("evaluate-avc", ["evaluate-avc", model, dataset, "--pairs", "32"]),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    print(machine_line())
    work = args.workdir or tempfile.mkdtemp(prefix="l3-train-backends-")
    videos = os.path.join(work, "videos")
    dataset = os.path.join(work, "dataset")
    if not os.path.exists(dataset):
        os.makedirs(videos, exist_ok=True)
        for i in range(4):
            write_video(os.path.join(videos, f"clip{i}.mp4"), 2.0 + 0.5 * i, i)
        ok, _, error = l3embed(["prepare", videos, "-o", dataset, "--fps", "4"], "tensorflow")
        if not ok:
            raise SystemExit(f"prepare failed: {error}")
    results = {}
    for backend in args.backends:
        folder = os.path.join(work, backend)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        label = None
        for feature, command in features(folder, dataset, backend):
            label = feature or label
            ok, seconds, error = l3embed(command, backend)
            previous = results.get((label, backend))
            if previous is not None:  # a feature of two commands: both must pass
                ok, seconds, error = (previous[0] and ok, previous[1] + seconds,
                                      previous[2] or error)
            results[(label, backend)] = (ok, seconds, "" if ok else error)
    labels = list(dict.fromkeys(label for label, _ in results))
    rows = [[label] + [f"{'pass' if results[(label, b)][0] else 'FAIL'} "
                       f"({results[(label, b)][1]:.0f} s)" for b in args.backends]
            for label in labels]
    print_table("l3embed training features per backend (width 0.0625, batch 4)",
                ["feature"] + args.backends, rows)
    for (label, backend), (ok, _, error) in results.items():
        if not ok:
            print(f"{backend}, {label}: {error}")


if __name__ == "__main__":
    main()
