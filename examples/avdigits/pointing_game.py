"""The pointing game on the audio-visual digits corpus: does L3-Net look at the digit it hears?

For every frame of the chosen split's videos on which a digit is both shown and spoken (the
sidecar's ``spoken_frames``), the trained model's correspondence map over the frame (see
:mod:`openl3lite.localize`) is computed with the 1-second audio around the frame, and the frame
counts as a hit when the map's maximum falls inside the digit's ink box (the sidecar's ``box``).
Reported against:

* the same network with random weights (same input representation and width, ``--seed``);
* the centre prior: always point at the frame's centre;
* chance: the mean share of the frame the box covers (a uniformly random point's hit rate).

Usage::

    python examples/avdigits/pointing_game.py CORPUS_DIR --model MODEL.h5 -o OUT_DIR

writes ``OUT_DIR/pointing_game.json``, ``OUT_DIR/pointing_game.md`` (the table) and, with
``--examples N``, heatmap overlays of the first N scored frames for the model and for random
weights. Exit status 0 on success, 2 on bad input.
"""

import argparse
import json
import os
import sys

import numpy as np


def corpus_videos(corpus_dir, split="heldout"):
    """Videos of one split of a corpus, with their sidecars.

    Parameters
    ----------
    corpus_dir : str
        Folder written by ``make_avdigits.py`` (``corpus.json``, videos, sidecars).
    split : str
        ``heldout`` or ``train``; ``all`` for every video.

    Returns
    -------
    list of (str, dict)
        (video path, sidecar) in the order of ``corpus.json``.
    """
    from openl3lite.errors import OpenL3liteError

    index = os.path.join(corpus_dir, "corpus.json")
    if not os.path.isfile(index):
        raise OpenL3liteError(f"{index}: not found (is {corpus_dir} an avdigits corpus?)")
    with open(index) as f:
        listed = json.load(f)["videos"]
    found = []
    for entry in listed:
        if split != "all" and entry["split"] != split:
            continue
        sidecar = os.path.join(corpus_dir, entry["sidecar"])
        video = os.path.join(corpus_dir, entry["video"])
        if os.path.isfile(sidecar) and os.path.isfile(video):
            with open(sidecar) as f:
                found.append((video, json.load(f)))
    if not found:
        raise OpenL3liteError(f"{corpus_dir}: no {split} videos with sidecars")
    return found


def scored_frames(sidecar):
    """The frames the game is played on: those showing a digit while it is spoken.

    Parameters
    ----------
    sidecar : dict
        A video's sidecar (format ``avdigits/2`` or later).

    Returns
    -------
    indices : list of int
        Frame indices at the video's own frame rate.
    boxes : list of list of int
        The digit's box ``[x0, y0, x1, y1]`` on each of those frames.
    """
    indices, boxes = [], []
    for segment in sidecar["segments"]:
        first, end = segment.get("spoken_frames", segment["frames"])
        shown_first, shown_end = segment["frames"]
        for k in range(max(first, shown_first), min(end, shown_end, sidecar["n_frames"])):
            indices.append(k)
            boxes.append(list(segment["box"]))
    return indices, boxes


def play(models, videos, batch_size=8, keep=0, progress=True):
    """Play the pointing game with several networks on the same frames (each video decoded once).

    Parameters
    ----------
    models : dict of str -> openl3lite.l3net.L3Net
    videos : list of (str, dict)
        From :func:`corpus_videos`.
    batch_size : int
    keep : int
        How many of the first scored frames' localisations to return per network (for example
        figures).
    progress : bool
        Show a progress bar over the videos.

    Returns
    -------
    dict
        ``centre_hits`` (bool (n,)), ``box_share`` (float (n,), box area / frame area) and, per
        network name, ``{"hits": bool (n,), "pair_probability": float (n,), "examples": list of
        (VideoLocalization, index, box)}``.
    """
    from tqdm.auto import tqdm

    from openl3lite import localize

    centre, share = [], []
    per_model = {name: {"hits": [], "pair_probability": [], "examples": []} for name in models}
    for path, sidecar in tqdm(videos, disable=not progress, unit="video"):
        indices, boxes = scored_frames(sidecar)
        if not indices:
            continue
        inputs = localize.read_video_inputs(path, fps=None, frame_indices=indices)
        shape = inputs.frames.shape[1:3]
        centre.extend(localize.pointing_hits([localize.centre_point(shape)] * len(boxes), boxes))
        share.extend((b[2] - b[0]) * (b[3] - b[1]) / (shape[0] * shape[1]) for b in boxes)
        for name, model in models.items():
            result = localize.localize_inputs(inputs, model, batch_size=batch_size)
            scores = per_model[name]
            scores["hits"].extend(localize.pointing_hits(result.peaks(), boxes))
            scores["pair_probability"].extend(localize.probability(result.maps.pair_logit))
            for i, box in enumerate(boxes[: max(0, keep - len(scores["examples"]))]):
                scores["examples"].append((result, i, box))
    out = {"centre_hits": np.array(centre, bool), "box_share": np.array(share, float)}
    for name, scores in per_model.items():
        out[name] = {"hits": np.array(scores["hits"], bool),
                     "pair_probability": np.array(scores["pair_probability"], float),
                     "examples": scores["examples"]}
    return out


