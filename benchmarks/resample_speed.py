"""kaiser_best resampling: resampy's own kernel against openl3lite.sinc, on the same arguments.

For each input rate, resamples the benchmarks' chirp-plus-noise signal to 48 kHz both ways,
alternating (resampy, openl3lite, resampy, ...), after one untimed call each (numba's
compilation), and prints the median milliseconds per second of input audio, the speed-up and
whether the outputs are equal bit for bit.

    python benchmarks/resample_speed.py                 # 20 s at 44.1, 22.05, 16 and 96 kHz
    python benchmarks/resample_speed.py --rates 44100 --seconds 60 --repeats 5
"""

import argparse
import statistics
import time

import numpy as np
import resampy
from _common import chirp_signal, machine_line, print_table

from openl3lite import audio, sinc
from openl3lite.facts import TARGET_SR


def resampy_call(x, sr_in):
    """resampy's kernel on the arguments openl3lite's kaiser_best gives it (OpenL3's positions
    when upsampling, resampy.resample's when downsampling)."""
    if sr_in < TARGET_SR:
        n_out = audio.resampled_length(len(x), sr_in)
        registers = np.add.accumulate(np.full(n_out, float(sr_in) / TARGET_SR))
        times = np.concatenate([[0.0], registers[:-1]])
        padded = np.concatenate([x, np.zeros(2)])
        return lambda: resampy.resample_nu(padded, 1.0, times, filter=audio._kaiser_best_filter)
    return lambda: resampy.resample(x, sr_in, TARGET_SR, filter=audio._kaiser_best_filter)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[44100, 22050, 16000, 96000])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(machine_line())
    print(f"openl3lite.sinc threads: {sinc.default_threads()}")
    rows = []
    for sr_in in args.rates:
        x = chirp_signal(args.seconds, int(sr_in)).astype(np.float64)
        calls = {"resampy": resampy_call(x, sr_in),
                 "openl3lite": lambda x=x, sr_in=sr_in: audio.resample(x, sr_in)}
        outputs = {name: call() for name, call in calls.items()}  # compiles both
        times = {name: [] for name in calls}
        for _ in range(args.repeats):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
        ms = {name: 1000 * statistics.median(t) / args.seconds for name, t in times.items()}
        rows.append([f"{sr_in:g}", f"{ms['resampy']:.2f}", f"{ms['openl3lite']:.2f}",
                     f"{ms['resampy'] / ms['openl3lite']:.2f}",
                     np.array_equal(outputs["resampy"], outputs["openl3lite"])])
    print_table(f"kaiser_best to 48 kHz, {args.seconds:g} s of audio, median of "
                f"{args.repeats} (ms per second of input)",
                ["input rate (Hz)", "resampy", "openl3lite", "speed-up", "bit for bit"], rows)


if __name__ == "__main__":
    main()
