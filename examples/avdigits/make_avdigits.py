"""Build the audio-visual digits corpus: real .mp4 videos (H.264 + AAC) in which a speaker from
the Free Spoken Digit Dataset (FSDD) says digits and the picture shows a handwritten image of each
digit while it is spoken.

Each video strings together utterances of ONE speaker with random silent gaps between them. While
an utterance plays, the frame shows a handwritten digit (the UCI digits bundled with
scikit-learn, upscaled) of the digit spoken, at a random position, size, slant and colour over a
background (plain, gradient or smooth texture) drawn anew for each utterance (``--background
segment``, the default; ``--background video`` keeps one static background per video, which lets
a model tell videos, and so their speakers, apart by their look: a shortcut around the digits).
By default (``--display nearest``) every frame shows the digit heard nearest to it. With
``--display spoken`` the frame shows only the background between utterances, and as utterance
starts lie on the frame grid, the frames that show a digit are exactly those covering its speech
(plus at most one frame after it ends).

Splits: speakers george, jackson, lucas, nicolas make ``train``; theo and yweweler make
``heldout`` (never used for training). The 1797 digit images are split the same way, into two
fixed, disjoint halves (the split does not depend on ``--seed``). Each video has a JSON sidecar
with every segment's digit, times and box; ``corpus.json`` lists the videos.

Usage::

    python examples/avdigits/make_avdigits.py --fsdd ../shared/data/fsdd -o /tmp/avdigits

``--glyphs fonts`` draws crisp digits typeset in 16 fonts bundled with matplotlib instead of the
handwritten ones (split into train / heldout halves the same way).

Licences: FSDD recordings are CC BY-SA 4.0 (FSDD contributors); the UCI ML hand-written digits
(scikit-learn's ``load_digits``) are CC BY 4.0; the DejaVu fonts are under the Bitstream Vera /
DejaVu licence and the STIX fonts under the SIL Open Font License 1.1. The generated corpus is a
derivative of these and is shared under CC BY-SA 4.0.
"""

import argparse
import csv
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

FORMAT = "avdigits/4"
TRAIN_SPEAKERS = ("george", "jackson", "lucas", "nicolas")
HELDOUT_SPEAKERS = ("theo", "yweweler")
SPLITS = ("train", "heldout")
IMAGE_SPLIT_SEED = 0  # fixed: the image split must not change with --seed
INK_THRESHOLD = 0.25  # coverage above which a pixel counts as drawn (for the tight box)
LICENCES = {
    "fsdd": "Free Spoken Digit Dataset recordings, CC BY-SA 4.0, FSDD contributors "
            "(https://github.com/Jakobovski/free-spoken-digit-dataset)",
    "digits": "UCI ML hand-written digits (Alpaydin & Kaynak 1998) as bundled with scikit-learn "
              "(sklearn.datasets.load_digits), CC BY 4.0",
    "fonts": "with --glyphs fonts: digits typeset in the DejaVu fonts (Bitstream Vera / DejaVu "
             "licence) and STIX fonts (SIL Open Font License 1.1) shipped with matplotlib",
    "corpus": "derived from both; share under CC BY-SA 4.0 with both attributions",
}
_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


class AVDigitsError(ValueError):
    """A bad argument or bad input (message is shown to the user as is)."""


@dataclass(frozen=True)
class Recording:
    """One FSDD recording ``{digit}_{speaker}_{index}.wav``."""

    path: str
    digit: int
    speaker: str
    index: int

    @property
    def name(self):
        """The file name, e.g. ``"7_jackson_32.wav"``."""
        return os.path.basename(self.path)


@dataclass(frozen=True)
class VideoPlan:
    """What goes into one video: its utterances (in order) and the digit image for each.

    ``items`` holds ``(Recording, digit_image_index)`` pairs; ``seed`` drives everything random
    in the rendering (gaps, layout, colours, background), so a plan renders the same anywhere.
    """

    name: str
    speaker: str
    split: str
    seed: int
    items: tuple


@dataclass(frozen=True)
class RenderConfig:
    """How videos look and sound.

    Attributes
    ----------
    width, height : int
        Frame size in pixels (both even, for H.264 4:2:0).
    fps : int
        Frame rate, frames per second.
    audio_sr : int
        Sample rate of the audio track in Hz (the 8 kHz recordings are resampled to it).
    gap : tuple of float
        (min, max) seconds of silence before, between and after utterances.
    digit_scale : tuple of float
        (min, max) digit height as a fraction of the frame's shorter side.
    max_angle : float
        Digits are slanted by a random angle in [-max_angle, max_angle] degrees.
    crf : int
        x264 constant rate factor (lower: better quality, bigger files).
    display : str
        When a digit is on screen: ``"nearest"`` (default) shows each utterance's digit on every
        frame nearer to it than to its neighbours (from the middle of the gap before to the
        middle of the gap after; the first from frame 0, the last to the end), so every frame
        shows the digit heard closest to it; ``"spoken"`` shows it only on the frames of the
        utterance itself, the background alone in the gaps.
    background : str
        ``"segment"`` (default): each utterance's frames get a background of their own, so the
        picture says nothing about which video (speaker) it comes from; ``"video"``: one static
        background for the whole video.
    glyphs : str
        Which digit pictures: ``"handwritten"`` (default, the UCI 8x8 digits, upscaled) or
        ``"fonts"`` (crisp digits typeset in the DejaVu and STIX fonts shipped with
        matplotlib; see :func:`load_font_digits`).
    """

    width: int = 256
    height: int = 256
    fps: int = 10
    audio_sr: int = 48000
    gap: tuple = (0.2, 0.8)
    digit_scale: tuple = (0.3, 0.65)
    max_angle: float = 12.0
    crf: int = 20
    display: str = "nearest"
    background: str = "segment"
    glyphs: str = "handwritten"


