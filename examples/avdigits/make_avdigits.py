"""Build the audio-visual digits corpus: real .mp4 videos with sound from the Free Spoken Digit
Dataset, where the picture shows a handwritten image of each digit while it is spoken.

Each video strings together utterances of one speaker, each inside a slot of about 1.2 s; for
the whole slot the frame shows a handwritten image (the UCI digits bundled with scikit-learn) of
the digit spoken in it, at a random position, scale and colour over the video's own background. Speakers george, jackson, lucas and nicolas make the ``train`` split; theo
and yweweler the ``heldout`` split (never used for training). The digit images are split the same
way (disjoint halves). A JSON sidecar per video records every segment's digit, times and box.

Usage::

    python examples/avdigits/make_avdigits.py --fsdd ../shared/data/fsdd -o /tmp/avdigits

Licences: FSDD recordings are CC BY-SA 4.0; the UCI handwritten digits are CC BY 4.0. The
generated corpus is a derivative of both.
"""

import argparse
import json
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

TRAIN_SPEAKERS = ("george", "jackson", "lucas", "nicolas")
HELDOUT_SPEAKERS = ("theo", "yweweler")
AUDIO_SR = 48000
_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


def list_recordings(fsdd_root):
    """FSDD recordings grouped by speaker.

    Parameters
    ----------
    fsdd_root : str or Path
        Folder holding ``recordings/{digit}_{speaker}_{index}.wav``.

    Returns
    -------
    dict of str -> list of (Path, int)
        speaker -> [(wav path, digit)], sorted by file name.
    """
    folder = Path(fsdd_root) / "recordings"
    if not folder.is_dir():
        raise SystemExit(f"error: {folder} does not exist (pass the FSDD folder with --fsdd)")
    by_speaker = {}
    for path in sorted(folder.iterdir()):
        match = _NAME.match(path.name)
        if match:
            by_speaker.setdefault(match.group(2), []).append((path, int(match.group(1))))
    if not by_speaker:
        raise SystemExit(f"error: no FSDD recordings named DIGIT_SPEAKER_INDEX.wav in {folder}")
    return by_speaker


def digit_image_split(seed=0):
    """Split scikit-learn's handwritten digits into disjoint train / heldout halves.

    Returns
    -------
    dict of str -> dict of int -> np.ndarray
        split -> digit -> indices into ``load_digits().images``.
    """
    from sklearn.datasets import load_digits

    targets = load_digits().target
    rng = np.random.default_rng(seed)
    split = {"train": {}, "heldout": {}}
    for digit in range(10):
        indices = rng.permutation(np.flatnonzero(targets == digit))
        half = len(indices) // 2
        split["train"][digit], split["heldout"][digit] = indices[:half], indices[half:]
    return split


def render_digit(image8x8, size):
    """Upscale an 8x8 digit (values 0..16) to a smooth coverage mask.

    Returns
    -------
    np.ndarray, float32, shape (size, size), values in [0, 1]
    """
    from skimage.transform import resize

    mask = resize(image8x8 / 16.0, (size, size), order=3, mode="edge", anti_aliasing=False)
    return np.clip(mask, 0, 1).astype(np.float32)


