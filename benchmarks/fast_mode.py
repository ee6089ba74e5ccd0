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
linear probe (digit classification, speakers theo and yweweler held out) on exact and on fast
embeddings. Single FSDD clips are a few windows long, too short for fast mode (the API computes
them exactly), so the probe embeds each speaker's clips concatenated into streams of about
``--stream-seconds`` and pools, for every digit, the windows centred inside it.

    python benchmarks/fast_mode.py --widths 0.25 --hops 0.1 0.25 0.5
    python benchmarks/fast_mode.py --widths 1.0 --hops 0.1 --n-signals 2   # full network (slow)
    python benchmarks/fast_mode.py --models avdigits-mel128-w0125 --hops 0.1 --probe-clips 600

Width 1 uses the OpenL3-layout fixture weights when ../shared is present; other widths are
random reduced-width networks (no trained reduced-width model was available here).
"""

import argparse
import time
import warnings

import numpy as np
import soundfile as sf
from _common import (
    FSDD_RECORDINGS,
    audio_model,
    machine_line,
    named_audio_model,
    print_table,
)

MUSIC_SR = 44100
PROBE_TRAIN = ["george", "jackson", "lucas", "nicolas"]
PROBE_TEST = ["theo", "yweweler"]


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


def digit_streams(n_clips, seed, stream_seconds):
    """FSDD clips of the probe's speakers, concatenated per speaker into streams.

    Returns
    -------
    streams : list of (np.ndarray float64 (k,), int sample rate, str speaker)
    segments : list of (int stream index, float start s, float end s, str digit, str speaker)
    """
    from openl3lite import evaluation

    clips = evaluation.fsdd_clip_set(str(FSDD_RECORDINGS.parent))
    speakers = PROBE_TRAIN + PROBE_TEST
    keep = [i for i in range(len(clips.paths)) if clips.groups[i] in speakers]
    rng = np.random.default_rng(seed)
    keep = rng.choice(keep, min(n_clips, len(keep)), replace=False)
    streams, segments = [], []
    for speaker in speakers:
        mine = [i for i in keep if clips.groups[i] == speaker]
        parts, total = [], 0
        for n, i in enumerate(mine):
            samples, sr = sf.read(clips.paths[i])
            segments.append((len(streams), total / sr, (total + len(samples)) / sr,
                             clips.labels[i], speaker))
            parts.append(samples)
            total += len(samples)
            if total >= stream_seconds * sr or n == len(mine) - 1:
                streams.append((np.concatenate(parts), sr, speaker))
                parts, total = [], 0
    return streams, segments


def segment_features(embeddings, timestamps, segments):
    """Per digit: the mean and max of the embeddings of the windows centred in it (the nearest
    window if none is), concatenated. Returns (n_segments, 2 D) float32."""
    rows = []
    for stream, start, end, _, _ in segments:
        emb, ts = embeddings[stream], timestamps[stream]
        inside = (ts >= start) & (ts < end)
        if not inside.any():
            inside = np.abs(ts - (start + end) / 2) == np.abs(ts - (start + end) / 2).min()
        rows.append(np.concatenate([emb[inside].mean(0), emb[inside].max(0)]))
    return np.stack(rows)


def probe_accuracy(model, hop, n_clips, seed, stream_seconds):
    """Digit linear-probe accuracy of exact and of fast embeddings (speakers held out), and
    the share of windows fast mode really computed approximately.

    Returns
    -------
    dict
        ``exact``, ``fast``: accuracies; ``digits``: how many; ``streams``: how many.
    """
    import openl3lite
    from openl3lite import evaluation, fast

    streams, segments = digit_streams(n_clips, seed, stream_seconds)
    labels = [s[3] for s in segments]
    groups = np.array([s[4] for s in segments])
    train = np.flatnonzero(np.isin(groups, PROBE_TRAIN))
    test = np.flatnonzero(np.isin(groups, PROBE_TEST))
    out = {"digits": len(segments), "streams": len(streams),
           "fast_streams": sum(fast.pays_off(int(len(x) * 48000 / sr), hop, True,
                                             model.input_repr) for x, sr, _ in streams)}
    for mode in ("exact", "fast"):
        embedded = [openl3lite.get_audio_embedding(x, sr, model=model, hop_size=hop,
                                                   verbose=False, mode=mode)
                    for x, sr, _ in streams]
        features = segment_features([e for e, _ in embedded], [t for _, t in embedded],
                                    segments)
        out[mode] = evaluation.linear_probe(features, labels, train, test).accuracy
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25])
    parser.add_argument("--models", nargs="+", default=[],
                        help="Named models instead of --widths (e.g. the shipped "
                             "avdigits-mel128-w0125).")
    parser.add_argument("--hops", type=float, nargs="+", default=[0.1, 0.25, 0.5])
    parser.add_argument("--n-signals", type=int, default=4,
                        help="Signals per category (FSDD gets 5x as many).")
    parser.add_argument("--music-seconds", type=float, default=10.0)
    parser.add_argument("--probe-clips", type=int, default=0,
                        help="FSDD clips for the linear probe (0: skip it).")
    parser.add_argument("--stream-seconds", type=float, default=20.0,
                        help="Length of the probe's concatenated digit streams.")
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
    models = ([(name, named_audio_model(name)) for name in args.models] if args.models else
              [(width, audio_model(width)) for width in args.widths])
    for width, model in models:
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
                acc = probe_accuracy(model, hop, args.probe_clips, args.seed,
                                     args.stream_seconds)
                probe_rows.append([width, hop, acc["digits"],
                                   f"{acc['fast_streams']}/{acc['streams']}", acc["exact"],
                                   acc["fast"], acc["fast"] - acc["exact"]])
    reprs = "/".join(sorted({f"{m.input_repr}, {m.embedding_size}-D" for _, m in models}))
    print_table(f"fast mode vs exact mode (single run each; {reprs})",
                ["model" if args.models else "width", "hop (s)", "signals", "windows", "exact win/s", "fast win/s",
                 "speed-up", "median cosine", "median centred cosine",
                 "exact vs exact one hop apart (centred)"], rows)
    if probe_rows:
        print_table("FSDD digit linear probe on digits inside concatenated streams, trained on "
                    f"{', '.join(PROBE_TRAIN)}, tested on {', '.join(PROBE_TEST)}",
                    ["model" if args.models else "width", "hop (s)", "digits",
                     "streams in fast mode", "exact accuracy", "fast accuracy", "difference"],
                    probe_rows)


if __name__ == "__main__":
    main()