DISPLAY_RULES = ("nearest", "spoken")
BACKGROUND_MODES = ("segment", "video")
GLYPH_SETS = ("handwritten", "fonts")
#: Font files (in matplotlib's mpl-data/fonts/ttf) whose digits make the "fonts" glyph set.
DIGIT_FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf", "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
)
GLYPH_SIZE = 28  # pixels of a typeset digit's square coverage image


# --------------------------------------------------------------------------------------- inputs

def speaker_split(speaker):
    """The split a speaker belongs to.

    Parameters
    ----------
    speaker : str

    Returns
    -------
    str
        ``"train"`` or ``"heldout"``.

    Raises
    ------
    AVDigitsError
        For a speaker with no assigned split (FSDD may grow; new speakers need a decision).
    """
    if speaker in TRAIN_SPEAKERS:
        return "train"
    if speaker in HELDOUT_SPEAKERS:
        return "heldout"
    raise AVDigitsError(f"speaker {speaker!r} has no split; known speakers: train "
                        f"{', '.join(TRAIN_SPEAKERS)}; heldout {', '.join(HELDOUT_SPEAKERS)}")


def list_recordings(fsdd_root):
    """FSDD recordings grouped by speaker.

    Parameters
    ----------
    fsdd_root : str or os.PathLike
        The FSDD folder, holding ``recordings/{digit}_{speaker}_{index}.wav``.

    Returns
    -------
    dict of str -> list of Recording
        speaker -> recordings sorted by (digit, index).

    Raises
    ------
    AVDigitsError
        If the folder is missing or holds no recordings.
    """
    root = Path(fsdd_root)
    if not root.is_dir():
        raise AVDigitsError(f"FSDD folder {root} does not exist (pass the Free Spoken Digit "
                            f"Dataset folder, the one holding recordings/, with --fsdd)")
    folder = root / "recordings"
    if not folder.is_dir():
        raise AVDigitsError(f"{root} has no recordings/ folder; is it the Free Spoken Digit "
                            f"Dataset (https://github.com/Jakobovski/free-spoken-digit-dataset)?")
    by_speaker = {}
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match:
            digit, speaker, index = int(match.group(1)), match.group(2), int(match.group(3))
            by_speaker.setdefault(speaker, []).append(Recording(str(path), digit, speaker, index))
    if not by_speaker:
        raise AVDigitsError(f"no recordings named DIGIT_SPEAKER_INDEX.wav in {folder}")
    return {s: sorted(r, key=lambda x: (x.digit, x.index)) for s, r in sorted(by_speaker.items())}


@functools.lru_cache(maxsize=2)
def load_digit_images(glyphs="handwritten"):
    """The digit pictures of a glyph set.

    Parameters
    ----------
    glyphs : str
        ``"handwritten"``: scikit-learn's handwritten digits (UCI ML hand-written digits);
        ``"fonts"``: :func:`load_font_digits`.

    Returns
    -------
    images : np.ndarray, float32, shape (n_images, size, size)
        Ink coverage in [0, 1]: (1797, 8, 8) for handwritten digits (the original 0..16
        counts divided by 16), (160, 28, 28) for fonts.
    labels : np.ndarray, int64, shape (n_images,)
        The digit of each image.
    """
    if glyphs == "fonts":
        return load_font_digits()
    if glyphs != "handwritten":
        raise AVDigitsError(f"unknown glyph set {glyphs!r}: use one of {', '.join(GLYPH_SETS)}")
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)
    images.setflags(write=False)
    return images, data.target.astype(np.int64)