def make_background(rng, height, width):
    """A video's background: two random colours in a linear gradient plus a little texture.

    Returns
    -------
    np.ndarray, float32, shape (height, width, 3), values in [0, 1]
    """
    c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:height, 0:width]
    ramp = (np.cos(angle) * x / width + np.sin(angle) * y / height)
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-9)
    background = c0 + (c1 - c0) * ramp[..., None]
    background += rng.normal(0, 0.04, (height // 8 + 1, width // 8 + 1, 1)).repeat(8, 0).repeat(
        8, 1)[:height, :width]
    return np.clip(background, 0, 1).astype(np.float32)


def plan_videos(recordings, speakers, utterances_per_video, videos_per_speaker, seed):
    """Assign utterances to videos without replacement.

    Returns
    -------
    list of dict
        ``{"name", "speaker", "split", "utterances": [(path, digit), ...], "seed"}``.
    """
    plans = []
    for speaker in speakers:
        split = "train" if speaker in TRAIN_SPEAKERS else "heldout"
        rng = np.random.default_rng([seed, sum(map(ord, speaker))])
        items = [recordings[speaker][i] for i in rng.permutation(len(recordings[speaker]))]
        n_videos = len(items) // utterances_per_video
        if videos_per_speaker:
            n_videos = min(n_videos, videos_per_speaker)
        for v in range(n_videos):
            chunk = items[v * utterances_per_video : (v + 1) * utterances_per_video]
            plans.append({"name": f"{speaker}_{v:03d}", "speaker": speaker, "split": split,
                          "utterances": [(str(p), d) for p, d in chunk],
                          "seed": int(rng.integers(2**31))})
    return plans


def build_video(plan, out_dir, size, fps, digit_split, overwrite=False, slot_s=1.2):
    """Render one planned video and its JSON sidecar (both written atomically).

    Returns
    -------
    str
        The video's path, or "" if it already existed.
    """
    import soundfile as sf
    import soxr
    from moviepy import AudioArrayClip, ImageSequenceClip
    from sklearn.datasets import load_digits

    out_dir = Path(out_dir)
    video_path = out_dir / f"{plan['name']}.mp4"
    meta_path = out_dir / f"{plan['name']}.json"
    if video_path.exists() and meta_path.exists() and not overwrite:
        return ""
    rng = np.random.default_rng(plan["seed"])
    images = load_digits().images
    height = width = size
    background = make_background(rng, height, width)
    pieces, segments = [], []
    cursor = 0.0
    for path, digit in plan["utterances"]:
        samples, sr = sf.read(path, dtype="float64")
        samples = soxr.resample(samples, sr, AUDIO_SR) if sr != AUDIO_SR else samples
        samples = 0.9 * samples / (np.abs(samples).max() + 1e-9)
        # Each utterance sits inside a slot of at least `slot_s` seconds; the digit is shown for
        # the whole slot, so every frame of a slot corresponds to the digit heard around it.
        length = len(samples) / AUDIO_SR
        slot = max(slot_s, length + 0.2)
        lead = rng.uniform(0.05, slot - length - 0.05)
        digit_size = int(rng.integers(size * 0.3, size * 0.6))
        x0 = int(rng.integers(0, width - digit_size))
        y0 = int(rng.integers(0, height - digit_size))
        index = int(rng.choice(digit_split[plan["split"]][digit]))
        colour = rng.uniform(0, 1, 3)
        while np.abs(colour - background[y0 + digit_size // 2, x0 + digit_size // 2]).sum() < 0.8:
            colour = rng.uniform(0, 1, 3)
        segments.append({"digit": digit, "start": round(cursor + lead, 6),
                         "end": round(cursor + lead + length, 6),
                         "shown_start": round(cursor, 6), "shown_end": round(cursor + slot, 6),
                         "box": [x0, y0, x0 + digit_size, y0 + digit_size],
                         "recording": os.path.basename(path), "digit_image_index": index,
                         "colour": [round(float(c), 4) for c in colour]})
        gap = np.zeros(int(round((slot - lead - length) * AUDIO_SR)))
        pieces += [np.zeros(int(round(lead * AUDIO_SR))), samples, gap]
        cursor = sum(len(p) for p in pieces) / AUDIO_SR
        segments[-1]["shown_end"] = round(cursor, 6)
    track = np.concatenate(pieces)
    duration = len(track) / AUDIO_SR
    frames = []
    for k in range(int(np.ceil(duration * fps))):
        t = k / fps
        frame = background.copy()
        for seg in segments:
            if seg["shown_start"] <= t < seg["shown_end"]:
                x0, y0, x1, y1 = seg["box"]
                mask = render_digit(images[seg["digit_image_index"]], x1 - x0)[..., None]
                frame[y0:y1, x0:x1] = frame[y0:y1, x0:x1] * (1 - mask) + mask * np.array(seg["colour"])
        frames.append((frame * 255).round().astype(np.uint8))
    clip = ImageSequenceClip(frames, fps=fps).with_audio(
        AudioArrayClip(np.stack([track, track], 1), fps=AUDIO_SR)).with_duration(duration)
    tmp_video = out_dir / f".tmp-{plan['name']}.mp4"
    try:
        clip.write_videofile(str(tmp_video), fps=fps, codec="libx264", audio_codec="aac",
                             audio_fps=AUDIO_SR, preset="veryfast", logger=None)
        os.replace(tmp_video, video_path)
    finally:
        clip.close()
        if tmp_video.exists():
            tmp_video.unlink()
    meta = {"video": video_path.name, "speaker": plan["speaker"], "split": plan["split"],
            "fps": fps, "width": width, "height": height, "duration": round(duration, 6),
            "audio_sr": AUDIO_SR, "segments": segments}
    tmp_meta = out_dir / f".tmp-{plan['name']}.json"
    tmp_meta.write_text(json.dumps(meta, indent=1))
    os.replace(tmp_meta, meta_path)
    return str(video_path)


def _build_star(args):
    return build_video(*args)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fsdd", required=True, help="Free Spoken Digit Dataset folder")
    parser.add_argument("-o", "--output", required=True, help="output folder")
    parser.add_argument("--speakers", nargs="*", default=list(TRAIN_SPEAKERS + HELDOUT_SPEAKERS))
    parser.add_argument("--utterances-per-video", type=int, default=10)
    parser.add_argument("--videos-per-speaker", type=int, default=0, help="0: use every utterance")
    parser.add_argument("--size", type=int, default=256, help="frame width and height, px")
    parser.add_argument("--fps", type=float, default=8.0)
    parser.add_argument("--slot", type=float, default=1.2,
                        help="seconds each digit is shown; its utterance lies inside the slot")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    if args.size < 64:
        parser.error("--size must be at least 64")
    recordings = list_recordings(args.fsdd)
    unknown = [s for s in args.speakers if s not in recordings]
    if unknown:
        parser.error(f"unknown speakers {unknown}; FSDD has {sorted(recordings)}")
    os.makedirs(args.output, exist_ok=True)
    plans = plan_videos(recordings, args.speakers, args.utterances_per_video,
                        args.videos_per_speaker, args.seed)
    split = digit_image_split(args.seed)
    jobs = [(plan, args.output, args.size, args.fps, split, args.overwrite, args.slot)
            for plan in plans]
    from tqdm import tqdm

    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        list(tqdm(pool.map(_build_star, jobs), total=len(jobs), unit="video"))
    corpus = {"generator": "examples/avdigits/make_avdigits.py", "arguments": vars(args),
              "licence": "FSDD recordings CC BY-SA 4.0; UCI handwritten digits CC BY 4.0",
              "videos": [{"video": f"{p['name']}.mp4", "speaker": p["speaker"],
                          "split": p["split"]} for p in plans]}
    Path(args.output, "corpus.json").write_text(json.dumps(corpus, indent=1))
    print(f"{len(plans)} videos in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
