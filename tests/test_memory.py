"""Files are streamed: embedding a file 30 times longer takes no more memory than its
embeddings need (the README's "memory does not grow with the file's length").

Peak memory is the peak resident set of a fresh process (``VmHWM`` of ``/proc/self/status``,
which sees every allocation: numpy, TensorFlow, decoders; not ``ru_maxrss``, which a child
inherits from the process that forked it, here pytest's, often larger), measured after a 2.5-minute file and again after a
10-minute one (48 kHz stereo; the extra 7.5 minutes are 170 MB as float32 samples: reading the
file whole, or holding all of its windows, would add at least that much). A 20 s file embedded
first takes the one-off growth of the first full batches (about 110 MB here) out of the figures.
"""

import json
import subprocess
import sys

import numpy as np
import soundfile as sf

SCRIPT = r"""
import json, sys, warnings
import openl3lite
from openl3lite.models import as_audio_model
model = as_audio_model("avdigits-mel128-w0125", embedding_size=512)
peaks = []
for path in sys.argv[1:]:
    emb, ts = openl3lite.embed_audio_file(path, model, hop_size=1.0)
    with open("/proc/self/status") as f:
        peak = next(int(x.split()[1]) for x in f if x.startswith("VmHWM")) / 1024
    peaks.append([peak, emb.nbytes / 2**20, len(ts)])
print("PEAKS" + json.dumps(peaks))
"""


def _write_noise(path, seconds, sr=48000, channels=2, seed=0):
    rng = np.random.default_rng(seed)
    with sf.SoundFile(path, "w", sr, channels, subtype="PCM_16") as f:
        for start in range(0, seconds, 60):
            n = min(60, seconds - start) * sr
            f.write(rng.uniform(-0.3, 0.3, (n, channels)).astype(np.float32))


def test_peak_memory_does_not_grow_with_the_files_length(tmp_path):
    files = [tmp_path / "warm-up.wav", tmp_path / "medium.wav", tmp_path / "long.wav"]
    for path, seconds in zip(files, (20, 150, 600)):
        _write_noise(path, seconds, seed=seconds)
    done = subprocess.run([sys.executable, "-c", SCRIPT, *map(str, files)],
                          check=False, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("PEAKS"))
    _, (medium_peak, _, medium_windows), (long_peak, long_embedding_mb, long_windows) = (
        json.loads(line[len("PEAKS"):]))
    assert medium_windows == 151 and long_windows == 601  # centred windows, 1 s apart
    growth = long_peak - medium_peak
    # the long file's embeddings (about 1 MB at 512 dimensions) and slack for allocator noise
    # (13 MB seen); the extra samples alone would be 170 MB
    assert growth < long_embedding_mb + 50, (medium_peak, long_peak, growth)
