"""Tutorial step 5: how good are the embeddings? A linear probe on labelled clips.

    python examples/evaluate_tiny.py LABELS -o OUT_DIR --model MODEL.h5

``LABELS`` is a folder ``ROOT/<label>/<audio file>`` (or a CSV ``path,label[,group][,split]``).
The clips are embedded with the model and with the same network with random weights, log-mel
statistics are added as a baseline, and a z-scored logistic-regression probe is trained and tested
on each. Writes ``report.md``, ``report.json``, a confusion-matrix PNG per feature set and
``embedding_map.png`` (t-SNE maps of the feature sets side by side, coloured by label). The same
from the shell: ``l3embed evaluate LABELS --model MODEL.h5 -o OUT_DIR --plot``.
"""

import argparse
import os
import sys


def main(argv=None):
    """Evaluate; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("labels", help="folder ROOT/<label>/<file> or CSV")
    parser.add_argument("-o", "--output-dir", required=True)
    parser.add_argument("--model", required=True, help="model file (`l3embed export` output)")
    parser.add_argument("--test-fraction", type=float, default=0.25)
    args = parser.parse_args(argv)

    from openl3lite import evaluation, models, plots
    from openl3lite.facts import AUDIO_EXTENSIONS
    from openl3lite.errors import OpenL3liteError

    try:
        clips = evaluation.load_clip_set(args.labels, AUDIO_EXTENSIONS)
        model = models.load_audio_embedding_model_from_path(args.model, None, 512)
        meta = model.metadata
        baseline = models.random_audio_model(meta.input_repr, 512, meta.width)
        features = {
            meta.name: evaluation.audio_clip_features(clips.paths, model, progress=False),
            "random weights": evaluation.audio_clip_features(clips.paths, baseline,
                                                             progress=False),
            "log-mel statistics": evaluation.logmel_features(clips.paths, progress=False),
        }
        report = evaluation.evaluate(clips, features, test_fraction=args.test_fraction)
    except OpenL3liteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(evaluation.format_report(report))
    evaluation.write_report(report, args.output_dir)
    plots.plot_embedding_maps(features, clips.labels,
                              os.path.join(args.output_dir, "embedding_map.png"))
    print(f"report, confusion matrices and embedding_map.png written to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
