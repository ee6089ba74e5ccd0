"""The best AVC accuracy any model can reach on an AV digits dataset: an oracle that knows the digits.

On this corpus the only link between a frame and a clip is the digit, and the AVC pairs do not
always carry it: a 1-second clip often holds two utterances, so a non-corresponding clip from
another video may still say the frame's digit, and a corresponding clip may only hear the start
or end of an utterance, or none when the frame lies in a gap (frames show the nearest digit).
This script scores the oracle that reads the digits from the corpus' sidecars and says
"corresponds" exactly when the frame's digit is heard in the clip for at least
``--min-overlap`` seconds. It uses the same pairs as ``l3embed evaluate-avc`` with the same
``--pairs``, ``--batch-size`` and ``--seed``, so its accuracy is the ceiling to read a model's
AVC accuracy against.

Usage::

    python examples/avdigits/avc_ceiling.py DATASET_DIR [--pairs 2048] [--seed 0] \\
        [--min-overlap 0.05] [-o ceiling.json]

``DATASET_DIR`` is an ``l3embed prepare`` folder of ``make_avdigits.py`` videos whose sidecars
are still next to the videos. Prints the oracle's accuracy; exit status 0 on success, 2 on bad
input.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from supervised_check import frame_digit, read_sidecar, write_json  # noqa: E402


def heard_digits(sidecar, start_s, duration_s=1.0, min_overlap_s=0.05):
    """The digits spoken in a clip.

    Parameters
    ----------
    sidecar : dict
        The video's AV digits sidecar.
    start_s, duration_s : float
        The clip, seconds.
    min_overlap_s : float
        Seconds of an utterance that must fall inside the clip for its digit to count.

    Returns
    -------
    set of int
        Digits 0..9 (empty if no utterance overlaps the clip by ``min_overlap_s``).
    """
    end_s = start_s + duration_s
    return {segment["digit"] for segment in sidecar["segments"]
            if min(end_s, segment["end"]) - max(start_s, segment["start"]) >= min_overlap_s}


def oracle_accuracy(dataset_dir, n_pairs=2048, batch_size=64, seed=0, min_overlap_s=0.05):
    """Score the digit oracle on ``l3embed evaluate-avc``'s pairs.

    Parameters
    ----------
    dataset_dir : str
        Prepared dataset of AV digits videos (sidecars next to the source videos).
    n_pairs, batch_size, seed : int
        As for :func:`openl3lite.evaluation.avc_accuracy`: the same values give the same pairs.
    min_overlap_s : float
        See :func:`heard_digits`.

    Returns
    -------
    dict
        ``accuracy``, ``stderr``, ``positive_accuracy``, ``negative_accuracy`` (as
        ``evaluate-avc`` reports them), ``n_pairs``, ``positives_not_heard`` (share of
        corresponding pairs whose clip does not say the frame's digit) and
        ``negatives_heard`` (share of non-corresponding pairs whose clip does).
    """
    from openl3lite.errors import OpenL3liteError
    from openl3lite.evaluation import pair_accuracy
    from openl3lite.training.sampling import PairSampler

    if n_pairs < 1 or min_overlap_s < 0:
        raise OpenL3liteError(f"invalid n_pairs {n_pairs} / min_overlap_s {min_overlap_s}: "
                              "need n_pairs >= 1 and min_overlap_s >= 0")
    sampler = PairSampler(os.fspath(dataset_dir), batch_size=batch_size, seed=seed,
                          augment=False)
    sidecars = {vid: read_sidecar(sampler.records[vid].source) for vid in sampler.video_ids}
    predicted, labels = [], []
    for k in range(-(-n_pairs // batch_size)):
        _, _, infos = sampler.sample_batch(k, return_info=True)
        for info in infos:
            digit = frame_digit(sidecars[info.frame_video], info.frame_time)
            heard = heard_digits(sidecars[info.clip_video], info.clip_start,
                                 min_overlap_s=min_overlap_s)
            predicted.append(digit in heard)
            labels.append(info.label == 1)
    result = pair_accuracy(np.array(predicted) == np.array(labels), labels)
    return dict(result, min_overlap_s=float(min_overlap_s),
                positives_not_heard=1 - result["positive_accuracy"],
                negatives_heard=1 - result["negative_accuracy"])


def build_parser():
    """The command-line parser."""
    parser = argparse.ArgumentParser(prog="avc_ceiling.py", description=__doc__.split("\n")[0])
    parser.add_argument("dataset", help="prepared dataset of AV digits videos")
    parser.add_argument("--pairs", type=int, default=2048, help="pairs to score")
    parser.add_argument("-b", "--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="seeds the pairs, as evaluate-avc")
    parser.add_argument("--min-overlap", type=float, default=0.05, metavar="SECONDS",
                        help="speech of a digit the clip must hold for it to count as heard")
    parser.add_argument("-o", "--output", help="also write the result as JSON here")
    return parser


def main(argv=None):
    """Run from the command line; returns the exit status."""
    from openl3lite.errors import OpenL3liteError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = oracle_accuracy(args.dataset, args.pairs, args.batch_size, args.seed,
                                 args.min_overlap)
    except OpenL3liteError as exc:
        print(f"avc_ceiling.py: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.dataset}: digit oracle AVC accuracy {result['accuracy']:.4f} "
          f"(+/- {result['stderr']:.4f}) on {result['n_pairs']} pairs; corresponding "
          f"{result['positive_accuracy']:.4f} (clip does not say the frame's digit: "
          f"{result['positives_not_heard']:.4f}), not corresponding "
          f"{result['negative_accuracy']:.4f} (clip says it: {result['negatives_heard']:.4f})")
    if args.output:
        write_json(args.output, {"arguments": vars(args), "result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
