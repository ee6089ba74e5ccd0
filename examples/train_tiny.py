"""Tutorial step 4: train L3-Net on a folder of videos and export the weights.

    python examples/train_tiny.py VIDEO_DIR -o WORK_DIR [--steps 200] [--width 0.125]

Runs the three stages the CLI runs (``l3embed prepare``, ``l3embed train``, ``l3embed export``):

1. decode the videos once into ``WORK_DIR/dataset`` (48 kHz mono audio, frames at 4 fps);
2. train the audio-visual correspondence (AVC) task in ``WORK_DIR/run`` (``metrics.csv``,
   ``curves.png``, checkpoints; run it again with ``--resume`` to continue);
3. export ``WORK_DIR/model.h5``: audio and image subnetworks and the fusion head, a file that
   ``--model`` and the ``load_*_from_path`` functions accept.

The defaults are small enough for a laptop; the paper's network is ``--width 1``. Any videos
with sound work: ``examples/avdigits/make_avdigits.py`` generates a corpus made for it.
"""

import argparse
import os
import sys


def main(argv=None):
    """Prepare, train and export; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", help="folder of videos (searched recursively)")
    parser.add_argument("-o", "--work-dir", required=True)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--input-repr", default="mel128", choices=["linear", "mel128", "mel256"])
    parser.add_argument("--val-fraction", type=float, default=0.0,
                        help="share of videos held out (needs at least 2 of them)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run")
    args = parser.parse_args(argv)

    from openl3lite.errors import OpenL3liteError
    from openl3lite.training.export import export_model
    from openl3lite.training.prepare import prepare_dataset
    from openl3lite.training.train import train

    videos = sorted(os.path.join(root, name) for root, _, names in os.walk(args.videos)
                    for name in names if name.lower().endswith((".mp4", ".mov", ".mkv", ".webm")))
    dataset, run = os.path.join(args.work_dir, "dataset"), os.path.join(args.work_dir, "run")
    model_path = os.path.join(args.work_dir, "model.h5")
    try:
        report = prepare_dataset(videos, dataset, fps=4.0, workers=1, progress=False)
        print(report.line())
        result = train(dataset, run, input_repr=args.input_repr, width=args.width,
                       batch_size=args.batch_size, steps=args.steps,
                       val_fraction=args.val_fraction, eval_every=max(1, args.steps // 4),
                       checkpoint_every=max(1, args.steps // 2), val_batches=2,
                       resume=args.resume, progress=False)
        print(f"trained to step {result.step}: {result.metrics}")
        metadata = export_model(run, model_path, "tiny")
    except OpenL3liteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {model_path} ({metadata.input_repr}, width {metadata.width})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