def typeset_digit(font_path, digit, size=GLYPH_SIZE):
    """One digit typeset in a font, its ink centred in a square and filling its height.

    Parameters
    ----------
    font_path : str
        A TrueType font file.
    digit : int
        0..9.
    size : int
        Side of the result, pixels.

    Returns
    -------
    np.ndarray, float32, shape (size, size)
        Ink coverage in [0, 1].
    """
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path, 8 * size)
    canvas = Image.new("L", (16 * size, 16 * size), 0)
    ImageDraw.Draw(canvas).text((4 * size, 4 * size), str(digit), fill=255, font=font)
    ink = canvas.crop(canvas.getbbox())
    side = max(ink.size)
    square = Image.new("L", (side, side), 0)
    square.paste(ink, ((side - ink.size[0]) // 2, (side - ink.size[1]) // 2))
    square = square.resize((size, size), Image.LANCZOS)
    return (np.asarray(square, dtype=np.float32) / 255.0).clip(0, 1)


def load_font_digits():
    """Digits 0-9 typeset in each of :data:`DIGIT_FONTS` (matplotlib's bundled fonts).

    Returns
    -------
    images : np.ndarray, float32, shape (10 * len(DIGIT_FONTS), GLYPH_SIZE, GLYPH_SIZE)
        Ink coverage in [0, 1], font by font, digits 0..9 within a font.
    labels : np.ndarray, int64, shape (10 * len(DIGIT_FONTS),)
    """
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    images = np.stack([typeset_digit(str(folder / name), digit)
                       for name in DIGIT_FONTS for digit in range(10)])
    images.setflags(write=False)
    return images, np.tile(np.arange(10, dtype=np.int64), len(DIGIT_FONTS))


def glyph_source(glyphs, index):
    """Where digit picture ``index`` of a glyph set comes from, for the clip list.

    Returns
    -------
    str
        ``sklearn_digits[i]`` or ``font:<file>:<digit>``.
    """
    if glyphs == "fonts":
        return f"font:{DIGIT_FONTS[index // 10]}:{index % 10}"
    return f"sklearn_digits[{index}]"


def digit_image_split(labels):
    """Split the digit images into fixed, disjoint train / heldout halves, per digit.

    Parameters
    ----------
    labels : np.ndarray, int, shape (n_images,)

    Returns
    -------
    dict of str -> dict of int -> np.ndarray
        split -> digit -> sorted image indices (int64). The halves are disjoint and together
        hold every image; the split uses a fixed seed, not the corpus seed.
    """
    rng = np.random.default_rng(IMAGE_SPLIT_SEED)
    split = {"train": {}, "heldout": {}}
    for digit in range(10):
        indices = rng.permutation(np.flatnonzero(labels == digit))
        half = len(indices) // 2
        split["train"][digit] = np.sort(indices[:half])
        split["heldout"][digit] = np.sort(indices[half:])
    return split


def stable_id(text):
    """A platform-independent integer for a string (to seed per-speaker random streams).

    Parameters
    ----------
    text : str

    Returns
    -------
    int
        CRC-32 of the UTF-8 bytes.
    """
    return zlib.crc32(text.encode("utf-8"))


# ------------------------------------------------------------------------------------- planning

def utterance_counts(n_items, count_range, rng, n_videos=None):
    """How many utterances each video of a speaker gets.

    Parameters
    ----------
    n_items : int
        Recordings available for the speaker.
    count_range : tuple of int
        (min, max) utterances per video, inclusive.
    rng : np.random.Generator
    n_videos : int or None
        Number of videos; None: as many as it takes to use every recording once (the last video
        takes what is left, possibly fewer than min).

    Returns
    -------
    list of int
    """
    low, high = count_range
    if n_videos is not None:
        return [int(c) for c in rng.integers(low, high + 1, size=n_videos)]
    counts, left = [], n_items
    while left > 0:
        count = min(int(rng.integers(low, high + 1)), left)
        counts.append(count)
        left -= count
    return counts


def plan_speaker_videos(recordings, image_split, seed, count_range, n_videos=None):
    """Assign one speaker's recordings and digit images to videos.

    Recordings are drawn without replacement in a shuffled order; only when more are asked for
    than exist does a new shuffled pass start. Digit images come, per digit, from the speaker's
    own shuffled cycle over the split's images, so a video never shows an image of the other
    split. Everything depends only on (seed, speaker), not on which other speakers are built.

    Parameters
    ----------
    recordings : list of Recording
        All recordings of one speaker.
    image_split : dict of str -> dict of int -> np.ndarray
        From :func:`digit_image_split`.
    seed : int
        Corpus seed.
    count_range : tuple of int
        (min, max) utterances per video.
    n_videos : int or None
        Videos to make; None: use every recording once.

    Returns
    -------
    list of VideoPlan
    """
    speaker = recordings[0].speaker
    split = speaker_split(speaker)
    rng = np.random.default_rng([seed, stable_id(speaker)])
    counts = utterance_counts(len(recordings), count_range, rng, n_videos)
    order = []
    while len(order) < sum(counts):
        order += [recordings[i] for i in rng.permutation(len(recordings))]
    cycles = {d: [] for d in range(10)}
    plans, cursor = [], 0
    for v, count in enumerate(counts):
        items = []
        for rec in order[cursor:cursor + count]:
            if not cycles[rec.digit]:
                cycles[rec.digit] = list(rng.permutation(image_split[split][rec.digit]))
            items.append((rec, int(cycles[rec.digit].pop())))
        cursor += count
        plans.append(VideoPlan(f"{speaker}_{v:03d}", speaker, split,
                               int(rng.integers(2**31 - 1)), tuple(items)))
    return plans


def plan_corpus(recordings, speakers, seed, count_range, videos_per_speaker=None,
                glyphs="handwritten"):
    """Plans of all videos of the chosen speakers.

    Parameters
    ----------
    recordings : dict of str -> list of Recording
        From :func:`list_recordings`.
    speakers : sequence of str
    seed : int
    count_range : tuple of int
        (min, max) utterances per video.
    videos_per_speaker : int or None
        None: use every recording of each speaker once.
    glyphs : str
        Glyph set the plans' image indices refer to (:func:`load_digit_images`).

    Returns
    -------
    list of VideoPlan
    """
    _, labels = load_digit_images(glyphs)
    image_split = digit_image_split(labels)
    plans = []
    for speaker in speakers:
        plans += plan_speaker_videos(recordings[speaker], image_split, seed, count_range,
                                     videos_per_speaker)
    return plans


# ------------------------------------------------------------------------------------ rendering

def make_background(rng, height, width):
    """A video's static background: a plain colour, a gradient or a smooth colour texture.

    Parameters
    ----------
    rng : np.random.Generator
    height, width : int
        Size in pixels.

    Returns
    -------
    background : np.ndarray, float32, shape (height, width, 3)
        RGB in [0, 1].
    kind : str
        ``"plain"``, ``"gradient"`` or ``"texture"``.
    """
    from skimage.transform import resize

    kind = str(rng.choice(["plain", "gradient", "texture"]))
    base = rng.uniform(0, 1, 3)
    if kind == "plain":
        background = np.broadcast_to(base, (height, width, 3)).copy()
    elif kind == "gradient":
        other = rng.uniform(0, 1, 3)
        angle = rng.uniform(0, 2 * np.pi)
        y, x = np.mgrid[0:height, 0:width]
        ramp = np.cos(angle) * x / width + np.sin(angle) * y / height
        ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-9)
        background = base + (other - base) * ramp[..., None]
    else:
        cells = int(rng.integers(2, 7))
        coarse = base + rng.normal(0, 0.2, (cells, cells, 3))
        background = resize(coarse, (height, width, 3), order=3, mode="reflect")
    grain = rng.normal(0, 0.015, (height, width, 1))
    return np.clip(background + grain, 0, 1).astype(np.float32), kind


def digit_alpha(image, height, width, angle):
    """Upscale a small digit picture smoothly into a crisp coverage mask, slanted by ``angle``.

    Parameters
    ----------
    image : np.ndarray, float, shape (n, n)
        Ink coverage in [0, 1].
    height, width : int
        Size of the upscaled digit before rotation, pixels.
    angle : float
        Counter-clockwise rotation in degrees.

    Returns
    -------
    np.ndarray, float32, shape (h, w)
        Coverage in [0, 1]; (h, w) >= (height, width) when rotated (the rotated square fits).
    """
    from skimage.transform import resize, rotate

    padded = np.pad(image, 1)  # blank border so the upscaled ink fades out inside the patch
    alpha = resize(padded, (height, width), order=3, mode="constant", anti_aliasing=False)
    alpha = np.clip((alpha - 0.15) / 0.45, 0, 1)  # sharpen blurry upscaled strokes into ink
    if angle:
        alpha = rotate(alpha, angle, resize=True, order=1, mode="constant")
    return np.clip(alpha, 0, 1).astype(np.float32)


def ink_box(alpha, x0, y0, threshold=INK_THRESHOLD):
    """Tight bounding box of the drawn ink of a mask placed at (x0, y0).

    Parameters
    ----------
    alpha : np.ndarray, float, shape (h, w)
    x0, y0 : int
        Top-left corner of the mask in the frame, pixels.
    threshold : float
        Coverage above which a pixel counts as ink.

    Returns
    -------
    list of int
        ``[x0, y0, x1, y1]`` in frame pixels, end-exclusive (ink lies in
        ``frame[y0:y1, x0:x1]``).
    """
    rows = np.flatnonzero((alpha > threshold).any(axis=1))
    cols = np.flatnonzero((alpha > threshold).any(axis=0))
    return [int(x0 + cols[0]), int(y0 + rows[0]), int(x0 + cols[-1] + 1), int(y0 + rows[-1] + 1)]


def pick_colour(rng, behind, min_distance=0.6, tries=50):
    """A random ink colour that stands out from what lies behind it.

    Parameters
    ----------
    rng : np.random.Generator
    behind : np.ndarray, float, shape (..., 3)
        The background pixels the digit covers, RGB in [0, 1].
    min_distance : float
        Minimum Euclidean RGB distance from their mean colour.
    tries : int
        Random tries before falling back to black or white.

    Returns
    -------
    np.ndarray, float64, shape (3,)
        RGB in [0, 1].
    """
    mean = np.asarray(behind, dtype=np.float64).reshape(-1, 3).mean(axis=0)
    for _ in range(tries):
        colour = rng.uniform(0, 1, 3)
        if np.linalg.norm(colour - mean) >= min_distance:
            return colour
    return np.zeros(3) if mean.mean() > 0.5 else np.ones(3)


def place_digit(rng, image, background, config):
    """Choose size, slant, position and colour of one digit on a background.

    Parameters
    ----------
    rng : np.random.Generator
    image : np.ndarray, float, shape (n, n)
        The digit, ink coverage in [0, 1].
    background : np.ndarray, float32, shape (H, W, 3)
    config : RenderConfig

    Returns
    -------
    dict
        ``alpha`` (float32 (h, w) mask), ``x0``/``y0`` (int, top-left of the mask), ``colour``
        (float (3,) RGB in [0, 1]), ``box`` (tight ink box [x0, y0, x1, y1], end-exclusive) and
        ``patch`` (the mask's own rectangle, same convention).
    """
    height, width = background.shape[:2]
    short = min(height, width)
    digit_h = int(round(rng.uniform(*config.digit_scale) * short))
    digit_w = int(round(digit_h * rng.uniform(0.8, 1.1)))
    angle = float(rng.uniform(-config.max_angle, config.max_angle))
    alpha = digit_alpha(image, digit_h, digit_w, angle)
    h, w = alpha.shape
    if h > height or w > width:
        raise AVDigitsError(f"digit of {h}x{w} px does not fit a {width}x{height} frame; "
                            f"lower --digit-scale")
    x0 = int(rng.integers(0, width - w + 1))
    y0 = int(rng.integers(0, height - h + 1))
    ink = alpha > INK_THRESHOLD
    colour = pick_colour(rng, background[y0:y0 + h, x0:x0 + w][ink])
    return {"alpha": alpha, "x0": x0, "y0": y0, "colour": colour,
            "box": ink_box(alpha, x0, y0), "patch": [x0, y0, x0 + w, y0 + h]}


def composite(background, placed):
    """Draw a placed digit over a background.

    Parameters
    ----------
    background : np.ndarray, float32, shape (H, W, 3)
        RGB in [0, 1]; not modified.
    placed : dict
        From :func:`place_digit`.

    Returns
    -------
    np.ndarray, uint8, shape (H, W, 3)
    """
    frame = background.copy()
    x0, y0, x1, y1 = placed["patch"]
    alpha = placed["alpha"][..., None]
    frame[y0:y1, x0:x1] = frame[y0:y1, x0:x1] * (1 - alpha) + alpha * placed["colour"]
    return to_uint8(frame)


def to_uint8(image):
    """Float RGB in [0, 1] to uint8.

    Parameters
    ----------
    image : np.ndarray, float

    Returns
    -------
    np.ndarray, uint8, same shape
    """
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def load_utterance(path, sr):
    """Read an FSDD recording as mono float32 at ``sr`` Hz (soxr, high quality).

    Parameters
    ----------
    path : str or os.PathLike
    sr : int
        Target sample rate, Hz.

    Returns
    -------
    np.ndarray, float32, shape (n_samples,)
        Samples in [-1, 1] as recorded (no gain applied).
    """
    import soundfile as sf
    import soxr

    try:
        samples, file_sr = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise AVDigitsError(f"{path}: unreadable audio file ({exc})") from None
    samples = samples.mean(axis=1)
    if file_sr != sr:
        samples = soxr.resample(samples, file_sr, sr, quality="HQ")
    return np.asarray(samples, dtype=np.float32)


def fade(samples, length):
    """Raised-cosine fade-in and fade-out (avoids clicks at utterance edges).

    Parameters
    ----------
    samples : np.ndarray, float, shape (n,)
    length : int
        Fade length in samples (shortened for very short input).

    Returns
    -------
    np.ndarray, same dtype and shape
    """
    out = samples.copy()
    length = min(length, len(out) // 2)
    if length > 0:
        ramp = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, length))).astype(out.dtype)
        out[:length] *= ramp
        out[-length:] *= ramp[::-1]
    return out


