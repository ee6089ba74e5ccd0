"""Image embedding speed: 64 images and a video's frames, end to end and the network alone.

End to end is ``get_image_embedding`` (validation, scaling, resizing, network) on 64 random
224x224 uint8 images, and reading a video's frames plus embedding them. The network alone runs
the same number of random [-1, 1] images through the embedding network (the achievable limit).
Every figure is the median of ``--repeats`` runs after a warm-up.

    python benchmarks/image_speed.py
    python benchmarks/image_speed.py --images 16 --repeats 2 --widths 0.25

Width 1 uses the OpenL3-layout fixture weights when ../shared is present; other widths are
random reduced-width networks. The video is ../shared's bento.mp4 unless ``--video`` is given.
"""

import argparse

import numpy as np

from _common import VIDEO, image_model, machine_line, median_time, print_table


def network_alone_time(model, n_images, batch_size, repeats):
    """Median seconds of the embedding network on ``n_images`` random images."""
    rng = np.random.default_rng(0)
    batches = [rng.uniform(-1, 1, (min(batch_size, n_images - i), 224, 224, 3))
               .astype(np.float32) for i in range(0, n_images, batch_size)]
    for b in {len(x): x for x in batches}.values():  # trace each batch shape once
        model.predict_on_batch(b)
    return median_time(lambda: [model.predict_on_batch(b) for b in batches],
                       repeats, warmup=False)


def read_frames(path, model):
    """A video's frames as the video API reads them for this model."""
    from openl3lite import video

    if model.image_scaling == "openl3":
        return video.read_video_frames(path, size=(256, 256))[0]
    return video.read_video_frames(path, short_side=256)[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.25])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--video", default=str(VIDEO))
    parser.add_argument("--no-video", action="store_true")
    args = parser.parse_args()

    import openl3lite

    print(machine_line())
    images = np.random.default_rng(0).integers(0, 256, (args.images, 224, 224, 3), np.uint8)
    rows = []
    for width in args.widths:
        model = image_model(width)
        embed = lambda x: openl3lite.get_image_embedding(  # noqa: E731
            x, model=model, batch_size=args.batch_size, verbose=False)
        embed(images[: args.batch_size])  # warm-up
        net = network_alone_time(model, args.images, args.batch_size, args.repeats)
        total = median_time(lambda: embed(images), args.repeats, warmup=False)
        rows.append([width, f"{args.images} images", args.images, args.images / total,
                     args.images / net, net / total])
        if not args.no_video:
            n_frames = len(read_frames(args.video, model))
            net = network_alone_time(model, n_frames, args.batch_size, args.repeats)
            total = median_time(lambda: embed(read_frames(args.video, model)), args.repeats,
                                warmup=False)
            rows.append([width, f"video ({n_frames} frames, read + embed)", n_frames,
                         n_frames / total, n_frames / net, net / total])
    print_table(f"image: 224x224 RGB, 8192-D, batch {args.batch_size}; median of "
                f"{args.repeats} runs", ["width", "input", "frames", "frames/s end to end",
                                         "frames/s network alone", "ratio"], rows)


if __name__ == "__main__":
    main()
