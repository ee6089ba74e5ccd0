"""Tutorial step 3: use OpenL3's published weight files.

    python examples/load_openl3_weights.py AUDIO_WEIGHTS.h5 AUDIO_FILE [--input-repr mel256]

OpenL3's ``openl3_audio_<repr>_<content>.h5`` files load as they are; they do not record their
input representation, so pass the one in the file's name. Prints the embedding's shape and the
first window's first values. In a checkout beside ``../shared`` (as CI has it), the OpenL3-format
random weights of the reference fixtures work too::

    python examples/load_openl3_weights.py ../shared/fixtures/openl3/openl3_audio_random.h5 \\
        examples/data/theo_271828.wav
"""

import argparse
import sys


def main(argv=None):
    """Load the weights and embed the file; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", help="OpenL3 audio weight file (.h5)")
    parser.add_argument("audio", help="audio file")
    parser.add_argument("--input-repr", default="mel256", choices=["linear", "mel128", "mel256"])
    parser.add_argument("--embedding-size", type=int, default=6144, choices=[6144, 512])
    args = parser.parse_args(argv)

    import soundfile as sf
    import openl3lite as openl3  # the drop-in: the same names as OpenL3 0.4.2

    try:
        model = openl3.load_audio_embedding_model_from_path(args.weights, args.input_repr,
                                                            args.embedding_size)
        audio, sr = sf.read(args.audio)
    except (openl3.OpenL3Error, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    embedding, timestamps = openl3.get_audio_embedding(audio, sr, model=model, hop_size=0.5,
                                                       verbose=False)
    print(f"{args.audio}: embedding {embedding.shape}, timestamps {timestamps.tolist()}")
    print(f"first values: {embedding[0, :4].round(3).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
