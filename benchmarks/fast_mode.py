"""Fast mode's trade-off: speed-up over exact mode and agreement with it, per hop.

Agreement is measured on real and music-like audio:

- ``fsdd``: single FSDD recordings (spoken digits, 8 kHz, mostly under 1 s);
- ``speech``: concatenations of FSDD recordings of different speakers (about 8 s each);
- ``music``: synthetic music-like signals (harmonic notes with envelopes, random pitches and
  durations, a little noise; 44.1 kHz).

For each it prints the median cosine similarity of fast-mode to exact-mode embeddings (window by
window), the same after centring both on the exact embeddings' mean (random networks give
embeddings with a large common component, which inflates raw cosines), and for scale the
median cosine between exact embeddings one hop apart. With ``--probe-clips`` it also fits a
linear probe (digit classification, speakers held out) on exact and on fast embeddings.

    python benchmarks/fast_mode.py --widths 0.25 --hops 0.1 0.25 0.5
    python benchmarks/fast_mode.py --widths 1.0 --hops 0.1 --n-signals 2   # full network (slow)

Width 1 uses the OpenL3-layout fixture weights when ../shared is present; other widths are
random reduced-width networks (no trained reduced-width model was available here).
"""

import argparse
import time
import warnings

import numpy as np
import soundfile as sf

from _common import FSDD_RECORDINGS, audio_model, machine_line, print_table

MUSIC_SR = 44100


def music_like(seconds, seed, sr=MUSIC_SR):
    """A music-like signal: overlapping harmonic notes with decaying envelopes, plus noise.

    Returns
    -------
    np.ndarray, float64, shape (seconds * sr,)
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    out = np.zeros(n)
    t0 = 0.0
    while t0 < seconds:
        duration = rng.uniform(0.15, 0.8)
        start, length = int(t0 * sr), int(duration * sr * 1.5)
        t = np.arange(min(length, n - start)) / sr
        f0 = 110 * 2 ** (rng.integers(0, 36) / 12)
        note = sum(np.sin(2 * np.pi * f0 * h * t) / h ** 1.5 for h in range(1, 8))
        out[start : start + len(t)] += rng.uniform(0.2, 0.6) * note * np.exp(-t / duration * 3)
        t0 += duration * rng.uniform(0.5, 1.0)
    return out / np.abs(out).max() * 0.8 + 0.01 * rng.standard_normal(n)


def fsdd_signals(n, seed):
    """``n`` FSDD recordings: list of (samples float64 (k,), 8000)."""
    paths = sorted(FSDD_RECORDINGS.glob("*.wav"))
    rng = np.random.default_rng(seed)
    return [sf.read(paths[i]) for i in rng.choice(len(paths), n, replace=False)]


def speech_signals(n, seed, seconds=8.0):
    """``n`` concatenations of random FSDD recordings, each about ``seconds`` long."""
    paths = sorted(FSDD_RECORDINGS.glob("*.wav"))
    rng = np.random.default_rng(seed)
    signals = []
    for _ in range(n):
        parts, total = [], 0
        while total < seconds * 8000:
            samples, _ = sf.read(paths[rng.integers(len(paths))])
            parts.append(samples)
            total += len(samples)
        signals.append((np.concatenate(parts), 8000))
    return signals


def cosines(a, b):
    """Row-wise cosine similarity of two (n, D) arrays."""
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def embed(signals, model, hop, mode):
    """Embeddings of each signal and the total seconds taken."""
    import openl3lite

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FSDD clips are shorter than a window
        out = [openl3lite.get_audio_embedding(x, sr, model=model, hop_size=hop, verbose=False,
                                              mode=mode)[0] for x, sr in signals]
    return out, time.perf_counter() - start


def agreement(exact, fast, hop):
    """Median raw and centred cosine of fast to exact, and exact-to-exact one hop apart."""
    e, f = np.concatenate(exact), np.concatenate(fast)
    mean = e.mean(0)
    neighbours = np.concatenate([cosines(x[:-1] - mean, x[1:] - mean) for x in exact
                                 if len(x) > 1] or [np.array([np.nan])])
    return (float(np.median(cosines(e, f))), float(np.median(cosines(e - mean, f - mean))),
            float(np.median(neighbours)))


def probe_accuracy(model, hop, mode, n_clips, seed):
    """Digit linear-probe accuracy with two FSDD speakers held out."""
    from openl3lite import evaluation

    clips = evaluation.fsdd_clip_set(str(FSDD_RECORDINGS.parent))
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(clips.paths), min(n_clips, len(clips.paths)), replace=False))
    subset = evaluation.ClipSet([clips.paths[i] for i in keep], [clips.labels[i] for i in keep],
                                [clips.groups[i] for i in keep])
    signals = [sf.read(p) for p in subset.paths]
    embeddings, _ = embed(signals, model, hop, mode)
    features = np.stack([np.concatenate([x.mean(0), x.max(0)]) for x in embeddings])
    train, test = evaluation.split_indices(subset, test_groups=["theo", "yweweler"],
                                           train_groups=["george", "jackson", "lucas",
                                                         "nicolas"])
    return evaluation.linear_probe(features, subset.labels, train, test).accuracy


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25])
    parser.add_argument("--hops", type=float, nargs="+", default=[0.1, 0.25, 0.5])
    parser.add_argument("--n-signals", type=int, default=4,
                        help="Signals per category (FSDD gets 5x as many).")
    parser.add_argument("--music-seconds", type=float, default=10.0)
    parser.add_argument("--probe-clips", type=int, default=0,
                        help="FSDD clips for the linear probe (0: skip it).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(machine_line())
    categories = {
        "fsdd": fsdd_signals(5 * args.n_signals, args.seed),
        "speech": speech_signals(args.n_signals, args.seed),
        "music": [(music_like(args.music_seconds, args.seed + i), MUSIC_SR)
                  for i in range(args.n_signals)],
    }
    rows, probe_rows = [], []
    for width in args.widths:
        model = audio_model(width)
        embed(categories["music"][:1], model, args.hops[0], "exact")  # warm-up (tracing)
        embed(categories["music"][:1], model, args.hops[0], "fast")
        for hop in args.hops:
            for name, signals in categories.items():
                exact, t_exact = embed(signals, model, hop, "exact")
                fast, t_fast = embed(signals, model, hop, "fast")
                raw, centred, neighbour = agreement(exact, fast, hop)
                n = sum(len(x) for x in exact)
                rows.append([width, hop, name, n, n / t_exact, n / t_fast, t_exact / t_fast,
                             raw, centred, neighbour])
            if args.probe_clips:
                acc = {m: probe_accuracy(model, hop, m, args.probe_clips, args.seed)
                       for m in ("exact", "fast")}
                probe_rows.append([width, hop, args.probe_clips, acc["exact"], acc["fast"],
                                   acc["fast"] - acc["exact"]])
    print_table("fast mode vs exact mode (single run each; mel256, 6144-D)",
                ["width", "hop (s)", "signals", "windows", "exact win/s", "fast win/s",
                 "speed-up", "median cosine", "median centred cosine",
                 "exact vs exact one hop apart (centred)"], rows)
    if probe_rows:
        print_table("FSDD digit linear probe, speakers theo and yweweler held out",
                    ["width", "hop (s)", "clips", "exact accuracy", "fast accuracy",
                     "difference"], probe_rows)


if __name__ == "__main__":
    main()