def layout_timeline(n_samples, sr, fps, gap, rng):
    """Place utterances in time: a random gap before each and after the last, starts on frames.

    Parameters
    ----------
    n_samples : sequence of int
        Length of each utterance in samples at ``sr``.
    sr : int
        Audio sample rate, Hz.
    fps : int
        Frame rate.
    gap : tuple of float
        (min, max) silence in seconds between what is shown (at least one frame).
    rng : np.random.Generator

    Returns
    -------
    frames : list of (int, int)
        Per utterance, the frames [first, end) that show its digit: the utterance starts at
        ``first / fps`` and ends before ``end / fps``.
    n_frames : int
        Frames in the video (its duration is ``n_frames / fps``).
    """
    def gap_frames():
        return max(1, int(round(rng.uniform(*gap) * fps)))

    cursor, frames = 0, []
    for n in n_samples:
        first = cursor + gap_frames()
        end = first + int(np.ceil(n * fps / sr - 1e-9))
        frames.append((first, end))
        cursor = end
    return frames, cursor + gap_frames()


def display_frames(spoken, n_frames, rule="nearest"):
    """The frames that show each utterance's digit.

    Parameters
    ----------
    spoken : list of (int, int)
        Per utterance, its frames [first, end), in order and not overlapping
        (from :func:`layout_timeline`).
    n_frames : int
        Frames in the video.
    rule : str
        ``"spoken"``: the utterance's own frames; ``"nearest"``: every frame nearer to that
        utterance than to its neighbours (boundaries in the middle of each gap).

    Returns
    -------
    list of (int, int)
        Per utterance, the frames [first, end) that show its digit; each contains the spoken
        range, and with ``"nearest"`` they tile ``[0, n_frames)``.
    """
    if rule == "spoken":
        return list(spoken)
    if rule != "nearest":
        raise AVDigitsError(f"unknown display rule {rule!r}: use one of {DISPLAY_RULES}")
    bounds = [0] + [(end + nxt + 1) // 2 for (_, end), (nxt, _) in zip(spoken, spoken[1:])]
    bounds.append(n_frames)
    return [(bounds[i], bounds[i + 1]) for i in range(len(spoken))]


def render_video(plan, config):
    """Render a planned video into frames, an audio track and its metadata (no file I/O but
    reading the recordings).

    Parameters
    ----------
    plan : VideoPlan
    config : RenderConfig

    Returns
    -------
    frames : np.ndarray, uint8, shape (n_frames, height, width, 3)
    audio : np.ndarray, float32, shape (n_frames * audio_sr / fps,)
        Mono, in [-1, 1].
    meta : dict
        The sidecar content (see the README for the schema).
    """
    rng = np.random.default_rng(plan.seed)
    images, _ = load_digit_images(config.glyphs)
    sr, fps = config.audio_sr, config.fps
    utterances = [load_utterance(rec.path, sr) for rec, _ in plan.items]
    spoken, n_frames = layout_timeline([len(u) for u in utterances], sr, fps, config.gap, rng)
    shown = display_frames(spoken, n_frames, config.display)
    background, kind = make_background(rng, config.height, config.width)
    noise_db = float(rng.uniform(-66, -54))
    audio = rng.normal(0, 10 ** (noise_db / 20), int(round(n_frames * sr / fps)))
    audio = audio.astype(np.float32)
    frames = np.broadcast_to(to_uint8(background), (n_frames, config.height, config.width, 3))
    frames = frames.copy()
    segments = []
    for (rec, image_index), samples, (first, end), said in zip(plan.items, utterances, shown,
                                                                spoken):
        peak = float(rng.uniform(0.3, 0.9))
        samples = fade(samples * (peak / (np.abs(samples).max() + 1e-9)), int(0.005 * sr))
        start = int(round(said[0] * sr / fps))
        audio[start:start + len(samples)] += samples
        behind, behind_kind = ((background, kind) if config.background == "video"
                               else make_background(rng, config.height, config.width))
        placed = place_digit(rng, images[image_index], behind, config)
        frames[first:end] = composite(behind, placed)
        segments.append({
            "digit": rec.digit, "start": round(start / sr, 6),
            "end": round((start + len(samples)) / sr, 6), "frames": [first, end],
            "spoken_frames": list(said),
            "shown_start": round(first / fps, 6), "shown_end": round(end / fps, 6),
            "box": placed["box"], "patch": placed["patch"], "recording": rec.name,
            "digit_image_index": image_index,
            "colour": [round(float(c), 4) for c in placed["colour"]], "peak": round(peak, 4),
            "background": behind_kind})
    meta = {"format": FORMAT, "video": f"{plan.name}.mp4", "speaker": plan.speaker,
            "split": plan.split, "fps": fps, "width": config.width, "height": config.height,
            "n_frames": n_frames, "duration": round(n_frames / fps, 6), "audio_sr": sr,
            "audio_channels": 1, "seed": plan.seed, "background": config.background,
            "display": config.display,
            "noise_floor_dbfs": round(noise_db, 2), "segments": segments}
    return frames, np.clip(audio, -1, 1), meta


# ----------------------------------------------------------------------------------- file output

def ffmpeg_exe():
    """Path of the ffmpeg binary shipped with imageio-ffmpeg.

    Returns
    -------
    str
    """
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def encode_mp4(path, frames, audio, fps, sr, crf=20):
    """Encode frames and a mono track into an .mp4 (H.264 yuv420p + AAC), deterministically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (overwritten).
    frames : np.ndarray, uint8, shape (n_frames, H, W, 3)
        RGB; H and W even.
    audio : np.ndarray, float, shape (n_samples,)
        Mono in [-1, 1]; written through a temporary 16-bit WAV beside ``path``.
    fps : int
    sr : int
        Audio sample rate, Hz.
    crf : int
        x264 constant rate factor.

    Raises
    ------
    AVDigitsError
        If ffmpeg fails (its message is included).
    """
    import soundfile as sf

    path = Path(path)
    n_frames, height, width, _ = frames.shape
    wav = path.with_name(path.name + ".wav")
    sf.write(wav, audio, sr, subtype="PCM_16")
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
               "-framerate", str(fps), "-i", "pipe:0", "-i", str(wav),
               "-map", "0:v:0", "-map", "1:a:0",
               "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p",
               "-threads", "1", "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart",
               "-f", "mp4", str(path)]
    try:
        result = subprocess.run(command, input=np.ascontiguousarray(frames).tobytes(),
                                capture_output=True, check=False)
    finally:
        wav.unlink(missing_ok=True)
    if result.returncode != 0:
        raise AVDigitsError(f"ffmpeg failed on {path.name}: "
                            f"{result.stderr.decode(errors='replace').strip()[-500:]}")


