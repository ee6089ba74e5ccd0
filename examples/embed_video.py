"""Tutorial step 2: embed a video's sound and pictures.

    python examples/embed_video.py VIDEO -o OUT_DIR [--model MODEL.h5]

Writes ``OUT_DIR/<name>_audio.npz`` (one 512-D embedding per 1-second audio window, every
``--hop-size`` seconds) and ``OUT_DIR/<name>_image.npz`` (one 512-D embedding per frame), each
with ``embedding`` and ``timestamps`` (s), and prints their shapes.
The same from the shell: ``l3embed video VIDEO -o OUT_DIR --model MODEL.h5``.
"""

import argparse
import sys

import numpy as np


def main(argv=None):
    """Embed the video; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video")
    parser.add_argument("-o", "--output-dir", required=True)
    parser.add_argument("--model", default="avdigits-mel128-w0125",
                        help="a model name (`l3embed models`) or a model file with audio and "
                             "image parts; default: the shipped demonstration model")
    parser.add_argument("--hop-size", type=float, default=0.1)
    args = parser.parse_args(argv)

    import openl3lite

    audio_model = openl3lite.load_audio_embedding_model_from_path(args.model, None, 512)
    image_model = openl3lite.load_image_embedding_model_from_path(args.model, 512)
    try:
        audio_out, image_out = openl3lite.process_video_file(
            args.video, output_dir=args.output_dir, audio_model=audio_model,
            image_model=image_model, audio_embedding_size=512, image_embedding_size=512,
            audio_hop_size=args.hop_size, overwrite=True, verbose=False)
    except openl3lite.OpenL3liteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with np.load(audio_out) as audio, np.load(image_out) as image:
        print(f"{audio_out}: {audio['embedding'].shape[0]} windows x "
              f"{audio['embedding'].shape[1]}")
        print(f"{image_out}: {image['embedding'].shape[0]} frames x {image['embedding'].shape[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
