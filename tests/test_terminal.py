"""What reaches the terminal, in real runs captured from a child process's standard error:
warnings print above progress bars, not through them; TensorFlow's start-up lines and
libmpg123's notes stay off it; the host's standard error still works afterwards."""

import os
import subprocess
import sys

import pytest

from openl3lite import quiet

MODEL = "avdigits-mel128-w0125"


def _ffmpeg():
    from moviepy.config import FFMPEG_BINARY

    return FFMPEG_BINARY


def _python(code, *args):
    """Run ``code`` in a fresh interpreter without the user's TF_CPP_MIN_LOG_LEVEL."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=env, check=False)


@pytest.fixture(scope="module")
def noisy_mp3(tmp_path_factory):
    """A 3-second MP3 with an ID3v2 tag followed by junk that looks like frame headers, as
    tag editors and broken downloads leave: libsndfile's probe makes libmpg123 print a line for
    each false header."""
    folder = tmp_path_factory.mktemp("mp3")
    clean = folder / "clean.mp3"
    subprocess.run([_ffmpeg(), "-v", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=3", "-ar", "44100", "-metadata", "title=x",
                    "-id3v2_version", "3", str(clean)], check=True)
    data = clean.read_bytes()
    assert data[:3] == b"ID3"
    tag_end = 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9])
    noisy = folder / "tagged.mp3"
    noisy.write_bytes(data[:tag_end] + b"\x00\x00\xff\xfb\x00\x00" * 50 + data[tag_end:])
    probe = _python("import soundfile, sys; soundfile.info(sys.argv[1])", noisy)
    assert "libmpg123" in probe.stderr  # the noise this test is about is really there
    return noisy


def test_filtered_native_stderr_drops_only_the_noise_and_restores_fd_2(capfd):
    with quiet.filtered_native_stderr(quiet.MPG123_NOISE):
        os.write(2, b"Note: Illegal Audio-MPEG-Header 0x00000000 at offset 12363.\n")
        os.write(2, b"a line of the host\n")
        os.write(2, b"[src/libmpg123/parse.c:decode_header():907] error: Frame smaller\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "a line of the host\nafter\n"
    with pytest.raises(ValueError), quiet.filtered_native_stderr(quiet.MPG123_NOISE):
        raise ValueError
    os.write(2, b"still open\n")
    assert capfd.readouterr().err == "still open\n"


def test_library_keeps_native_noise_off_stderr_and_leaves_it_open(noisy_mp3, tmp_path):
    code = ("import os, sys, numpy as np, openl3lite\n"
            "openl3lite.get_audio_embedding(np.sin(np.arange(16000) / 3), 16000,"
            f" model='{MODEL}', verbose=False)\n"
            f"openl3lite.process_audio_file(sys.argv[1], model='{MODEL}',"
            " output_dir=sys.argv[2], verbose=False)\n"
            "os.write(2, b'the host writes to fd 2\\n')\n"
            "print('and to sys.stderr', file=sys.stderr)\n")
    done = _python(code, noisy_mp3, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["the host writes to fd 2", "and to sys.stderr"]
    assert (tmp_path / "tagged.npz").exists()


def test_cli_keeps_mp3_notes_off_stderr(noisy_mp3, tmp_path):
    done = subprocess.run([sys.executable, "-m", "openl3lite", "audio", str(noisy_mp3),
                           "--model", MODEL, "-o", str(tmp_path), "-q"], capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_a_warning_prints_above_the_progress_bar(tmp_path):
    """A video whose picture ends 2 s before its sound: the warning comes while the frames bar
    is on screen. It must be a line of its own, not text after the bar's carriage return."""
    video = tmp_path / "short_picture.mp4"
    subprocess.run([_ffmpeg(), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=duration=4:size=160x120:rate=10", "-f", "lavfi", "-i",
                    "sine=frequency=300:duration=6:sample_rate=16000", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", str(video)], check=True)
    code = ("import sys, openl3lite\n"
            "openl3lite.process_video_file(sys.argv[1], output_dir=sys.argv[2],"
            f" audio_model='{MODEL}', image_model='{MODEL}', audio_hop_size=0.5,"
            " image_batch_size=2, verbose=True)\n")
    done = _python(code, video, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.split("\n") if "the picture ends at" in line]
    assert len(lines) == 1, done.stderr
    shown = lines[0].split("\r")[-1]  # what is left on the terminal's line
    # Python's "<file>.py:<line>: OpenL3liteWarning: ..." from the start of the line
    assert shown.split(":")[0].endswith(".py") and "OpenL3liteWarning" in shown, shown
    assert "win/s" in done.stderr  # the bars were drawn
