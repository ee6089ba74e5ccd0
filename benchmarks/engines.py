"""Exact mode's inference engines side by side: Keras, ONNX Runtime and OpenVINO.

Each measurement runs in a fresh process, the engines alternating round by round, on the same
input: ``--seconds`` of OpenL3's 44.1 kHz chirp-plus-noise signal through
``get_audio_embedding`` (hop 0.1 and 1.0, batch 32) and 32 random 224x224 images through
``get_image_embedding`` (batch 32), with the full-width OpenL3 networks (the random weights in
OpenL3's format of ../shared/fixtures/openl3; speed does not depend on weight values) or the
shipped width-0.125 model. The converted networks are built (and timed) once beforehand, in a
private cache. Each child times one untimed warm-up call and then one timed call; the figure
is the median over rounds, with the range. It also prints each engine's largest difference
from Keras on the same call, relative to the embedding's scale, and the idle RSS after
``import openl3lite``.

    python benchmarks/engines.py                       # full width, 20 s, 2 rounds
    python benchmarks/engines.py --model avdigits-mel128-w0125 --seconds 20 --rounds 3
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from _common import OPENL3_AUDIO_WEIGHTS, OPENL3_IMAGE_WEIGHTS, REPO, machine_line

ENGINES = ("keras", "onnxruntime", "openvino")

_CHILD = r"""
import json, os, sys, time
import numpy as np
sys.path.insert(0, {bench!r})
from _common import chirp_signal
import openl3lite
args = json.loads(sys.argv[1])
engine = args["engine"]
if args["audio"]:
    model = openl3lite.models.load_audio_embedding_model_from_path(args["audio"], "mel256", 6144)
else:
    model = openl3lite.models.load_audio_embedding_model_from_path(args["model"], None, 6144)
if args["image"]:
    image_model = openl3lite.models.load_image_embedding_model_from_path(args["image"], 8192)
else:
    image_model = openl3lite.models.load_image_embedding_model_from_path(args["model"], 8192)
signal = chirp_signal(args["seconds"])
images = np.random.RandomState(0).randint(0, 256, (32, 224, 224, 3)).astype(np.uint8)
out = {{}}
for hop in (0.1, 1.0):
    call = lambda: openl3lite.get_audio_embedding(signal, 44100, model=model, hop_size=hop,
                                                  batch_size=32, verbose=False, engine=engine)
    call()
    start = time.perf_counter()
    emb, _ = call()
    out[f"audio_hop{{hop}}"] = len(emb) / (time.perf_counter() - start)
    np.save(os.path.join(args["dir"], f"{{engine}}_hop{{hop}}.npy"), emb)
call = lambda: openl3lite.get_image_embedding(images, model=image_model, batch_size=32,
                                              verbose=False, engine=engine)
call()
start = time.perf_counter()
emb = call()
out["images"] = len(emb) / (time.perf_counter() - start)
np.save(os.path.join(args["dir"], f"{{engine}}_images.npy"), emb)
out["peak_rss_mb"] = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps(out))
"""

_IDLE = ("import openl3lite, sys; print(int(open('/proc/self/status').read()"
         ".split('VmRSS:')[1].split()[0]) / 1024)")


def _run_child(args, env):
    code = _CHILD.format(bench=os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code, json.dumps(args)], env=env,
                          capture_output=True, text=True, cwd=REPO, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child failed ({args['engine']}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _convert_once(args, env):
    """Fill the private engine cache and time the conversions (audio and image)."""
    code = (
        "import json, sys, time, openl3lite\nfrom openl3lite import engines\n"
        "a = json.loads(sys.argv[1])\n"
        "m = openl3lite.models.load_audio_embedding_model_from_path(a['audio'] or a['model'], "
        "'mel256' if a['audio'] else None, 6144)\n"
        "i = openl3lite.models.load_image_embedding_model_from_path(a['image'] or a['model'], "
        "8192)\n"
        "t = time.perf_counter(); p = engines.converted_model(m); ta = time.perf_counter() - t\n"
        "t = time.perf_counter(); q = engines.converted_model(i); ti = time.perf_counter() - t\n"
        "print(json.dumps({'audio_s': ta, 'image_s': ti, 'audio_verification': "
        "json.load(open(str(p) + '.json'))['verification'], 'image_verification': "
        "json.load(open(str(q) + '.json'))['verification']}))\n")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(args)], env=env,
                          capture_output=True, text=True, cwd=REPO, check=False)
    if done.returncode != 0:
        raise SystemExit(f"conversion failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _span(values):
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None,
                        help="A model name or file (default: OpenL3's full-width layout with "
                             "the fixtures' random weights)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--engines", default=",".join(ENGINES))
    opts = parser.parse_args()
    engines = opts.engines.split(",")
    import numpy as np

    home = tempfile.mkdtemp(prefix="openl3lite-bench-engines-")
    env = dict(os.environ, OPENL3LITE_HOME=home, OPENL3LITE_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    base = {"model": opts.model, "seconds": opts.seconds, "dir": home,
            "audio": None if opts.model else str(OPENL3_AUDIO_WEIGHTS),
            "image": None if opts.model else str(OPENL3_IMAGE_WEIGHTS)}
    print(machine_line())
    print(f"load at start (uptime): {os.getloadavg()}")
    print(f"command: python benchmarks/engines.py {' '.join(sys.argv[1:])}")
    conversion = _convert_once(base, env)
    print(f"conversion (once per weights): audio {conversion['audio_s']:.1f} s, image "
          f"{conversion['image_s']:.1f} s")
    for part in ("audio", "image"):
        for label, v in conversion[f"{part}_verification"].items():
            print(f"  verified {part} on {label}: max abs diff {v['max_abs_diff']:.3g}, "
                  f"relative {v['max_rel_diff']:.3g} (tolerance {v['tolerance']:.3g})")
    results = {e: [] for e in engines}
    for _ in range(opts.rounds):
        for engine in engines:
            results[engine].append(_run_child(dict(base, engine=engine), env))
    print(f"load at end (uptime): {os.getloadavg()}")
    keys = [("audio_hop0.1", "audio windows/s, hop 0.1"),
            ("audio_hop1.0", "audio windows/s, hop 1.0"),
            ("images", "images/s (32, batch 32)"), ("peak_rss_mb", "peak RSS MB")]
    print("\n| engine | " + " | ".join(k[1] for k in keys) + " | max rel. diff from keras "
          "(hop 0.1 / images) |")
    print("|---" * (len(keys) + 2) + "|")
    for engine in engines:
        cells = [_span([r[k] for r in results[engine]]) for k, _ in keys]
        diffs = []
        for name in ("hop0.1", "images"):
            ref = np.load(os.path.join(home, f"keras_{name}.npy"))
            got = np.load(os.path.join(home, f"{engine}_{name}.npy"))
            diffs.append(f"{np.abs(got - ref).max() / np.abs(ref).max():.2g}")
        print(f"| {engine} | " + " | ".join(cells) + f" | {' / '.join(diffs)} |")
    idle = [float(subprocess.run([sys.executable, "-c", _IDLE], env=env, capture_output=True,
                                 text=True, check=True).stdout) for _ in range(3)]
    print(f"\nidle RSS after `import openl3lite`: {_span(idle)} MB")


if __name__ == "__main__":
    main()
