"""Export parity: each format's largest difference from the Keras model, as the export's own
verification measures it (real speech, noise, a real frame; see docs/export.md), and the time
each export takes.

    python benchmarks/export_parity.py                         # the shipped width-0.125 model
    python benchmarks/export_parity.py --model openl3-mel256-music --formats onnx
"""

import argparse
import os
import sys
import tempfile
import time

from _common import OPENL3_AUDIO_WEIGHTS, OPENL3_IMAGE_WEIGHTS, machine_line


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="avdigits-mel128-w0125",
                        help="A model name or file; 'openl3-fixture' for OpenL3's full-width "
                             "layout with the fixtures' random weights")
    parser.add_argument("--formats", default="onnx,tflite,saved_model")
    parser.add_argument("--parts", default="audio,image")
    opts = parser.parse_args()
    from openl3lite import deploy

    print(machine_line())
    print(f"load at start (uptime): {os.getloadavg()}")
    print(f"command: python benchmarks/export_parity.py {' '.join(sys.argv[1:])}")
    print("\n| part | format | input | max abs diff | max rel. diff | tolerance | export s |")
    print("|---|---|---|---|---|---|---|")
    folder = tempfile.mkdtemp(prefix="openl3lite-export-parity-")
    for part in opts.parts.split(","):
        source = opts.model
        if opts.model == "openl3-fixture":
            source = str(OPENL3_AUDIO_WEIGHTS if part == "audio" else OPENL3_IMAGE_WEIGHTS)
        model = deploy.load_part(source, part)
        for fmt in opts.formats.split(","):
            start = time.perf_counter()
            info = deploy.export_model(model, fmt, os.path.join(folder, f"{part}.{fmt}"))
            seconds = time.perf_counter() - start
            for label, v in info["verification"].items():
                print(f"| {part} | {fmt} | {label} | {v['max_abs_diff']:.2g} | "
                      f"{v['max_rel_diff']:.2g} | {v['tolerance']:.0e} | {seconds:.1f} |")
    print(f"\nload at end (uptime): {os.getloadavg()}")


if __name__ == "__main__":
    main()
