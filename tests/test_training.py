"""Data preparation and pair sampling on a handful of generated videos (training, kill -9 and
resume, export: ``test_train.py``)."""

import os

import numpy as np
import pytest

from conftest import write_test_video
from openl3lite.training.prepare import load_manifest, prepare_dataset
from openl3lite.errors import OpenL3liteError
from openl3lite.training.sampling import (IGNORED, PairSampler, grid_targets, pair_grid_labels,
                                          split_videos)



@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    paths = []
    for i in range(4):
        path = folder / f"v{i}.mp4"
        write_test_video(path, 2.5 + 0.5 * i, i)
        paths.append(str(path))
    silent = folder / "silent.mp4"
    write_test_video(silent, 2.0, 9, with_audio=False)
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(2000))
    return paths, str(silent), str(corrupt), str(_cut_short_copy(paths[3], folder / "cut.mp4"))


def _cut_short_copy(path, out):
    """The first 60% of ``path`` remuxed with its header first (as a download interrupted
    halfway leaves it): readable, but the header promises the whole length."""
    import subprocess

    from moviepy.config import FFMPEG_BINARY

    whole = out.with_name("faststart.mp4")
    subprocess.run([FFMPEG_BINARY, "-v", "error", "-y", "-i", str(path), "-c", "copy",
                    "-movflags", "+faststart", str(whole)], check=True)
    payload = whole.read_bytes()
    out.write_bytes(payload[: int(0.6 * len(payload))])
    return out


@pytest.fixture(scope="module")
def dataset(videos, tmp_path_factory):
    good, silent, corrupt, cut = videos
    out = tmp_path_factory.mktemp("dataset")
    report = prepare_dataset(good[:3] + [silent, corrupt, cut], str(out), fps=4, workers=2,
                             progress=False)
    assert sorted(report.added) == sorted(good[:3])
    failed = dict(report.failed)
    assert "no audio track" in failed[silent]
    assert corrupt in failed
    assert failed[cut].startswith(cut) and "cut short" in failed[cut]
    return str(out)


def test_prepare_contents_and_rerun(dataset, videos):
    manifest = load_manifest(dataset)
    assert len(manifest["videos"]) == 3 and manifest["sample_rate"] == 48000
    for record in manifest["videos"].values():
        frames = np.load(os.path.join(dataset, record.frames_file), mmap_mode="r")
        audio = np.load(os.path.join(dataset, record.audio_file), mmap_mode="r")
        assert min(frames.shape[1:3]) == 256 and frames.shape[2] > 256  # aspect kept
        assert abs(len(audio) / 48000 - record.duration_s) < 1e-6
        assert abs(record.n_frames - 4 * record.duration_s) <= 1.5
    shard_times = {f: os.path.getmtime(os.path.join(dataset, "shards", f))
                   for f in os.listdir(os.path.join(dataset, "shards"))}
    report = prepare_dataset(videos[0], dataset, fps=4, progress=False)
    assert report.added == [videos[0][3]] and len(report.already_done) == 3
    for name, mtime in shard_times.items():
        assert os.path.getmtime(os.path.join(dataset, "shards", name)) == mtime
    assert not [f for f in os.listdir(dataset) if ".tmp" in f]


