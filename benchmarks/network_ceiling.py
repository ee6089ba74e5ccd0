"""How close exact mode's network runs to this CPU's float32 ceiling, and what bfloat16 would give.

Prints, for the full-width networks OpenL3 publishes (audio mel256 -> 6144-D, image -> 8192-D;
the random weights in OpenL3's format of ../shared/fixtures/openl3, speed does not depend on
weight values):

- the trunk's multiply-adds per window / image, counted from its convolutions (2 FLOP per
  multiply-add; the spectrogram and the pooling add little);
- the network-alone rate (batches of 32 already in memory, no decoding, resampling or framing)
  of each engine in float32 (Keras on TensorFlow, ONNX Runtime, OpenVINO with
  ``INFERENCE_PRECISION_HINT=f32``), as windows/s and as GFLOP/s;
- this machine's measured float32 ceiling: the GFLOP/s of a large float32 matrix product
  (numpy's BLAS, all cores), the rate the convolutions' inner loops aim at;
- OpenVINO with ``INFERENCE_PRECISION_HINT=bf16`` (AMX or AVX-512 BF16 where the CPU has them):
  its rate and its agreement with float32 (largest difference relative to the embedding's
  scale, and the lowest cosine), which shows why it is not offered as exact.

Each engine is timed in this one process, round-robin, median of ``--rounds`` timed batches
after a warm-up batch.

    python benchmarks/network_ceiling.py --rounds 5
"""

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from _common import OPENL3_AUDIO_WEIGHTS, OPENL3_IMAGE_WEIGHTS, machine_line

BATCH = 32


def trunk_flops(trunk, rows, cols):
    """FLOPs (2 per multiply-add) of one input through an L3-Net trunk's convolutions.

    Parameters
    ----------
    trunk : keras.Model
        An audio or image trunk (a chain of layers; its convs keep the size, its pools halve
        it).
    rows, cols : int
        The input's spatial size (spectrogram bins x frames, or 224 x 224).

    Returns
    -------
    float
    """
    import math

    import keras

    total = 0.0
    for layer in trunk.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            total += 2.0 * rows * cols * kh * kw * cin * cout
        elif isinstance(layer, keras.layers.MaxPooling2D):
            halve = math.ceil if layer.padding == "same" else math.floor
            rows, cols = halve(rows / 2), halve(cols / 2)
    return total


def matmul_ceiling(n=4096, repeats=5):
    """GFLOP/s of an n x n float32 matrix product (numpy's BLAS), best of ``repeats``."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2.0 * n ** 3 / best / 1e9


def _timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _openvino(path, precision):
    import openvino

    compiled = openvino.Core().compile_model(path, "CPU", {
        "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    return lambda batch: next(iter(request.infer([batch]).values())).copy()


def engines_for(model, waveform_input):
    """name -> predict function (float32 batch -> embeddings) for each engine."""
    from openl3lite import engines

    predictors = {name: engines.predictor(model, name, waveform_input)
                  for name in ("keras", "onnxruntime", "openvino")}
    path = os.fspath(engines.converted_model(model, waveform_input))
    predictors["openvino-bf16"] = _openvino(path, "bf16")
    return predictors


def measure(predictors, batch, rounds):
    """Median seconds per batch of each predictor (round-robin) and their outputs."""
    outputs = {name: np.asarray(predict(batch)) for name, predict in predictors.items()}
    times = {name: [] for name in predictors}
    for _ in range(rounds):
        for name, predict in predictors.items():
            times[name].append(_timed(lambda: predict(batch)))
    return {name: statistics.median(values) for name, values in times.items()}, outputs


def agreement(got, reference):
    """(largest |difference| / largest |reference|, lowest row cosine)."""
    scale = float(np.abs(reference).max())
    relative = float(np.abs(got - reference).max()) / scale
    cosine = np.sum(got * reference, axis=1) / (np.linalg.norm(got, axis=1) *
                                                np.linalg.norm(reference, axis=1))
    return relative, float(cosine.min())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("OPENL3LITE_HOME", tempfile.mkdtemp(prefix="ceiling-home-"))
    import openl3lite

    print(machine_line())
    ceiling = matmul_ceiling()
    print(f"float32 ceiling: {ceiling:.0f} GFLOP/s (4096x4096 float32 matrix product, numpy "
          f"BLAS, {os.cpu_count()} cores)")
    rng = np.random.default_rng(0)
    audio = openl3lite.models.load_audio_embedding_model_from_path(
        OPENL3_AUDIO_WEIGHTS, "mel256", 6144)
    image = openl3lite.models.load_image_embedding_model_from_path(OPENL3_IMAGE_WEIGHTS, 8192)
    cases = [("audio mel256 6144-D", audio, True,
              (rng.standard_normal((BATCH, 48000)) * 0.1).astype(np.float32), "windows"),
             ("image 8192-D", image, False,
              rng.uniform(-1, 1, (BATCH, 224, 224, 3)).astype(np.float32), "images")]
    from openl3lite.frontend import spectrogram_shape

    sizes = {"audio mel256 6144-D": spectrogram_shape("mel256")[:2], "image 8192-D": (224, 224)}
    for label, model, waveform_input, batch, unit in cases:
        flops = trunk_flops(model.trunk, *sizes[label])
        seconds, outputs = measure(engines_for(model, waveform_input), batch, args.rounds)
        print(f"\n{label}: {flops / 1e9:.1f} GFLOP per {unit[:-1]}, batch {BATCH}")
        print(f"  {'engine':<15} {unit + '/s':>10} {'GFLOP/s':>8} {'of ceiling':>10} "
              f"{'max rel diff':>12} {'min cosine':>10}")
        for name, secs in seconds.items():
            rate = BATCH / secs
            relative, cosine = agreement(outputs[name], outputs["keras"])
            print(f"  {name:<15} {rate:>10.2f} {rate * flops / 1e9:>8.0f} "
                  f"{rate * flops / 1e9 / ceiling:>10.2f} {relative:>12.1e} {cosine:>10.6f}")


if __name__ == "__main__":
    main()
