"""Peak memory of `l3embed audio` on long files, and block-wise vs whole-file agreement.

Writes 44.1 kHz test files of the requested lengths (a chirp plus noise), embeds each with the
CLI in a fresh process, and prints the peak RSS of each run. Then compares the streamed
(block-wise) embedding of the longest file with a whole-file computation (read everything,
resample in one go, cut every window, as OpenL3 does) on its first minutes.

    python benchmarks/long_file_memory.py --minutes 10 60 --hop 1.0
    python benchmarks/long_file_memory.py --minutes 10 60 --hop 0.1 --fast   # fast mode

The network is a random-weight model of the given width (memory does not depend on the weights;
width 1 is the full L3-Net and takes ~0.35 s per window on a 2-core CPU).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf

SR = 44100


def write_test_file(path, minutes, seed=0):
    """Write a mono 16-bit WAV of a repeating chirp plus noise, block by block."""
    rng = np.random.default_rng(seed)
    t = np.arange(SR * 10) / SR
    chirp = 0.3 * np.sin(2 * np.pi * (100 + 400 * t) * t)
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        for _ in range(int(minutes * 6)):
            f.write(chirp + 0.05 * rng.standard_normal(len(chirp)))


def make_model_file(path, width, input_repr):
    from openl3lite import network
    from openl3lite.weights import ModelMetadata, save_model_file

    import keras

    keras.utils.set_random_seed(0)
    parts = {"audio": network.build_audio_trunk(input_repr, width),
             "image": network.build_image_trunk(width)}
    save_model_file(path, parts, ModelMetadata(name=f"random-w{width}", input_repr=input_repr,
                                               width=width, image_scaling="symmetric"))


def peak_rss_of_cli(args):
    """Run the CLI in a child process; return (seconds, peak RSS in MB). A failed run (the
    CLI's exit status is not 0) raises RuntimeError with its standard error."""
    # VmHWM, the child's own peak (ru_maxrss would carry this process's RSS from the fork)
    code = ("import sys; from openl3lite.cli import main\ncode = 0\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
            "print('PEAK_RSS_KB', next(int(x.split()[1]) for x in open('/proc/self/status') "
            "if x.startswith('VmHWM')))\n"
            "sys.exit(code)\n")
    start = time.time()
    done = subprocess.run([sys.executable, "-c", code] + args, capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    peak = [l for l in done.stdout.splitlines() if l.startswith("PEAK_RSS_KB")][-1]
    return time.time() - start, int(peak.split()[1]) / 1024


def measure_lengths(minutes_list, path_of, write, cli_args):
    """Write a test input of each length (unless it exists) and run the CLI on it.

    Parameters
    ----------
    minutes_list : list of float
    path_of : callable, minutes -> path
    write : callable, (path, minutes) -> None
    cli_args : list of str
        The CLI's arguments; the input's path is inserted after the command.

    Returns
    -------
    list of (minutes, wall time in s, peak RSS in MB)
    """
    rows = []
    for minutes in minutes_list:
        path = path_of(minutes)
        if not os.path.exists(path):
            write(path, minutes)
        seconds, peak = peak_rss_of_cli(cli_args[:1] + [path] + cli_args[1:])
        rows.append((minutes, seconds, peak))
    return rows


def print_rows(rows, first_column, describe):
    """Print :func:`measure_lengths`' rows as a markdown table, and the growth of peak RSS."""
    print(f"| {first_column} | wall time (s) | peak RSS (MB) |\n| --- | --- | --- |")
    for minutes, seconds, peak in rows:
        print(f"| {describe(minutes)} | {seconds:.1f} | {peak:.0f} |")
    if len(rows) > 1:
        print(f"peak RSS growth from {rows[0][0]:g} to {rows[-1][0]:g} min: "
              f"{rows[-1][2] - rows[0][2]:.0f} MB")


def whole_file_agreement(path, model_path, hop, compare_minutes):
    """Max abs difference between streamed and whole-file embeddings of the file's start."""
    import openl3lite
    from openl3lite import audio, framing
    from openl3lite.api import embed_audio_file

    model = openl3lite.load_audio_embedding_model_from_path(model_path, embedding_size=6144)
    samples, sr = sf.read(path, frames=int(compare_minutes * 60 * SR))
    clip = os.path.join(os.path.dirname(path), "start.wav")
    sf.write(clip, samples, sr, subtype="FLOAT")
    streamed, _ = embed_audio_file(clip, model, hop_size=hop)
    resampled = audio.resample(samples, sr)  # the whole signal at once
    n = framing.count_windows(len(resampled), hop)
    hop_len = framing.hop_length(hop)
    padded = np.concatenate([np.zeros(24000), resampled, np.zeros(48000 + n * hop_len)])
    windows = np.stack([padded[i * hop_len : i * hop_len + 48000] for i in range(n)])
    whole = np.concatenate([model.predict_on_batch(windows[i : i + 32, None].astype(np.float32))
                            for i in range(0, n, 32)])
    return np.abs(streamed - whole).max(), np.abs(whole).max()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 60])
    parser.add_argument("--hop", type=float, default=1.0)
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--input-repr", default="mel256")
    parser.add_argument("--compare-minutes", type=float, default=3.0)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--fast", action="store_true",
                        help="Embed in fast mode (l3embed audio --fast); skips the block-wise "
                             "vs whole-file comparison, which is about exact mode.")
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="l3-longfile-")
    os.makedirs(workdir, exist_ok=True)
    model_path = os.path.join(workdir, "model.h5")
    make_model_file(model_path, args.width, args.input_repr)
    def path_of(minutes):
        return os.path.join(workdir, f"test_{minutes:g}min.wav")

    cli_args = (["audio", "--model", model_path, "-o", workdir, "-t", str(args.hop), "-q", "-ow"]
                + (["--fast"] if args.fast else []))
    rows = measure_lengths(args.minutes, path_of, write_test_file, cli_args)
    print(f"\nl3embed audio{' --fast' if args.fast else ''}, {args.input_repr}, width "
          f"{args.width}, hop {args.hop} s, batch 32")
    print_rows(rows, "file", lambda minutes: f"{minutes:g} min")
    if args.fast:
        return
    diff, scale = whole_file_agreement(path_of(args.minutes[-1]), model_path, args.hop,
                                       args.compare_minutes)
    print(f"block-wise vs whole-file, first {args.compare_minutes:g} min: max abs difference "
          f"{diff:.2e} (embedding scale {scale:.1f}, relative {diff / scale:.1e})")


if __name__ == "__main__":
    main()