def write_json_atomic(path, data):
    """Write JSON through a temporary file and a rename.

    Parameters
    ----------
    path : str or os.PathLike
    data : object
        JSON-serialisable.
    """
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def build_video(plan, config, out_dir, overwrite=False):
    """Render and write one video and its sidecar, unless both exist already.

    The .mp4 is encoded under a temporary name and renamed, then the sidecar is written the same
    way: a video counts as done when its sidecar exists.

    Parameters
    ----------
    plan : VideoPlan
    config : RenderConfig
    out_dir : str or os.PathLike
    overwrite : bool

    Returns
    -------
    dict
        The sidecar content (read back from disk when the video was skipped), with an extra
        ``"skipped"`` flag.
    """
    out_dir = Path(out_dir)
    video = out_dir / f"{plan.name}.mp4"
    sidecar = out_dir / f"{plan.name}.json"
    if not overwrite and video.exists() and sidecar.exists():
        return {**json.loads(sidecar.read_text()), "skipped": True}
    sidecar.unlink(missing_ok=True)
    frames, audio, meta = render_video(plan, config)
    tmp = out_dir / f".tmp-{plan.name}.mp4"
    try:
        encode_mp4(tmp, frames, audio, config.fps, config.audio_sr, config.crf)
        os.replace(tmp, video)
    finally:
        tmp.unlink(missing_ok=True)
    write_json_atomic(sidecar, meta)
    return {**meta, "skipped": False}