def summary_table(rows):
    """Markdown table of pointing-game results.

    Parameters
    ----------
    rows : list of (str, int, float, str)
        (method, frames, accuracy, note).

    Returns
    -------
    str
    """
    lines = ["| method | frames | pointing accuracy | note |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {n} | {acc:.3f} | {note} |" for name, n, acc, note in rows]
    return "\n".join(lines)


def write_examples(examples, out_dir, label):
    """Heatmap overlays (with the digit's box drawn) of example frames; returns the files."""
    from openl3lite import plots

    written = []
    for result, i, box in examples:
        stem = os.path.splitext(os.path.basename(result.path))[0]
        path = os.path.join(out_dir, f"{label}_{stem}_{result.times[i]:06.2f}s.png")
        plots.plot_image_localization(result.frames[i], result.image_map(i), path,
                                      result.peaks()[i],
                                      f"{label}: {stem} t = {result.times[i]:.1f} s", box)
        written.append(path)
    return written


def run(corpus_dir, model_path, out_dir, split="heldout", seed=0, max_videos=None,
        batch_size=8, examples=0, progress=True):
    """Play the game with the trained model, random weights and the centre prior; write reports.

    Returns
    -------
    dict
        What ``pointing_game.json`` holds.
    """
    from openl3lite.errors import OpenL3liteError
    from openl3lite.l3net import L3Net

    model = L3Net.from_file(model_path, "localisation")
    meta = model.metadata
    baseline = L3Net.random(meta.input_repr, meta.width, seed)
    videos = corpus_videos(corpus_dir, split)[:max_videos]
    names = (f"trained ({meta.name})", f"random weights (seed {seed})")
    played = play(dict(zip(names, (model, baseline))), videos, batch_size, examples, progress)
    n = int(len(played["centre_hits"]))
    if n == 0:
        raise OpenL3liteError(f"{corpus_dir}: no frame shows a digit while it is spoken")
    rows = [(name, n, float(played[name]["hits"].mean()),
             f"mean p(corresponds) {played[name]['pair_probability'].mean():.3f}")
            for name in names]
    rows += [("centre prior", n, float(played["centre_hits"].mean()), "always the frame's centre"),
             ("chance", n, float(played["box_share"].mean()), "mean box area / frame area")]
    report = {"corpus": os.path.abspath(corpus_dir), "split": split, "model": model_path,
              "input_repr": meta.input_repr, "width": meta.width, "videos": len(videos),
              "frames": n, "random_seed": seed,
              "results": {name: {"frames": k, "accuracy": acc, "note": note}
                          for name, k, acc, note in rows}}
    os.makedirs(out_dir, exist_ok=True)
    text = (f"Pointing game on {len(videos)} {split} videos of {corpus_dir} ({n} frames showing "
            f"a digit while it is spoken):\n\n{summary_table(rows)}\n")
    for name, payload in (("pointing_game.json", json.dumps(report, indent=1)),
                          ("pointing_game.md", text)):
        tmp = os.path.join(out_dir, f".tmp-{name}")
        with open(tmp, "w") as f:
            f.write(payload)
        os.replace(tmp, os.path.join(out_dir, name))
    write_examples(played[names[0]]["examples"], out_dir, "trained")
    write_examples(played[names[1]]["examples"], out_dir, "random")
    return report


def build_parser():
    """The command-line parser."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", help="avdigits corpus folder (with corpus.json)")
    parser.add_argument("--model", required=True, help="model file from `l3embed export`")
    parser.add_argument("-o", "--output-dir", required=True, help="folder for the reports")
    parser.add_argument("--split", default="heldout", choices=["heldout", "train", "all"])
    parser.add_argument("--seed", type=int, default=0, help="seed of the random-weight network")
    parser.add_argument("--max-videos", type=int, default=None, help="use the first N videos")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--examples", type=int, default=0, metavar="N",
                        help="write overlays of the first N scored frames per network")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return parser


def main(argv=None):
    """Run from the command line; returns the exit status."""
    from openl3lite.errors import OpenL3liteError

    args = build_parser().parse_args(argv)
    try:
        run(args.corpus, args.model, args.output_dir, args.split, args.seed,
                     args.max_videos, args.batch_size, args.examples)
    except OpenL3liteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with open(os.path.join(args.output_dir, "pointing_game.md")) as f:
        print(f.read(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
