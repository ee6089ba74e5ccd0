"""Where the sound is: correspondence maps of a trained L3-Net over the image and the spectrogram.

L3-Net's audio-visual correspondence (AVC) model max-pools each trunk's last feature map (conv4_2
after its BN and ReLU) to one vector per modality and classifies the concatenated pair with the
fusion head (FC 128 BN ReLU, FC 2 softmax). Localisation applies the same trained fusion head to
finer pairs:

* **image map**: the audio vector (global max of the audio trunk's features of the 1-second window
  around a frame) paired with *each spatial position's* feature vector of the image trunk, instead
  of the globally pooled one. The result is one score per position: how strongly that part of the
  picture corresponds to the sound.
* **spectrogram map**: the image vector (global max of the frame's features) paired with each
  time-frequency position of the audio trunk's feature map: which parts of the sound correspond
  to the picture.

Scores are the fusion head's logit of "corresponds" (``z1 - z0`` before the softmax; its sigmoid
is the probability), which does not saturate the way the probability does. The image trunk is
fully convolutional, so it is run on the whole frame (shorter side scaled to 256 pixels, the scale
training crops were taken at) rather than on a 224x224 centre crop, and the map covers the whole
frame.

The pointing game (:func:`peak_position`, :func:`point_in_box`) scores a map by whether its
maximum falls inside a known object box; ``examples/avdigits/pointing_game.py`` runs it on the
audio-visual digits corpus.
"""

import os
from dataclasses import dataclass

import numpy as np

from .checks import check_batch_size
from .errors import OpenL3liteError
from .facts import TARGET_SR, WINDOW_LEN
from .network import fusion_head_arrays, pool4_activations
from .output import atomic_path

SAMPLE_RATE = TARGET_SR
WINDOW_SAMPLES = WINDOW_LEN
#: Shorter side, in pixels, the frame is scaled to before the image trunk (training's frame scale).
SHORT_SIDE = 256


# ---------------------------------------------------------------- pure scoring functions

def correspondence_logits(audio_vectors, image_vectors, fusion_weights):
    """The fusion head's logit of "corresponds" for pairs of audio and image vectors.

    Parameters
    ----------
    audio_vectors : np.ndarray, float, shape (..., C)
    image_vectors : np.ndarray, float, shape (..., C)
        Broadcast against ``audio_vectors`` (e.g. (n, 1, 1, C) audio with (n, h, w, C) image
        positions).
    fusion_weights : tuple of np.ndarray
        From :func:`openl3lite.network.fusion_head_arrays` (or
        :meth:`openl3lite.l3net.L3Net.fusion_arrays`).

    Returns
    -------
    np.ndarray, float32, shape broadcast(...)
        ``z1 - z0``, the difference of the two pre-softmax outputs; its sigmoid is the
        probability the fusion head gives to "corresponds".
    """
    w1, b1, w2, b2 = fusion_weights
    audio_vectors = np.asarray(audio_vectors, np.float32)
    image_vectors = np.asarray(image_vectors, np.float32)
    channels = audio_vectors.shape[-1]
    if image_vectors.shape[-1] != channels or w1.shape[0] != 2 * channels:
        raise OpenL3liteError(f"audio ({channels}) and image ({image_vectors.shape[-1]}) vectors "
                              f"do not fit a fusion head taking {w1.shape[0]} values")
    # concat(a, v) @ w1 == a @ w1[:C] + v @ w1[C:], which broadcasts without tiling the pairs
    hidden = np.maximum(audio_vectors @ w1[:channels] + image_vectors @ w1[channels:] + b1, 0.0)
    z = hidden @ w2 + b2
    return (z[..., 1] - z[..., 0]).astype(np.float32)


def probability(logits):
    """Probability of "corresponds" from :func:`correspondence_logits` (the logistic sigmoid).

    Parameters
    ----------
    logits : np.ndarray, float

    Returns
    -------
    np.ndarray, float32, same shape, values in [0, 1]
    """
    logits = np.asarray(logits, np.float64)
    return (0.5 * (1.0 + np.tanh(0.5 * logits))).astype(np.float32)


def upsample_map(score_map, shape):
    """Bilinearly resize a score map to an image's or spectrogram's size.

    Parameters
    ----------
    score_map : np.ndarray, float, shape (h, w)
        E.g. one score per feature-map cell.
    shape : tuple of int
        (H, W) to resize to. Cell (i, j) is treated as covering ``[i H/h, (i+1) H/h)`` rows and
        likewise columns, so cell centres land on the matching pixels.

    Returns
    -------
    np.ndarray, float32, shape (H, W)
    """
    import skimage.transform

    return skimage.transform.resize(np.asarray(score_map, np.float64), tuple(shape), order=1,
                                    mode="edge", anti_aliasing=False).astype(np.float32)


