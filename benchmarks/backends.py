"""The embedding network on each Keras backend and on the engines without Keras: idle memory
and speed, side by side.

Each measurement is a fresh process, the rows alternating round by round. A process gets
OpenL3's full mel256 audio network (the random weights in OpenL3's format of
../shared/fixtures/openl3, 6144-D; speed does not depend on weight values) ready to run,
records its peak RSS before the first call (``VmHWM``: ``ru_maxrss`` would include the
RSS of this script's own process, from which it was forked) and whether TensorFlow was imported, then
times a batch of 32 one-second windows already in memory (one untimed call first, then the
median of three). Rows: Keras's ``predict_on_batch`` with ``KERAS_BACKEND`` set to each
backend (the model loaded by ``load_audio_embedding_model_from_path``), and the ONNX Runtime
and OpenVINO engines as the API runs them when the converted network is already in the cache
(``api.as_audio_model(path, ..., engine=...)`` finds it by the weights file's sha256 and
imports no Keras; the cache is filled once beforehand, in a private ``OPENL3LITE_HOME``).
Rows whose packages are not installed are skipped.

    python benchmarks/backends.py --rounds 2
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from _common import OPENL3_AUDIO_WEIGHTS, REPO, machine_line

#: (label, KERAS_BACKEND, engine)
ROWS = (("keras on tensorflow", "tensorflow", "keras"), ("keras on jax", "jax", "keras"),
        ("keras on torch", "torch", "keras"),
        ("onnxruntime, cached, no keras", "tensorflow", "onnxruntime"),
        ("openvino, cached, no keras", "tensorflow", "openvino"))

_CHILD = r"""
import json, sys, time
import numpy as np
import openl3lite
from openl3lite import api, engines
engine = sys.argv[2]
if engine == "keras":
    model = openl3lite.models.load_audio_embedding_model_from_path(sys.argv[1], "mel256", 6144)
    predict = lambda x: model.predict_on_batch(x[:, None, :])
else:
    model = api.as_audio_model(sys.argv[1], "mel256", 6144, "kapre", "music", engine)
    predict = engines.predictor(model, engine)
def high_water_mb():  # this process's own peak RSS: VmHWM, which exec resets (ru_maxrss
    # would carry the RSS of the parent that forked it)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
idle = high_water_mb()
batch = (np.random.default_rng(0).standard_normal((32, 48000)) * 0.1).astype("float32")
predict(batch)
times = []
for _ in range(3):
    start = time.perf_counter()
    predict(batch)
    times.append(time.perf_counter() - start)
print("RESULT " + json.dumps({"idle_mb": idle, "tensorflow": "tensorflow" in sys.modules,
                              "rate": 32 / sorted(times)[1]}))
"""


def _child(backend, engine, home):
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="",
               OPENL3LITE_HOME=home)
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(OPENL3_AUDIO_WEIGHTS), engine],
                          env=env, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT "):]) if lines else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(machine_line())
    home = tempfile.mkdtemp(prefix="backends-home-")
    for _, backend, engine in ROWS:  # fill the engines' cache: the Keras path converts once
        if engine != "keras":
            _child(backend, engine, home)
    results = {label: [] for label, _, _ in ROWS}
    for _ in range(args.rounds):
        for label, backend, engine in ROWS:
            result = _child(backend, engine, home)
            if result is None:
                print(f"  {label}: not available, skipped", flush=True)
                continue
            results[label].append(result)
            print(f"  {label}: {result['rate']:.2f} windows/s, idle RSS "
                  f"{result['idle_mb']:.0f} MB", flush=True)
    print("\n| path | TensorFlow imported | RSS before the first call (MB) | windows/s "
          "(network alone, batch 32) |")
    print("|---|---|---|---|")
    for label, runs in results.items():
        if runs:
            rates = [r["rate"] for r in runs]
            idle = [r["idle_mb"] for r in runs]
            print(f"| {label} | {'yes' if runs[0]['tensorflow'] else 'no'} | "
                  f"{statistics.median(idle):.0f} | {statistics.median(rates):.2f} "
                  f"[{min(rates):.2f}-{max(rates):.2f}] |")


if __name__ == "__main__":
    main()
