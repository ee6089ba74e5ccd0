"""Throughput of ``l3embed audio``'s batch job in one process and on Ray Data with 1 and 2
workers, side by side in one run, on the same files.

Each configuration embeds the same FSDD recordings into a fresh output folder through the code
the CLI runs (:class:`openl3lite.jobs.AudioJob`; one process: :func:`openl3lite.jobs.attempt`
file after file, as ``l3embed audio`` does; Ray: :func:`openl3lite.raydata.run_job_on_ray`, as
``l3embed audio --ray --ray-workers W`` does, starting its own local cluster). Reported per
configuration: the whole run's wall time (one process: with loading the model; Ray: with
starting the cluster and the actors, each loading the model), files/s and windows/s over the
whole run, and files/s and windows/s after the first file was written (the rate a long job
settles at). The outputs of every configuration are checked to be identical, byte for byte.

    python benchmarks/ray_throughput.py                      # 400 files, hop 0.1 s
    python benchmarks/ray_throughput.py --files 100 --hop 0.25
"""

import argparse
import os
import tempfile
import time

import numpy as np

from _common import FSDD_RECORDINGS, machine_line, print_table

MODEL = "avdigits-mel128-w0125"


def embed_single(job, paths):
    """One process, one file after the other. Returns (seconds in all, seconds to the first
    file written)."""
    from openl3lite.jobs import attempt

    start = time.perf_counter()
    job.load()
    first = None
    for path in paths:
        outcome = attempt(job.process, path)
        assert outcome.ok, outcome.message
        first = first or time.perf_counter() - start
    return time.perf_counter() - start, first


def embed_ray(job, paths, workers):
    """On a new local Ray cluster with ``workers`` actors of one CPU each."""
    from openl3lite.raydata import run_job_on_ray

    start = time.perf_counter()
    first = None
    for outcome in run_job_on_ray(job, paths, "local", workers=workers, cpus_per_worker=1):
        assert outcome.ok, outcome.message
        first = first or time.perf_counter() - start
    return time.perf_counter() - start, first


def read_outputs(folder):
    """{name: (embedding bytes, timestamps bytes)} and the number of windows."""
    arrays, windows = {}, 0
    for name in sorted(os.listdir(folder)):
        with np.load(os.path.join(folder, name)) as f:
            arrays[name] = (f["embedding"].tobytes(), f["timestamps"].tobytes())
            windows += len(f["embedding"])
    return arrays, windows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=400, help="FSDD recordings to embed")
    parser.add_argument("--hop", type=float, default=0.1, help="hop size in seconds")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    from openl3lite.jobs import AudioJob

    names = sorted(n for n in os.listdir(FSDD_RECORDINGS) if n.endswith(".wav"))
    paths = [str(FSDD_RECORDINGS / n) for n in names[:: max(1, len(names) // args.files)]]
    paths = paths[: args.files]
    load_before = os.getloadavg()
    configs = [("one process", None)] + [(f"Ray, {w} worker{'s' * (w > 1)}", w)
                                         for w in args.workers]
    rows, reference = [], None
    with tempfile.TemporaryDirectory(prefix="ray-throughput-") as tmp:
        for label, workers in configs:
            out = os.path.join(tmp, label.replace(" ", "_").replace(",", ""))
            job = AudioJob(model=args.model, hop_size=args.hop, output_dir=out)
            if workers is None:
                total, first = embed_single(job, paths)
            else:
                total, first = embed_ray(job, paths, workers)
            arrays, windows = read_outputs(out)
            assert len(arrays) == len(paths)
            identical = "reference" if reference is None else \
                ("yes" if arrays == reference else "NO")
            reference = reference or arrays
            rest = total - first
            per_file = windows / len(paths)
            rows.append([label, f"{total:.1f}", f"{len(paths) / total:.1f}",
                         f"{windows / total:.0f}", f"{first:.1f}",
                         f"{(len(paths) - 1) / rest:.1f}",
                         f"{(len(paths) - 1) * per_file / rest:.0f}", identical])
    print(machine_line())
    print(f"load average (1, 5, 15 min) before: {', '.join(f'{x:.1f}' for x in load_before)}; "
          f"after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print_table(f"{len(paths)} FSDD recordings (8 kHz, under a second each), model {args.model}, "
                f"hop {args.hop} s, {windows} windows in all",
                ["run", "wall s", "files/s", "windows/s", "first file s",
                 "files/s after first", "windows/s after first", "outputs identical"], rows)


if __name__ == "__main__":
    main()