def peak_position(score_map, frame_shape):
    """Where in a frame a score map is highest: the centre of its best cell, in frame pixels.

    Parameters
    ----------
    score_map : np.ndarray, float, shape (h, w)
    frame_shape : tuple of int
        (H, W) of the frame the map covers.

    Returns
    -------
    (float, float)
        (x, y) in pixels; the first maximum in row-major order wins a tie.
    """
    score_map = np.asarray(score_map)
    row, col = np.unravel_index(int(np.argmax(score_map)), score_map.shape)
    height, width = frame_shape[:2]
    return ((col + 0.5) * width / score_map.shape[1], (row + 0.5) * height / score_map.shape[0])


def point_in_box(point, box):
    """Whether a point lies inside an end-exclusive box.

    Parameters
    ----------
    point : (float, float)
        (x, y) in pixels.
    box : sequence of 4 numbers
        ``[x0, y0, x1, y1]`` covering ``frame[y0:y1, x0:x1]``.

    Returns
    -------
    bool
    """
    x, y = point
    x0, y0, x1, y1 = box
    return bool(x0 <= x < x1 and y0 <= y < y1)


def pointing_hits(points, boxes):
    """The pointing game: whether each point falls inside its box.

    Parameters
    ----------
    points : sequence of (float, float)
        (x, y) in pixels, e.g. :func:`peak_position` of each frame's map.
    boxes : sequence of sequence of 4 numbers
        ``[x0, y0, x1, y1]`` per point, end-exclusive.

    Returns
    -------
    np.ndarray, bool, shape (n,)
        Its mean is the pointing-game accuracy.
    """
    if len(points) != len(boxes):
        raise OpenL3liteError(f"{len(points)} points but {len(boxes)} boxes")
    return np.array([point_in_box(p, b) for p, b in zip(points, boxes)], bool)


def centre_point(frame_shape):
    """The centre of a frame, the centre-prior baseline's guess.

    Parameters
    ----------
    frame_shape : tuple of int
        (H, W).

    Returns
    -------
    (float, float)
        (x, y) in pixels.
    """
    return (frame_shape[1] / 2.0, frame_shape[0] / 2.0)


# ---------------------------------------------------------------- inputs

def network_frames(frames, short_side=SHORT_SIDE):
    """Frames as the image trunk takes them: shorter side scaled to ``short_side``, [-1, 1].

    Parameters
    ----------
    frames : np.ndarray, uint8, shape (n, H, W, 3)
    short_side : int
        Pixels of the shorter side after scaling (training's frames had 256).

    Returns
    -------
    np.ndarray, float32, shape (n, H', W', 3), values in [-1, 1]
        The whole frame, not cropped (the trunk is fully convolutional).
    """
    import skimage.transform

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise OpenL3liteError(f"frames must be (n, H, W, 3), got shape {frames.shape}")
    height, width = frames.shape[1:3]
    scale = short_side / min(height, width)
    shape = (max(short_side, round(height * scale)), max(short_side, round(width * scale)))
    out = np.empty((len(frames),) + shape + (3,), np.float32)
    for i, frame in enumerate(frames):
        image = frame.astype(np.float32) / 255.0
        if shape != (height, width):
            image = skimage.transform.resize(image, shape, order=1, anti_aliasing=scale < 1)
        out[i] = 2.0 * np.clip(image, 0.0, 1.0) - 1.0
    return out


def audio_windows(mono, centres_s, sr=SAMPLE_RATE):
    """The 1-second windows of a 48 kHz signal centred on given times, zero-padded at the ends.

    Parameters
    ----------
    mono : np.ndarray, float, shape (n_samples,)
        At ``sr`` Hz.
    centres_s : sequence of float
        Window centres in seconds.
    sr : int

    Returns
    -------
    np.ndarray, float32, shape (len(centres_s), 48000)
    """
    mono = np.asarray(mono, np.float32)
    half = WINDOW_SAMPLES // 2
    padded = np.pad(mono, (half, half + WINDOW_SAMPLES))
    starts = [int(round(c * sr)) for c in centres_s]  # == start - half + half in padded indices
    return np.stack([padded[s:s + WINDOW_SAMPLES] for s in starts]) if starts else \
        np.zeros((0, WINDOW_SAMPLES), np.float32)


# ---------------------------------------------------------------- running the network

