"""Tutorial step 6: where in the picture is the sound? Correspondence maps of a video.

    python examples/localize_video.py VIDEO -o OUT_DIR --model MODEL.h5 [--fps 2] [--video]

For frames taken at ``--fps`` and the 1-second audio around each, the trained fusion head scores
the sound against every position of the frame's feature map. Writes ``<name>_localize.npz``,
a heatmap overlay and a spectrogram map per frame (``<name>_localize/*.png``), optionally an
annotated ``<name>_localize.mp4``, and prints, per frame, where the map peaks and how strongly
the frame and its sound correspond. The same from the shell:
``l3embed localize VIDEO -o OUT_DIR --model MODEL.h5``.
"""

import argparse
import sys


def main(argv=None):
    """Localise; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video")
    parser.add_argument("-o", "--output-dir", required=True)
    parser.add_argument("--model", required=True, help="model file with a fusion head")
    parser.add_argument("--fps", type=float, default=2.0)
    parser.add_argument("--video", dest="mp4", action="store_true",
                        help="also write an annotated .mp4")
    args = parser.parse_args(argv)

    from openl3lite import localize
    from openl3lite.errors import OpenL3liteError
    from openl3lite.l3net import L3Net

    try:
        model = L3Net.from_file(args.model, "localisation")
        result = localize.localize_video(args.video, model, fps=args.fps)
        written = localize.write_localization(result, args.output_dir, png=True, mp4=args.mp4)
    except OpenL3liteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    pair = localize.probability(result.maps.pair_logit)
    for t, (x, y), p in zip(result.times, result.peaks(), pair):
        print(f"t = {t:6.2f} s: map peaks at x = {x:5.1f}, y = {y:5.1f} px; "
              f"p(corresponds) = {p:.2f}")
    print(f"{len(written)} files written to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
