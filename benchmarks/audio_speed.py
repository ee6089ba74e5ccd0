"""Audio embedding speed: end to end through get_audio_embedding, per stage, and the network alone.

For each network width and hop, embeds a 44.1 kHz chirp-plus-noise signal (OpenL3's speed-baseline
input) read from a WAV file, and reports windows/s, seconds of audio per second, each stage's
share of the serial work (reading, resampling, frontend, network), the network alone on random
spectrogram batches (the achievable limit for this backend) and the ratio end-to-end /
network-alone. Every figure is the median of ``--repeats`` runs after a warm-up.

    python benchmarks/audio_speed.py                       # 60 s, hops 0.1 and 1.0, widths 1 and 0.25
    python benchmarks/audio_speed.py --seconds 10 --repeats 2 --widths 0.25

Width 1 uses the OpenL3-layout fixture weights when ../shared is present (speed does not depend
on weight values); other widths are random reduced-width networks.
"""

import argparse
import os
import tempfile

import numpy as np
import soundfile as sf
from _common import (
    audio_model,
    chirp_signal,
    cores_busy,
    machine_line,
    median_time,
    named_audio_model,
    print_table,
)

SR = 44100


def batch_sizes(n_windows, batch_size):
    """Sizes of the batches ``n_windows`` windows are cut into."""
    return [batch_size] * (n_windows // batch_size) + ([n_windows % batch_size]
                                                        if n_windows % batch_size else [])


def spectrogram_network(model, jit_compile=False):
    """The embedding network without its frontend: (b, F, T, 1) spectrograms -> embeddings."""
    from openl3lite import network

    keras_model = network.build_audio_embedding_model(
        model.input_repr, model.embedding_size, frontend="librosa", trunk=model.trunk)
    if jit_compile:
        keras_model.compile(jit_compile=True)
    return keras_model


def frontend_model(input_repr):
    """The in-graph spectrogram layer alone: (b, 48000) -> (b, F, T, 1)."""
    import keras

    from openl3lite.frontend import Spectrogram

    inputs = keras.Input((48000,))
    return keras.Model(inputs, Spectrogram(input_repr)(inputs))


def stage_times(path, model, hop, batch_size, resampler, repeats):
    """Median seconds of each stage run alone on the whole file.

    Returns
    -------
    dict
        ``read``, ``resample``, ``frontend``: seconds.
    """
    from openl3lite import audio, framing

    samples, sr = sf.read(path)
    blocks = lambda: (samples[i : i + audio.DEFAULT_BLOCK_FRAMES]
                      for i in range(0, len(samples), audio.DEFAULT_BLOCK_FRAMES))
    n_out = audio.resampled_length(len(samples), sr)
    resampled = np.concatenate(list(audio.iter_resampled(blocks(), sr, len(samples),
                                                         method=resampler)))
    windows = list(framing.iter_window_batches([resampled], n_out, hop, True, batch_size))
    spec = frontend_model(model.input_repr)
    spec.predict_on_batch(windows[0].astype(np.float32))
    run_frontend = lambda: [spec.predict_on_batch(w.astype(np.float32)) for w in windows]
    return {
        "frontend cores": cores_busy(run_frontend, repeats),
        "read": median_time(lambda: sf.read(path), repeats),
        "resample": median_time(lambda: sum(len(b) for b in audio.iter_resampled(
            blocks(), sr, len(samples), method=resampler)), repeats),
        "frontend": median_time(run_frontend, repeats, warmup=False),
    }


def _batches_run(keras_model, batches):
    """A no-argument call running ``keras_model`` over ``batches``, each batch shape traced
    once beforehand."""
    for b in {len(x): x for x in batches}.values():
        keras_model.predict_on_batch(b)
    return lambda: [keras_model.predict_on_batch(b) for b in batches]


def network_alone_time(model, n_windows, batch_size, repeats, jit_compile=False):
    """Median seconds of the network (no frontend) on random spectrogram batches, and the
    cores it kept busy (:func:`_common.cores_busy`)."""
    from openl3lite.frontend import spectrogram_shape

    rng = np.random.default_rng(0)
    shape = spectrogram_shape(model.input_repr)
    run = _batches_run(spectrogram_network(model, jit_compile),
                       [rng.uniform(-80, 0, (b,) + shape).astype(np.float32)
                        for b in batch_sizes(n_windows, batch_size)])
    return median_time(run, repeats, warmup=False), cores_busy(run, repeats)