def test_videos_cut_short_or_without_picture_are_refused(videos, tmp_path):
    """moviepy pads a truncated file's audio with silence and repeats its last frame; both
    readers refuse it instead, naming the file (MP4 and Matroska). The uncut original reads in
    full, and a whole file whose picture ends before its sound only warns."""
    import subprocess
    import warnings

    from moviepy import AudioArrayClip
    from moviepy.config import FFMPEG_BINARY

    from openl3lite.errors import OpenL3liteWarning
    from openl3lite.video import iter_video_frames, read_video_audio

    good, _, _, cut = videos
    with pytest.raises(OpenL3liteError, match=r"cut\.mp4: the file is cut short.*partial file"):
        read_video_audio(cut)
    with pytest.raises(OpenL3liteError, match=r"cut\.mp4: the file is cut short"):
        list(iter_video_frames(cut, fps=4))
    mkv = tmp_path / "whole.mkv"
    subprocess.run([FFMPEG_BINARY, "-v", "error", "-i", good[3], "-c", "copy", str(mkv)],
                   check=True)
    (tmp_path / "cut.mkv").write_bytes(mkv.read_bytes()[: mkv.stat().st_size // 2])
    with pytest.raises(OpenL3liteError, match=r"cut\.mkv: the file is cut short.*ended"):
        list(iter_video_frames(tmp_path / "cut.mkv", fps=4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the full files read without moviepy's warnings
        times = [t for t, _ in iter_video_frames(good[3], fps=4)]
        assert len(times) == 16 and len(read_video_audio(good[3])) == 4 * 48000
        assert len(list(iter_video_frames(mkv, fps=4))) == 16

    # picture for 1 s, sound for 4 s: the last frame stands in for the rest, with a warning
    short_picture = tmp_path / "short_picture.mp4"
    subprocess.run([FFMPEG_BINARY, "-v", "error", "-i", good[3], "-i", good[0], "-map", "1:v",
                    "-map", "0:a", "-c", "copy", "-t", "4", str(short_picture)], check=True)
    with pytest.warns(OpenL3liteWarning, match=r"short_picture\.mp4: the picture ends at"):
        frames = list(iter_video_frames(short_picture, fps=4))
    assert len(frames) == 16 and np.array_equal(frames[-1][1], frames[-4][1])

    audio_only = tmp_path / "tone.mp4"
    tone = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    clip = AudioArrayClip(np.stack([tone, tone], 1), fps=16000)
    clip.write_audiofile(str(audio_only), codec="aac", logger=None)
    with pytest.raises(OpenL3liteError, match=r"tone\.mp4: has no video track \(an audio file\)"):
        read_video_audio(audio_only)


def test_a_video_read_whole_is_checked_for_cutting_once(videos, tmp_path, monkeypatch):
    """prepare and the video embedding read a file's sound and its frames; the demux-only
    cut-short check runs once per file, not once per reader."""
    from openl3lite import api, video
    from openl3lite.models import load_audio_embedding_model, load_image_embedding_model
    from openl3lite.training.prepare import decode_video

    checked = []
    real_check = video.check_not_cut_short
    monkeypatch.setattr(video, "check_not_cut_short",
                        lambda path: (checked.append(os.fspath(path)), real_check(path))[1])
    good = videos[0][1]
    os.makedirs(tmp_path / "shards")
    decode_video(good, str(tmp_path), 4.0, 256)
    assert checked == [good]
    checked.clear()
    audio_model, image_model = load_audio_embedding_model(), load_image_embedding_model()
    result = api.embed_video_file(good, audio_model, image_model)
    assert checked == [good] and len(result["image_embedding"]) > 0
    with pytest.raises(OpenL3liteError, match="cut short"):  # the one check still refuses
        api.embed_video_file(videos[3], audio_model, image_model)


def test_speed_jitter_changes_tempo_and_pitch_reproducibly(dataset):
    """Each training clip of a tone video is played at its own speed in [0.9, 1.1]: the tone's
    pitch moves by the same factor. Unaugmented samplers and speed_jitter=0 leave clips as
    they are."""
    jittered = PairSampler(dataset, batch_size=16, seed=5, speed_jitter=0.1)
    inputs, _, infos = jittered.sample_batch(0, return_info=True)
    speeds = np.array([info.speed for info in infos])
    assert np.all((speeds >= 0.9) & (speeds <= 1.1)) and np.ptp(speeds) > 0.02
    for clip, info in zip(inputs["audio"], infos):
        seed = int(os.path.basename(jittered.records[info.clip_video].source)[1])  # v<seed>.mp4
        spectrum = np.abs(np.fft.rfft(clip))  # 1 Hz bins: the clips are 48000 samples
        assert abs(np.argmax(spectrum) - (200 + 100 * seed) * info.speed) <= 2, info
    again = jittered.sample_batch(0)[0]["audio"]
    assert np.array_equal(again, inputs["audio"])
    plain = PairSampler(dataset, batch_size=16, seed=5, augment=False, speed_jitter=0.1)
    assert {info.speed for info in plain.sample_batch(0, return_info=True)[2]} == {1.0}
    with pytest.raises(OpenL3liteError, match="speed_jitter 0.5"):
        PairSampler(dataset, speed_jitter=0.5)


def test_sampler_statistics(dataset):
    sampler = PairSampler(dataset, batch_size=16, seed=3)
    positives = negatives = 0
    for k in range(25):
        inputs, labels, infos = sampler.sample_batch(k, return_info=True)
        assert inputs["audio"].shape == (16, 48000) and inputs["audio"].dtype == np.float32
        assert inputs["image"].shape == (16, 224, 224, 3)
        assert inputs["image"].min() >= -1 and inputs["image"].max() <= 1
        assert labels.sum() == 8  # exactly balanced
        for info, label in zip(infos, labels):
            assert info.label == label
            if label:
                positives += 1
                assert info.clip_video == info.frame_video
                assert info.clip_start <= info.frame_time <= info.clip_start + 1.0
            else:
                negatives += 1
                assert info.clip_video != info.frame_video
    assert positives == negatives == 200
    again, labels_again = sampler.sample_batch(7)
    first, labels_first, _ = sampler.sample_batch(7, return_info=True)
    np.testing.assert_array_equal(again["audio"], first["audio"])
    assert not np.array_equal(sampler.sample_batch(8)[0]["audio"], first["audio"])


def test_in_batch_sampler_gives_positives_and_a_label_grid(dataset):
    sampler = PairSampler(dataset, batch_size=6, seed=1, negatives="in-batch")
    n_videos = len(load_manifest(dataset)["videos"])
    for k in range(10):
        inputs, labels, infos = sampler.sample_batch(k, return_info=True)
        assert inputs["audio"].shape == (6, 48000) and inputs["image"].shape == (6, 224, 224, 3)
        videos = [info.frame_video for info in infos]
        for info in infos:  # every sampled pair is a positive by the paper's overlap rule
            assert info.label == 1 and info.clip_video == info.frame_video
            assert info.clip_start <= info.frame_time <= info.clip_start + 1.0
        # each video once per round of n_videos picks: as spread as the dataset allows
        assert len(set(videos[:n_videos])) == n_videos
        for i in range(6):
            for j in range(6):
                expected = 1 if i == j else (IGNORED if videos[i] == videos[j] else 0)
                assert labels[i, j] == expected
    distinct = PairSampler(dataset, batch_size=2, seed=1, negatives="in-batch")
    _, labels, infos = distinct.sample_batch(0, return_info=True)
    assert infos[0].frame_video != infos[1].frame_video and (labels == [[1, 0], [0, 1]]).all()
    with pytest.raises(OpenL3liteError, match="negatives"):
        PairSampler(dataset, negatives="hard")


def test_grid_targets_weigh_positives_and_negatives_equally():
    labels = pair_grid_labels([0, 1, 0, 2])  # videos 0 and 0 share a row: ignored there
    assert labels[0, 2] == labels[2, 0] == IGNORED and labels[0, 1] == 0
    targets, weights = grid_targets(labels)
    np.testing.assert_array_equal(targets, np.eye(4, dtype=np.int32))
    assert weights[0, 2] == weights[2, 0] == 0
    assert np.isclose(weights[targets == 1].sum(), 8) and np.isclose(weights.sum(), 16)
    assert np.isclose(weights[labels == 0].sum(), 8) and weights.dtype == np.float32
    with pytest.raises(OpenL3liteError, match="positives and negatives"):
        grid_targets(pair_grid_labels([3, 3]))


def test_split_by_video(dataset):
    manifest = load_manifest(dataset)
    train, val = split_videos(manifest, 0.3, seed=0)
    assert set(train).isdisjoint(val) and sorted(train + val) == sorted(manifest["videos"])


def test_split_sizes_and_stability():
    """The validation share is the asked fraction of videos (at least two once there are four),
    the same for the same seed whatever the manifest's order, and another for another seed."""
    ids = [f"video{i:02d}" for i in range(20)]
    manifest = {"videos": {i: {} for i in ids}}
    shuffled = {"videos": {i: {} for i in reversed(ids)}}
    train, val = split_videos(manifest, 0.25, seed=3)
    assert len(val) == 5 and len(train) == 15 and sorted(train + val) == ids
    assert split_videos(shuffled, 0.25, seed=3) == (train, val)
    assert split_videos(manifest, 0.25, seed=4)[1] != val
    assert len(split_videos(manifest, 0.01, seed=0)[1]) == 2
    assert split_videos(manifest, 0.0, seed=0) == (ids, [])
    assert len(split_videos({"videos": {i: {} for i in ids[:3]}}, 0.1)[1]) == 0
