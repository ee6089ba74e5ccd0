"""Peak memory and time of the HEAR API (openl3lite.hear) on long sounds.

Each length runs in a fresh process: a batch of chirp-plus-noise sounds at 48 kHz (float32, as
HEAR's harness passes them), ``get_timestamp_embeddings`` (50 ms hop) then
``get_scene_embeddings`` (0.5 s hop), and the process's RSS once the input is made and its
peak RSS during the two calls (Linux: the peak is reset through ``/proc/self/clear_refs`` after
the input is made). The table also gives the
input's and the timestamp embeddings' own sizes, and what holding every 1-second window at
once would take (what a framing without streaming needs), so the growth can be read against
them.

    python benchmarks/hear_memory.py --minutes 1 20
    python benchmarks/hear_memory.py --minutes 1 20 --model openl3-mel256-music  # full width

The default model is the shipped ``avdigits-mel128-w0125`` (width 0.125): memory does not
depend on the network's width apart from its weights and one batch's activations.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from _common import machine_line, print_table

_CHILD = r"""
import json, sys, time
import numpy as np
from openl3lite import hear

def status(key):  # kB -> MB, from /proc/self/status
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

minutes, n_sounds, model_name = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
model = hear.load_model(model_name)
n = int(minutes * 60 * model.sample_rate)
rng = np.random.default_rng(0)
audio = np.empty((n_sounds, n), np.float32)
block = 10 * model.sample_rate  # a 10-s chirp plus noise, repeated, written block by block
t = np.arange(block) / model.sample_rate
for k in range(n_sounds):
    chirp = 0.3 * np.sin(2 * np.pi * (100 + 40 * k + 400 * t) * t)
    for start in range(0, n, block):
        stop = min(n, start + block)
        audio[k, start:stop] = chirp[: stop - start] + 0.05 * rng.standard_normal(stop - start)
open("/proc/self/clear_refs", "w").write("5")  # resets the peak RSS (VmHWM) to the current RSS
before = status("VmRSS")
start = time.perf_counter()
emb, ts = hear.get_timestamp_embeddings(audio, model)
timestamp_s = time.perf_counter() - start
start = time.perf_counter()
scene = hear.get_scene_embeddings(audio, model)
scene_s = time.perf_counter() - start
print("RESULT", json.dumps({
    "windows": int(emb.shape[1]), "timestamp_s": timestamp_s, "scene_s": scene_s,
    "rss_before_mb": before, "peak_rss_mb": status("VmHWM"),
    "input_mb": audio.nbytes / 2**20, "embedding_mb": emb.nbytes / 2**20,
    "finite": bool(np.isfinite(emb).all() and np.isfinite(scene).all())}))
"""


def run_length(minutes, n_sounds, model):
    """Embed one batch of ``n_sounds`` sounds of ``minutes`` in a child process.

    Returns
    -------
    dict
        Windows per sound, seconds of each call, peak RSS and sizes in MB.
    """
    start = time.time()
    done = subprocess.run([sys.executable, "-c", _CHILD, str(minutes), str(n_sounds), model],
                          capture_output=True, text=True, check=False,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    result["wall_s"] = time.time() - start
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 20])
    parser.add_argument("--sounds", type=int, default=1, help="sounds in the batch")
    parser.add_argument("--model", default="avdigits-mel128-w0125")
    args = parser.parse_args()
    print(machine_line())
    rows = []
    for minutes in args.minutes:
        r = run_length(minutes, args.sounds, args.model)
        all_windows_mb = args.sounds * r["windows"] * 48000 * 4 / 2**20
        rows.append([f"{minutes:g} min", r["windows"], r["timestamp_s"], r["scene_s"],
                     r["input_mb"], r["embedding_mb"], all_windows_mb, r["rss_before_mb"],
                     r["peak_rss_mb"], "yes" if r["finite"] else "NO"])
    print_table(f"openl3lite.hear, {args.model}, {args.sounds} sound(s) a batch, "
                "timestamp hop 50 ms, scene hop 0.5 s",
                ["sound", "windows / sound", "timestamp s", "scene s", "input MB",
                 "timestamp embeddings MB", "all windows at once MB", "RSS with the input MB",
                 "peak RSS embedding MB", "finite"], rows)
    if len(rows) > 1:
        print(f"peak RSS growth from {rows[0][0]} to {rows[-1][0]}: "
              f"{rows[-1][8] - rows[0][8]:.0f} MB; above the RSS with the input: "
              f"{rows[0][8] - rows[0][7]:.0f} and {rows[-1][8] - rows[-1][7]:.0f} MB "
              f"(input grew by {rows[-1][4] - rows[0][4]:.0f} MB, timestamp embeddings by "
              f"{rows[-1][5] - rows[0][5]:.0f} MB)")


if __name__ == "__main__":
    main()