def _fully_convolutional(trunk):
    """The image trunk on inputs of any height and width (same layers, same weights)."""
    import keras

    inputs = keras.Input((None, None, trunk.input_shape[-1]))
    x = inputs
    for layer in trunk.layers:
        if not isinstance(layer, keras.layers.InputLayer):
            x = layer(x)
    return keras.Model(inputs, x, name="image_trunk_fcn")


@dataclass
class CorrespondenceMaps:
    """Correspondence scores of frame / audio-window pairs.

    Attributes
    ----------
    image_logit : np.ndarray, float32, shape (n, h, w)
        Per image feature-map position (h = w = 32 for a 256x256 frame).
    audio_logit : np.ndarray, float32, shape (n, f, t)
        Per audio feature-map position (f = n_freq / 8 frequency rows, t = 24 time columns).
    pair_logit : np.ndarray, float32, shape (n,)
        The AVC model's own score of each pair (both vectors globally pooled).
    spectrogram : np.ndarray, float32, shape (n, n_freq, n_time)
        The audio windows' dB spectrograms (in [-80, 0]).
    """

    image_logit: np.ndarray
    audio_logit: np.ndarray
    pair_logit: np.ndarray
    spectrogram: np.ndarray


def correspondence_maps(model, images, windows, batch_size=8):
    """Score frames against audio windows at every position of both feature maps.

    Parameters
    ----------
    model : openl3lite.l3net.L3Net
    images : np.ndarray, float32, shape (n, H, W, 3)
        From :func:`network_frames`.
    windows : np.ndarray, float32, shape (n, 48000)
        From :func:`audio_windows`; window i goes with image i.
    batch_size : int
        Pairs per network call.

    Returns
    -------
    CorrespondenceMaps
    """
    import keras

    if len(images) != len(windows):
        raise OpenL3liteError(f"{len(images)} frames but {len(windows)} audio windows")
    check_batch_size(batch_size)
    image_trunk = _fully_convolutional(model.image_trunk)
    audio_trunk, spectrogram = model.audio_trunk, model.spectrogram
    fusion = fusion_head_arrays(model.fusion)
    audio_pool4, image_pool4 = model.audio_pool4, model.image_pool4
    parts = {"image_logit": [], "audio_logit": [], "pair_logit": [], "spectrogram": []}
    for start in range(0, len(images), batch_size):
        spec = spectrogram(windows[start:start + batch_size])
        # conv4_2 after its BN and ReLU: the positions pool4 takes the maximum of
        audio_features = pool4_activations(audio_pool4, audio_trunk(spec))
        image_features = pool4_activations(image_pool4,
                                           image_trunk(images[start:start + batch_size]))
        audio_vec = audio_features.max(axis=(1, 2), keepdims=True)  # (b, 1, 1, C)
        image_vec = image_features.max(axis=(1, 2), keepdims=True)
        parts["image_logit"].append(correspondence_logits(audio_vec, image_features, fusion))
        parts["audio_logit"].append(correspondence_logits(audio_features, image_vec, fusion))
        parts["pair_logit"].append(correspondence_logits(audio_vec, image_vec, fusion)[:, 0, 0])
        parts["spectrogram"].append(keras.ops.convert_to_numpy(spec)[..., 0])
    if not parts["pair_logit"]:
        raise OpenL3liteError("no frames to localise")
    return CorrespondenceMaps(**{k: np.concatenate(v).astype(np.float32)
                                 for k, v in parts.items()})


# ---------------------------------------------------------------- videos

@dataclass
class VideoInputs:
    """Decoded frames of a video with the sound around them.

    Attributes
    ----------
    path : str
    times : np.ndarray, float64, shape (n,)
        Seconds at which each frame was taken.
    audio_centres : np.ndarray, float64, shape (n,)
        Centre of each frame's 1-second audio window: the middle of the frame's display
        interval at the video's own frame rate.
    frames : np.ndarray, uint8, shape (n, H, W, 3)
        At the video's own resolution.
    windows : np.ndarray, float32, shape (n, 48000)
        The 1-second mono audio windows at 48 kHz (zero-padded beyond the track's ends).
    """

    path: str
    times: np.ndarray
    audio_centres: np.ndarray
    frames: np.ndarray
    windows: np.ndarray