def _build_video_job(job):
    """Process-pool entry: ``build_video(*job)``, returning (plan name, sidecar or error)."""
    plan = job[0]
    try:
        return plan.name, build_video(*job), None
    except Exception as exc:  # reported per video; the others go on
        return plan.name, None, f"{type(exc).__name__}: {exc}"


def build_videos(plans, config, out_dir, workers=1, overwrite=False, progress=True):
    """Build many videos, in parallel processes when ``workers > 1``.

    Parameters
    ----------
    plans : list of VideoPlan
    config : RenderConfig
    out_dir : str or os.PathLike
    workers : int
    overwrite : bool
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    done : dict of str -> dict
        Plan name -> sidecar content.
    failed : dict of str -> str
        Plan name -> error message.
    """
    from tqdm import tqdm

    jobs = [(plan, config, out_dir, overwrite) for plan in plans]
    done, failed = {}, {}
    bar = tqdm(total=len(jobs), unit="video", disable=not progress)

    def collect(result):
        name, meta, error = result
        if error:
            failed[name] = error
            bar.write(f"failed: {name}: {error}")
        else:
            done[name] = meta
        bar.update()

    try:
        if workers <= 1:
            for job in jobs:
                collect(_build_video_job(job))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(_build_video_job, job) for job in jobs]
                try:
                    for future in as_completed(futures):
                        collect(future.result())
                except KeyboardInterrupt:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        bar.close()
    return done, failed


def corpus_summary(plans, done, failed, image_split, arguments, config):
    """The ``corpus.json`` content.

    Parameters
    ----------
    plans : list of VideoPlan
    done : dict of str -> dict
        Plan name -> sidecar content, from :func:`build_videos`.
    failed : dict of str -> str
    image_split : dict of str -> dict of int -> np.ndarray
    arguments : dict
        The generator's arguments (recorded for reproducibility).
    config : RenderConfig

    Returns
    -------
    dict
    """
    videos, totals = [], {}
    for plan in plans:
        if plan.name not in done:
            continue
        meta = done[plan.name]
        videos.append({"video": meta["video"], "sidecar": f"{plan.name}.json",
                       "speaker": plan.speaker, "split": plan.split,
                       "duration": meta["duration"], "n_segments": len(meta["segments"])})
        total = totals.setdefault(plan.split, {"videos": 0, "duration": 0.0, "segments": 0})
        total["videos"] += 1
        total["duration"] = round(total["duration"] + meta["duration"], 3)
        total["segments"] += len(meta["segments"])
    speakers = sorted({p.speaker for p in plans})
    return {
        "format": FORMAT, "generator": "examples/avdigits/make_avdigits.py",
        "seed": arguments.get("seed"), "arguments": arguments, "render": asdict(config),
        "licences": LICENCES,
        "splits": {split: {"speakers": [s for s in speakers if speaker_split(s) == split],
                           "digit_images": sorted(int(i) for d in image_split[split].values()
                                                  for i in d)}
                   for split in SPLITS},
        "totals": totals, "videos": videos, "failed": failed,
    }


