"""Tutorial step 1: embed an audio file or a whole folder of audio files.

    python examples/embed_folder.py INPUT [INPUT ...] -o OUT_DIR [--model MODEL.h5]

Each INPUT is an audio file or a folder (searched recursively). For every file,
``OUT_DIR/<name>.npz`` gets ``embedding`` (windows, 512) and ``timestamps`` (windows,) in
seconds, as OpenL3 writes them. Without ``--model`` the shipped demonstration model is used.
The same from the shell: ``l3embed audio INPUT -o OUT_DIR --model MODEL.h5``.
"""

import argparse
import os
import sys

from openl3lite.facts import AUDIO_EXTENSIONS


def audio_files(inputs):
    """Audio files named by ``inputs``: files as given, folders searched recursively, sorted."""
    found = []
    for item in inputs:
        if os.path.isdir(item):
            found += sorted(os.path.join(root, name) for root, _, names in os.walk(item)
                            for name in names if name.lower().endswith(AUDIO_EXTENSIONS))
        else:
            found.append(item)
    return found


def main(argv=None):
    """Embed the inputs; returns the exit status (1 if any file failed)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="audio files or folders")
    parser.add_argument("-o", "--output-dir", required=True)
    parser.add_argument("--model", default="avdigits-mel128-w0125",
                        help="a model name (`l3embed models`) or weights file (`l3embed export` "
                             "output or OpenL3 .h5); default: the shipped demonstration model")
    parser.add_argument("--input-repr", default=None, help="needed for OpenL3 .h5 files")
    parser.add_argument("--hop-size", type=float, default=0.1, help="seconds between windows")
    args = parser.parse_args(argv)

    import openl3lite

    model = openl3lite.load_audio_embedding_model_from_path(args.model, args.input_repr, 512)
    failed = 0
    for path in audio_files(args.inputs):
        try:  # one bad file must not stop the others
            openl3lite.process_audio_file(path, output_dir=args.output_dir, model=model,
                                          embedding_size=512, overwrite=True,
                                          hop_size=args.hop_size, verbose=False)
        except openl3lite.OpenL3liteError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        name = os.path.splitext(os.path.basename(path))[0] + ".npz"
        print(f"{path} -> {os.path.join(args.output_dir, name)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
