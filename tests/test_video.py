"""Video embedding streams the sound and the frames: it gives what decoding the whole video at
once gives, without holding the video in memory (figures: ``benchmarks/long_file_memory.py
--video``)."""

import warnings

import numpy as np
import pytest

from conftest import write_test_video
from openl3lite import api, video
from openl3lite.errors import OpenL3liteError, OpenL3liteWarning


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    paths = {}
    for name, seconds, seed in [("short", 0.8, 1), ("long", 3.6, 2)]:
        paths[name] = str(folder / f"{name}.mp4")
        write_test_video(paths[name], seconds, seed, fps=10)
    return paths


@pytest.fixture(scope="module")
def models():
    import openl3lite
    from openl3lite.models import ModelMetadata, build_image_model

    audio = openl3lite.random_audio_model("mel128", 512, width=0.0625, seed=1)
    symmetric = openl3lite.random_image_model(512, width=0.0625, seed=2)
    openl3 = build_image_model(ModelMetadata(name="openl3-scaled", width=0.0625,
                                             image_scaling="openl3"), 512)
    return audio, {"symmetric": symmetric, "openl3": openl3}


def _ffmpeg_decode_48k(path):
    import subprocess

    from moviepy.config import FFMPEG_BINARY

    raw = subprocess.run([FFMPEG_BINARY, "-v", "error", "-i", str(path), "-vn", "-ar", "48000",
                          "-ac", "2", "-f", "s16le", "-c:a", "pcm_s16le", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.int16).reshape(-1, 2) / 32768.0


@pytest.mark.parametrize("name", ["short", "long", "bento"])
def test_sound_streams_in_blocks_that_join_into_ffmpeg_s_48k_decode(clips, fixtures_dir, name):
    """The sound is resampled to 48 kHz by ffmpeg (not by picking the nearest samples of a
    44.1 kHz decode), its blocks join into ffmpeg's own decode, and it is as long as the
    container's duration says. Videos under a second (which moviepy 2.1 alone cannot read)
    are read too."""
    path = fixtures_dir / "inputs" / "video" / "bento.mp4" if name == "bento" else clips[name]
    expected = _ffmpeg_decode_48k(path)
    with video.open_video_audio(path) as (n_samples, blocks):
        blocks = list(blocks)
    joined = np.concatenate(blocks)
    with video.open_video(path) as clip:
        assert joined.shape == (n_samples, 2) == (int(48000 * clip.duration), 2)
    assert len(blocks) == {"short": 3, "long": 4, "bento": 3}[name]
    common = min(len(expected), n_samples)
    assert common > 0.9 * n_samples
    np.testing.assert_array_equal(joined[:common], expected[:common])
    np.testing.assert_array_equal(video.read_video_audio(path), joined)


@pytest.mark.parametrize("scaling", ["symmetric", "openl3"])
def test_frames_embedded_batch_by_batch_equal_the_whole_stack(clips, models, scaling):
    """Batches of 4 frames, each preprocessed alone, give the embeddings of the whole decoded
    stack preprocessed at once (with OpenL3's whole-batch scaling too)."""
    audio_model, image_models = models
    model = image_models[scaling]
    size = {"size": (256, 256)} if scaling == "openl3" else {"short_side": 256}
    frames, fps = video.read_video_frames(clips["long"], **size)
    expected = api.embed_images(frames, model, batch_size=32)
    result = api.embed_video_file(clips["long"], audio_model, model, image_batch_size=4)
    assert len(frames) == 36 and fps == 10
    np.testing.assert_allclose(result["image_embedding"], expected, atol=1e-5)
    np.testing.assert_array_equal(result["image_timestamps"], np.arange(36) / 10)
    samples = video.read_video_audio(clips["long"])
    emb, ts = api.get_audio_embedding(samples, 48000, model=audio_model, verbose=False)
    np.testing.assert_allclose(result["audio_embedding"], emb, atol=1e-5)
    np.testing.assert_array_equal(result["audio_timestamps"], ts)


def test_a_black_video_warns_once_and_no_frames_is_an_error(models, tmp_path):
    from moviepy import ColorClip

    audio_model, image_models = models
    black = tmp_path / "black.mp4"
    clip = ColorClip((320, 240), color=(0, 0, 0), duration=2.0).with_fps(10)
    clip.write_videofile(str(black), codec="libx264", audio=False, preset="ultrafast",
                         logger=None)
    frames = (frame for _, frame in video.iter_video_frames(black, short_side=256))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        embedding = api.embed_frames(frames, image_models["symmetric"], batch_size=4,
                                     source=str(black))
    assert len(embedding) == 20
    zero_warnings = [w for w in caught if issubclass(w.category, OpenL3liteWarning)]
    assert len(zero_warnings) == 1 and "black.mp4: provided image is all zeros" in str(
        zero_warnings[0].message)
    with pytest.raises(OpenL3liteError, match="nothing.mp4: video has no frames"):
        api.embed_frames(iter([]), image_models["symmetric"], source="nothing.mp4")