# -------------------------------------------------------------------------------- clip export

def render_still(image, size, seed, config):
    """A labelled still: one digit on a random background, drawn as in the videos.

    Parameters
    ----------
    image : np.ndarray, float, shape (n, n)
    size : tuple of int
        (width, height) in pixels.
    seed : int or sequence of int
    config : RenderConfig

    Returns
    -------
    picture : np.ndarray, uint8, shape (height, width, 3)
    box : list of int
        Tight ink box [x0, y0, x1, y1], end-exclusive.
    """
    rng = np.random.default_rng(seed)
    background, _ = make_background(rng, size[1], size[0])
    placed = place_digit(rng, image, background, config)
    return composite(background, placed), placed["box"]


def export_clips(out_dir, recordings, speakers, config, seed, max_images_per_digit=None,
                 overwrite=False, progress=True):
    """Write a labelled evaluation set: utterance WAVs and digit-image PNGs, folder per class.

    Layout: ``out_dir/<split>/<digit>/<recording>.wav`` (the FSDD file, copied as is, 8 kHz)
    and ``out_dir/<split>-images/<digit>/img<index>.png`` (a still rendered like a video frame),
    plus ``out_dir/clips.csv`` listing every file with its split, label, source and, for
    images, the ink box.

    Parameters
    ----------
    out_dir : str or os.PathLike
    recordings : dict of str -> list of Recording
    speakers : sequence of str
        Whose recordings to export; images are exported for the splits these speakers are in.
    config : RenderConfig
        Frame size and digit placement of the stills.
    seed : int
        Corpus seed (each still is seeded by (seed, image index)).
    max_images_per_digit : int or None
        Export at most this many images per digit and split (the first ones by index).
    overwrite : bool
        Rewrite files that exist.
    progress : bool

    Returns
    -------
    dict of str -> int
        Number of files per kind: ``{"audio": n, "images": m}``.
    """
    from PIL import Image
    from tqdm import tqdm

    out_dir = Path(out_dir)
    rows, counts = [], {"audio": 0, "images": 0}
    for speaker in speakers:
        split = speaker_split(speaker)
        for rec in recordings[speaker]:
            target = out_dir / split / str(rec.digit) / rec.name
            if overwrite or not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(rec.path, target.with_name(".tmp-" + rec.name))
                os.replace(target.with_name(".tmp-" + rec.name), target)
            rows.append([target.relative_to(out_dir).as_posix(), "audio", split, rec.digit,
                         speaker, rec.name, "", "", "", ""])
            counts["audio"] += 1
    images, labels = load_digit_images(config.glyphs)
    image_split = digit_image_split(labels)
    todo = []
    for split in sorted({speaker_split(s) for s in speakers}):
        for digit in range(10):
            todo += [(split, digit, int(i))
                     for i in image_split[split][digit][:max_images_per_digit]]
    for split, digit, index in tqdm(todo, unit="image", disable=not progress):
        target = out_dir / f"{split}-images" / str(digit) / f"img{index:04d}.png"
        picture, box = render_still(images[index], (config.width, config.height),
                                    [seed, index], config)
        if overwrite or not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(".tmp-" + target.name)
            Image.fromarray(picture).save(tmp, format="PNG")
            os.replace(tmp, target)
        rows.append([target.relative_to(out_dir).as_posix(), "image", split, digit, "",
                     glyph_source(config.glyphs, index), *box])
        counts["images"] += 1
    with open(out_dir / "clips.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "kind", "split", "label", "speaker", "source",
                         "x0", "y0", "x1", "y1"])
        writer.writerows(rows)
    return counts


# ---------------------------------------------------------------------------------------- CLI

def parse_size(text):
    """Parse ``"256"`` or ``"320x240"`` into (width, height).

    Parameters
    ----------
    text : str

    Returns
    -------
    tuple of int
        (width, height), both even and at least 64.
    """
    match = re.fullmatch(r"(\d+)(?:[xX](\d+))?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected N or WxH, e.g. 256 or 320x240")
    width = int(match.group(1))
    height = int(match.group(2) or width)
    if min(width, height) < 64 or width % 2 or height % 2:
        raise argparse.ArgumentTypeError(f"size {text!r}: width and height must be even and "
                                         f"at least 64")
    return width, height