def model_alone_time(model, n_windows, batch_size, repeats):
    """Median seconds of the whole embedding model (its in-graph spectrogram included, as in
    OpenL3's model) on random 1-second 48 kHz waveform batches: no reading, resampling or
    framing."""
    rng = np.random.default_rng(0)
    shape = tuple(model.input_shape[1:])
    run = _batches_run(model, [(0.1 * rng.standard_normal((b,) + shape)).astype(np.float32)
                               for b in batch_sizes(n_windows, batch_size)])
    return median_time(run, repeats, warmup=False)


def end_to_end_time(path, model, hop, batch_size, resampler, mode, repeats):
    """Median seconds of reading the file and embedding it with get_audio_embedding."""
    import openl3lite

    def run():
        samples, sr = sf.read(path)
        return openl3lite.get_audio_embedding(samples, sr, model=model, hop_size=hop,
                                              batch_size=batch_size, verbose=False,
                                              resampler=resampler, mode=mode)

    short, sr = sf.read(path, frames=3 * SR)  # warm-up: traces the model, JITs resampy
    openl3lite.get_audio_embedding(short, sr, model=model, hop_size=hop, batch_size=batch_size,
                                   verbose=False, resampler=resampler, mode=mode)
    return median_time(run, repeats, warmup=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="Signal length.")
    parser.add_argument("--hops", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.25])
    parser.add_argument("--models", nargs="+", default=[],
                        help="Named models to time instead of --widths (e.g. the shipped "
                             "avdigits-mel128-w0125); their own input representation is used.")
    parser.add_argument("--modes", nargs="+", default=["exact", "fast"],
                        choices=["exact", "fast"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--input-repr", default="mel256")
    parser.add_argument("--resampler", default="kaiser_best")
    parser.add_argument("--jit", action="store_true",
                        help="Also time the network alone compiled with XLA (jit_compile=True).")
    args = parser.parse_args()

    from openl3lite import audio, framing

    print(machine_line())
    workdir = tempfile.mkdtemp(prefix="l3-bench-audio-")
    path = os.path.join(workdir, "chirp.wav")
    sf.write(path, chirp_signal(args.seconds, SR), SR, subtype="FLOAT")
    n_samples = audio.resampled_length(int(args.seconds * SR), SR)
    rows, stage_rows = [], []
    models = ([(name, named_audio_model(name)) for name in args.models] if args.models else
              [(width, None) for width in args.widths])
    for width, model in models:
        model = model or audio_model(width, args.input_repr)
        for hop in args.hops:
            n = framing.count_windows(n_samples, hop)
            net, net_cores = network_alone_time(model, n, args.batch_size, args.repeats)
            if args.jit:
                net_jit, _ = network_alone_time(model, n, args.batch_size, args.repeats, True)
                rows.append([width, hop, "network alone, XLA", n, n / net_jit, "", "",
                             net / net_jit])
            rows.append([width, hop, "network alone", n, n / net, "", "", 1.0])
            whole = model_alone_time(model, n, args.batch_size, args.repeats)
            rows.append([width, hop, "network with its spectrogram layer", n, n / whole, "", "",
                         net / whole])
            exact = None
            for mode in args.modes:
                total = end_to_end_time(path, model, hop, args.batch_size, args.resampler,
                                        mode, args.repeats)
                exact = total if mode == "exact" else exact
                rows.append([width, hop, f"end to end, {mode}", n, n / total,
                             args.seconds / total,
                             "" if exact is None else exact / total,
                             (f"{net / total:.3f} ({whole / total:.3f} of the network with "
                              "its spectrogram layer)")])
            stages = stage_times(path, model, hop, args.batch_size, args.resampler,
                                 args.repeats)
            stages["network"] = net
            frontend_cores = stages.pop("frontend cores")
            serial = sum(stages.values())
            stage_rows.append([width, hop] + [f"{100 * stages[k] / serial:.1f}%"
                                              for k in ("read", "resample", "frontend",
                                                        "network")]
                              + [f"{frontend_cores:.2f}", f"{net_cores:.2f}"])
    shown = "/".join(sorted({m.input_repr for _, m in models if m})) or args.input_repr
    title = (f"audio: {args.seconds:g} s at 44.1 kHz, {shown}, batch "
             f"{args.batch_size}, resampler {args.resampler}; median of {args.repeats} runs")
    print_table(title, ["model" if args.models else "width", "hop (s)", "path", "windows", "windows/s", "audio s/s",
                        "speed-up vs exact", "ratio to network alone"], rows)
    print_table("share of serial time per stage (each stage timed alone, exact mode); cores "
                "busy = CPU time / wall time while the frontend or the network ran alone",
                ["model" if args.models else "width", "hop (s)", "reading", "resampling",
                 "frontend", "network", "cores busy: frontend", "cores busy: network"],
                stage_rows)


if __name__ == "__main__":
    main()
