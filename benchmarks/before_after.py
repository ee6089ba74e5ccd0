"""Two revisions of openl3lite side by side: speed and outputs of the same calls.

Checks out ``REV`` (a commit, tag or branch) in a temporary git worktree and runs the same
child script against it and against this working tree, alternating fresh processes (REV,
this tree, REV, ...), each with the revision on ``sys.path``. Each child imports openl3lite,
loads the models, makes one untimed warm-up call and then the timed ones:

- ``get_audio_embedding`` of 20 s of the benchmarks' 44.1 kHz chirp-plus-noise signal at hop
  0.1 and 1.0, batch 32, with OpenL3's full mel256 network (the random weights in OpenL3's
  format of ../shared/fixtures/openl3, 6144-D) and with the shipped width-0.125 model (512-D);
- ``get_image_embedding`` of 32 random images with OpenL3's image network (8192-D).

It prints the median rate and range per revision, their ratio, and the largest difference
between the two revisions' outputs of each call (0 means bit for bit).

    python benchmarks/before_after.py 80a41af --repeats 3
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

from _common import OPENL3_AUDIO_WEIGHTS, OPENL3_IMAGE_WEIGHTS, REPO, machine_line

_CHILD = r"""
import json, os, sys, time
import numpy as np
sys.path.insert(0, {bench!r})
from _common import chirp_signal
import openl3lite
args = json.loads(sys.argv[1])
full = openl3lite.models.load_audio_embedding_model_from_path(args["audio"], "mel256", 6144)
small = openl3lite.models.load_audio_embedding_model_from_path(args["small"], None, 512)
image_model = openl3lite.models.load_image_embedding_model_from_path(args["image"], 8192)
signal = chirp_signal(20.0)
images = np.random.RandomState(0).randint(0, 256, (32, 224, 224, 3)).astype(np.uint8)
calls = {{}}
for label, model in (("full", full), ("w0125", small)):
    for hop in (0.1, 1.0):
        calls[f"audio {{label}} hop {{hop}}"] = (
            lambda model=model, hop=hop: openl3lite.get_audio_embedding(
                signal, 44100, model=model, hop_size=hop, batch_size=32, verbose=False)[0])
calls["images full"] = lambda: openl3lite.get_image_embedding(
    images, model=image_model, batch_size=32, verbose=False)
out = {{}}
for name, call in calls.items():
    call()
    start = time.perf_counter()
    emb = call()
    out[name] = len(emb) / (time.perf_counter() - start)
    np.save(os.path.join(args["dir"], name.replace(" ", "_") + ".npy"), emb)
print("RESULT " + json.dumps(out))
"""


def _child(tree, out_dir, home):
    args = {"audio": str(OPENL3_AUDIO_WEIGHTS), "image": str(OPENL3_IMAGE_WEIGHTS),
            "small": "avdigits-mel128-w0125", "dir": out_dir}
    env = dict(os.environ, PYTHONPATH=str(tree), OPENL3LITE_HOME=home,
               CUDA_VISIBLE_DEVICES="")
    code = _CHILD.format(bench=str(REPO / "benchmarks"))
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(args)], env=env,
                          capture_output=True, text=True, cwd=str(tree), check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"child for {tree} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="the revision to compare this working tree with")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="before-after-") as tmp:
        before = os.path.join(tmp, "before")
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", before, args.rev],
                       check=True, capture_output=True)
        try:
            trees = {args.rev: before, "this tree": str(REPO)}
            rates = {label: [] for label in trees}
            outputs = {label: os.path.join(tmp, f"out-{i}") for i, label in enumerate(trees)}
            for path in outputs.values():
                os.makedirs(path)
            home = os.path.join(tmp, "home")
            for _ in range(args.repeats):
                for label, tree in trees.items():
                    rates[label].append(_child(tree, outputs[label], home))
                    print(f"  {label}: " + ", ".join(f"{k} {v:.2f}"
                                                    for k, v in rates[label][-1].items()),
                          flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", before],
                           check=False, capture_output=True)
        print(f"\n| call | {args.rev} | this tree | ratio | largest output difference |")
        print("|---|---|---|---|---|")
        first, second = trees
        for name in rates[first][0]:
            a = [r[name] for r in rates[first]]
            b = [r[name] for r in rates[second]]
            file = name.replace(" ", "_") + ".npy"
            diff = float(np.abs(np.load(os.path.join(outputs[first], file)) -
                                np.load(os.path.join(outputs[second], file))).max())
            print(f"| {name} | {statistics.median(a):.2f} [{min(a):.2f}-{max(a):.2f}] | "
                  f"{statistics.median(b):.2f} [{min(b):.2f}-{max(b):.2f}] | "
                  f"{statistics.median(b) / statistics.median(a):.2f} | {diff:.3g} |")
        print("(rates: windows/s for audio, images/s for images; ratio > 1: this tree faster)")


if __name__ == "__main__":
    main()