def build_parser():
    """The command-line interface.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="make_avdigits.py",
        description="Build the audio-visual digits corpus (spoken FSDD digits + handwritten "
                    "digit pictures) as .mp4 videos with JSON sidecars.")
    parser.add_argument("--fsdd", required=True, metavar="PATH",
                        help="Free Spoken Digit Dataset folder (holding recordings/)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--speakers", nargs="+", metavar="NAME",
                        default=list(TRAIN_SPEAKERS + HELDOUT_SPEAKERS),
                        help="speakers to build (default: all six)")
    parser.add_argument("--videos-per-speaker", type=int, metavar="N",
                        help="videos per speaker (default: as many as it takes to use every "
                             "recording once, about 50)")
    parser.add_argument("--utterances-per-video", type=int, nargs="+", default=[8, 12],
                        metavar="N", help="utterances per video: N, or MIN MAX (default 8 12)")
    parser.add_argument("--gap", type=float, nargs=2, default=[0.2, 0.8], metavar=("MIN", "MAX"),
                        help="silence before/between/after utterances, s (default 0.2 0.8)")
    parser.add_argument("--display", choices=DISPLAY_RULES, default="nearest",
                        help="nearest: each frame shows the digit heard nearest to it (default); "
                             "spoken: a digit is shown only while it is spoken, the background "
                             "alone in the gaps")
    parser.add_argument("--background", choices=BACKGROUND_MODES, default="segment",
                        help="segment: a new background for each utterance (default); video: "
                             "one static background per video")
    parser.add_argument("--glyphs", choices=GLYPH_SETS, default="handwritten",
                        help="handwritten: UCI handwritten digits, upscaled (default); fonts: "
                             "crisp digits typeset in 16 fonts bundled with matplotlib")
    parser.add_argument("--size", type=parse_size, default=(256, 256), metavar="N|WxH",
                        help="frame size in pixels (default 256)")
    parser.add_argument("--fps", type=int, default=10, help="frame rate (default 10)")
    parser.add_argument("--audio-sr", type=int, default=48000, metavar="HZ",
                        help="audio sample rate of the videos (default 48000)")
    parser.add_argument("--digit-scale", type=float, nargs=2, default=[0.3, 0.65],
                        metavar=("MIN", "MAX"),
                        help="digit height as a fraction of the frame's shorter side "
                             "(default 0.3 0.65)")
    parser.add_argument("--crf", type=int, default=20, help="x264 quality, lower is better")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    parser.add_argument("--overwrite", action="store_true",
                        help="rebuild videos that exist (default: skip them, to resume)")
    parser.add_argument("--export-clips", metavar="DIR",
                        help="also write a labelled evaluation set (WAV per utterance, PNG per "
                             "digit image, folder per class) into DIR")
    parser.add_argument("--export-max-images", type=int, metavar="N",
                        help="export at most N images per digit and split")
    parser.add_argument("--no-videos", action="store_true",
                        help="build no videos (with --export-clips: only export)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def check_arguments(parser, args, recordings):
    """Validate parsed arguments against each other and the FSDD content (exits on error).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    args : argparse.Namespace
    recordings : dict of str -> list of Recording

    Returns
    -------
    tuple of int
        (min, max) utterances per video.
    """
    counts = args.utterances_per_video
    if len(counts) not in (1, 2) or min(counts) < 1 or counts[0] > counts[-1]:
        parser.error("--utterances-per-video takes N or MIN MAX with 1 <= MIN <= MAX")
    if not 0 < args.gap[0] <= args.gap[1]:
        parser.error("--gap takes MIN MAX with 0 < MIN <= MAX")
    if not 0 < args.digit_scale[0] <= args.digit_scale[1] <= 0.8:
        parser.error("--digit-scale takes MIN MAX with 0 < MIN <= MAX <= 0.8")
    if args.fps < 1 or args.audio_sr < 8000 or args.workers < 1:
        parser.error("--fps must be >= 1, --audio-sr >= 8000 and --workers >= 1")
    if args.no_videos and not args.export_clips:
        parser.error("--no-videos leaves nothing to do without --export-clips")
    if args.videos_per_speaker is not None and args.videos_per_speaker < 1:
        parser.error("--videos-per-speaker must be >= 1")
    unknown = [s for s in args.speakers if s not in recordings]
    if unknown:
        parser.error(f"speakers {unknown} not in the FSDD folder, which has {sorted(recordings)}")
    for speaker in args.speakers:
        try:
            speaker_split(speaker)
        except AVDigitsError as exc:
            parser.error(str(exc))
    return counts[0], counts[-1]


def main(argv=None):
    """Run the generator.

    Parameters
    ----------
    argv : list of str or None
        Command-line arguments (None: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 if every video was built, 1 otherwise.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        recordings = list_recordings(args.fsdd)
    except AVDigitsError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    count_range = check_arguments(parser, args, recordings)
    speakers = list(dict.fromkeys(args.speakers))
    config = RenderConfig(width=args.size[0], height=args.size[1], fps=args.fps,
                          audio_sr=args.audio_sr, gap=tuple(args.gap), display=args.display,
                          background=args.background, glyphs=args.glyphs,
                          digit_scale=tuple(args.digit_scale), crf=args.crf)
    arguments = {**vars(args), "fsdd": str(Path(args.fsdd).resolve()),
                 "output": str(Path(args.output).resolve()), "size": list(args.size)}
    started = time.monotonic()
    status = 0
    if not args.no_videos:
        out_dir = Path(args.output)
        out_dir.mkdir(parents=True, exist_ok=True)
        plans = plan_corpus(recordings, speakers, args.seed, count_range,
                            args.videos_per_speaker, args.glyphs)
        done, failed = build_videos(plans, config, out_dir, args.workers, args.overwrite,
                                    progress=not args.quiet)
        _, labels = load_digit_images(args.glyphs)
        summary = corpus_summary(plans, done, failed, digit_image_split(labels), arguments,
                                 config)
        write_json_atomic(out_dir / "corpus.json", summary)
        built = sum(not m["skipped"] for m in done.values())
        print(f"{len(done)} videos in {out_dir} ({built} built, {len(done) - built} already "
              f"there, {len(failed)} failed); "
              + ", ".join(f"{s}: {t['videos']} videos, {t['duration'] / 60:.1f} min"
                          for s, t in summary["totals"].items()))
        status = 1 if failed else 0
    if args.export_clips:
        counts = export_clips(args.export_clips, recordings, speakers, config, args.seed,
                              args.export_max_images, args.overwrite, progress=not args.quiet)
        print(f"exported {counts['audio']} utterances and {counts['images']} images to "
              f"{args.export_clips}")
    print(f"done in {time.monotonic() - started:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