@dataclass
class VideoLocalization:
    """Correspondence maps for frames of one video.

    Attributes
    ----------
    inputs : VideoInputs
        The frames and audio windows the maps were computed from; ``path``, ``times``,
        ``audio_centres`` and ``frames`` are read from it.
    maps : CorrespondenceMaps
    """

    inputs: VideoInputs
    maps: CorrespondenceMaps

    @property
    def path(self):
        """The video's path: str."""
        return self.inputs.path

    @property
    def times(self):
        """Seconds at which each frame was taken: float64 (n,)."""
        return self.inputs.times

    @property
    def audio_centres(self):
        """Centre of each frame's 1-second audio window, in seconds: float64 (n,)."""
        return self.inputs.audio_centres

    @property
    def frames(self):
        """The frames at the video's own resolution: uint8 (n, H, W, 3)."""
        return self.inputs.frames

    def image_map(self, index):
        """Probability map of frame ``index`` at the frame's resolution: float32 (H, W)."""
        return probability(upsample_map(self.maps.image_logit[index], self.frames.shape[1:3]))

    def audio_map(self, index):
        """Probability map of window ``index`` at the spectrogram's resolution: float32
        (n_freq, n_time)."""
        return probability(upsample_map(self.maps.audio_logit[index],
                                        self.maps.spectrogram.shape[1:3]))

    def peaks(self):
        """Each frame's image-map maximum in frame pixels: float64 (n, 2) as (x, y)."""
        shape = self.frames.shape[1:3]
        return np.array([peak_position(m, shape) for m in self.maps.image_logit], np.float64)


def read_video_inputs(path, fps=1.0, frame_indices=None):
    """Decode frames of a video and the 1-second audio window centred on each.

    Parameters
    ----------
    path : str or os.PathLike
    fps : float or None
        Frames per second to take; None takes every frame.
    frame_indices : sequence of int, optional
        Keep only these of the frames taken (indices at ``fps``).

    Returns
    -------
    VideoInputs

    Raises
    ------
    OpenL3liteError
        Unreadable video, no audio track, no frames, or an index beyond the video.
    """
    from .audio import downmix
    from .video import read_video_audio, read_video_frames, video_fps

    path = os.fspath(path)
    if fps is not None and not fps > 0:
        raise OpenL3liteError(f"invalid fps {fps}: must be positive")
    own_fps = video_fps(path)
    frames, rate = read_video_frames(path, fps=fps or own_fps)
    mono = downmix(read_video_audio(path, SAMPLE_RATE, check_cut_short=False))  # frames checked
    times = np.arange(len(frames)) / rate
    keep = times < len(mono) / SAMPLE_RATE  # moviepy may give a frame past the audio's end
    if frame_indices is not None:
        indices = np.asarray(frame_indices, int)
        if indices.size and (indices.min() < 0 or indices.max() >= len(frames)):
            raise OpenL3liteError(f"{path}: frame index out of range (0..{len(frames) - 1})")
        keep = np.zeros(len(frames), bool)
        keep[indices] = True
    frames, times = frames[keep], times[keep]
    if not len(frames):
        raise OpenL3liteError(f"{path}: no frames to localise")
    centres = times + 0.5 / own_fps
    return VideoInputs(path, times, centres, frames, audio_windows(mono, centres))


def localize_inputs(inputs, model, short_side=SHORT_SIDE, batch_size=8):
    """Correspondence maps of decoded frames with their audio windows.

    Parameters
    ----------
    inputs : VideoInputs
    model : openl3lite.l3net.L3Net
    short_side : int
        Shorter side the frame is scaled to for the image trunk.
    batch_size : int

    Returns
    -------
    VideoLocalization
    """
    maps = correspondence_maps(model, network_frames(inputs.frames, short_side), inputs.windows,
                               batch_size)
    return VideoLocalization(inputs, maps)


def localize_video(path, model, fps=1.0, frame_indices=None, short_side=SHORT_SIDE,
                   batch_size=8):
    """Correspondence maps of frames of a video with the 1-second audio around each.

    :func:`read_video_inputs` then :func:`localize_inputs`.

    Parameters
    ----------
    path : str or os.PathLike
    model : openl3lite.l3net.L3Net
    fps : float or None
        Frames per second to take; None takes every frame.
    frame_indices : sequence of int, optional
        Keep only these of the frames taken (indices at ``fps``).
    short_side : int
        Shorter side the frame is scaled to for the image trunk.
    batch_size : int

    Returns
    -------
    VideoLocalization

    Raises
    ------
    OpenL3liteError
        Unreadable video, no audio track, no frames, or an index beyond the video.
    """
    return localize_inputs(read_video_inputs(path, fps, frame_indices), model, short_side,
                           batch_size)


# ---------------------------------------------------------------- outputs

def output_names(video_path, out_dir):
    """Where :func:`write_localization` writes for a video.

    Returns
    -------
    dict
        ``npz`` (``<stem>_localize.npz``), ``png_dir`` (``<stem>_localize/``) and ``mp4``
        (``<stem>_localize.mp4``), all inside ``out_dir``.
    """
    stem = os.path.splitext(os.path.basename(os.fspath(video_path)))[0]
    base = os.path.join(os.fspath(out_dir), f"{stem}_localize")
    return {"npz": base + ".npz", "png_dir": base, "mp4": base + ".mp4"}


