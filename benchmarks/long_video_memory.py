"""Peak memory of `l3embed video` on long videos.

Writes test videos of the requested lengths (ffmpeg's `testsrc2` pattern at 320x240 and the
given frame rate, with a 44.1 kHz stereo tone), embeds each with the CLI in a fresh process
(a random-weight model of the given width: memory does not depend on the weights' values) and
prints the wall time and peak RSS of each run.

    python benchmarks/long_video_memory.py --minutes 2 8

Set PYTHONPATH to another checkout to measure that version of the package.
"""

import argparse
import os
import subprocess
import tempfile

from long_file_memory import make_model_file, measure_lengths, print_rows


def write_test_video(path, minutes, fps):
    """An H.264/AAC .mp4 of ffmpeg's test pattern and a tone, ``minutes`` long."""
    from moviepy.config import FFMPEG_BINARY

    seconds = str(minutes * 60)
    subprocess.run([FFMPEG_BINARY, "-v", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={fps}",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                    "-t", seconds, "-ac", "2", "-c:v", "libx264", "-preset", "ultrafast",
                    "-c:a", "aac", "-shortest", path], check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[2, 8])
    parser.add_argument("--fps", type=float, default=10)
    parser.add_argument("--hop", type=float, default=1.0, help="Audio hop in seconds.")
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="l3-longvideo-")
    os.makedirs(workdir, exist_ok=True)
    model_path = os.path.join(workdir, "model.h5")
    make_model_file(model_path, args.width, "mel128")
    def path_of(minutes):
        return os.path.join(workdir, f"test_{minutes:g}min_{args.fps:g}fps.mp4")

    rows = measure_lengths(
        args.minutes, path_of, lambda path, minutes: write_test_video(path, minutes, args.fps),
        ["video", "--model", model_path, "-o", workdir, "-t", str(args.hop), "-q", "-ow"])
    print(f"\nl3embed video, width {args.width}, {args.fps:g} fps (320x240), audio hop "
          f"{args.hop} s, batch 32")
    print_rows(rows, "video",
               lambda minutes: f"{minutes:g} min, {int(minutes * 60 * args.fps)} frames")


if __name__ == "__main__":
    main()