def write_localization(result, out_dir, png=True, mp4=False):
    """Write a video's maps: ``.npz``, PNG overlays per frame and optionally an annotated ``.mp4``.

    The ``.npz`` holds ``times``, ``audio_centres`` (s, float64 (n,)), ``image_logit``
    (float32 (n, h, w)), ``image_probability`` (its sigmoid), ``audio_logit`` /
    ``audio_probability`` (float32 (n, f, t)), ``pair_probability`` (float32 (n,), the AVC
    model's own output), ``spectrogram`` (dB, float32 (n, n_freq, n_time)), ``peaks`` (frame
    pixels (x, y), float64 (n, 2)) and ``frame_size`` ((H, W), int). Maps are at feature-map
    resolution; :func:`upsample_map` brings them to the frame's. Every file is written under a
    temporary name and renamed.

    Parameters
    ----------
    result : VideoLocalization
    out_dir : str
    png : bool
        Write ``<t>s_image.png`` (heatmap over the frame) and ``<t>s_audio.png`` (spectrogram and
        its map) per frame into ``<stem>_localize/``.
    mp4 : bool
        Write ``<stem>_localize.mp4``: the overlays as a video with the original sound.

    Returns
    -------
    list of str
        Files written.
    """
    from . import plots
    from .output import write_npz_atomic

    names = output_names(result.path, out_dir)
    maps = result.maps
    write_npz_atomic(names["npz"], times=result.times, audio_centres=result.audio_centres,
                     image_logit=maps.image_logit,
                     image_probability=probability(maps.image_logit),
                     audio_logit=maps.audio_logit,
                     audio_probability=probability(maps.audio_logit),
                     pair_probability=probability(maps.pair_logit),
                     spectrogram=maps.spectrogram, peaks=result.peaks(),
                     frame_size=np.asarray(result.frames.shape[1:3], int))
    written = [names["npz"]]
    peaks = result.peaks()
    if png:
        for i, t in enumerate(result.times):
            stem = os.path.join(names["png_dir"], f"{t:08.3f}s")
            p_pair = float(probability(maps.pair_logit[i]))
            image_map = result.image_map(i)
            plots.plot_image_localization(
                result.frames[i], image_map, stem + "_image.png", peaks[i],
                f"t = {t:.2f} s, p(corresponds) = {p_pair:.2f}\n"
                f"map: p from {image_map.min():.2f} (blue) to {image_map.max():.2f} (red)")
            centre = result.audio_centres[i]
            plots.plot_audio_localization(maps.spectrogram[i], result.audio_map(i),
                                          stem + "_audio.png", (centre - 0.5, centre + 0.5),
                                          f"audio around t = {t:.2f} s")
            written += [stem + "_image.png", stem + "_audio.png"]
    if mp4:
        write_overlay_video(result, names["mp4"])
        written.append(names["mp4"])
    return written


def write_overlay_video(result, path):
    """Write the heatmap overlays as an ``.mp4`` (H.264 + AAC) with the video's sound.

    Parameters
    ----------
    result : VideoLocalization
    path : str
        Destination; written under a temporary name and renamed.
    """
    from moviepy import ImageSequenceClip
    from moviepy.audio.AudioClip import AudioArrayClip

    from .audio import downmix
    from .plots import heatmap_overlay
    from .video import read_video_audio

    if len(result.times) < 2:
        raise OpenL3liteError(f"{result.path}: an annotated video needs at least two frames")
    height, width = result.frames.shape[1:3]
    even = (slice(0, height - height % 2), slice(0, width - width % 2))  # H.264 4:2:0 needs even
    frames = [heatmap_overlay(result.frames[i], result.image_map(i))[even]
              for i in range(len(result.times))]
    fps = 1.0 / float(np.median(np.diff(result.times)))
    clip = ImageSequenceClip(frames, fps=fps)
    mono = downmix(read_video_audio(result.path, SAMPLE_RATE))
    mono = mono[: int(clip.duration * SAMPLE_RATE)]
    sound = AudioArrayClip(np.repeat(mono[:, None], 2, axis=1), fps=SAMPLE_RATE)
    clip = clip.with_audio(sound)
    try:
        with atomic_path(path) as tmp:
            clip.write_videofile(tmp, fps=fps, codec="libx264", audio_codec="aac",
                                 logger=None, ffmpeg_params=["-pix_fmt", "yuv420p"])
    finally:
        clip.close()
