"""Embed the bundled example files with the shipped demonstration model, through the Python API.

    python examples/embed_examples.py

Prints the shape of each embedding and the cosine similarity between the spoken digits.
"""

from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

import openl3lite

DATA = Path(__file__).resolve().parent / "data"
#: Shipped with openl3lite, so this runs offline; without ``model``, the functions use OpenL3's
#: published weights (``openl3-mel256-music``), downloaded on first use.
MODEL = "avdigits-mel128-w0125"


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main():
    clips = {}
    for path in sorted(DATA.glob("*.wav")):
        audio, sr = sf.read(path)
        embedding, timestamps = openl3lite.get_audio_embedding(audio, sr, model=MODEL, hop_size=0.25,
                                                               embedding_size=512, verbose=False)
        clips[path.name] = embedding.mean(axis=0)
        print(f"{path.name}: {embedding.shape[0]} windows x {embedding.shape[1]} dims, "
              f"timestamps {timestamps[0]:.2f}..{timestamps[-1]:.2f} s")
    names = list(clips)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            print(f"cosine({a}, {b}) = {cosine(clips[a], clips[b]):.3f}")
    image = openl3lite.get_image_embedding(np.asarray(Image.open(DATA / "avdigits_frame.png")),
                                           model=MODEL, verbose=False)
    print(f"avdigits_frame.png: image embedding {image.shape}")
    audio_out, image_out = openl3lite.process_video_file(
        DATA / "avdigits_theo_001.mp4", output_dir="/tmp/l3-out", audio_model=MODEL,
        image_model=MODEL, overwrite=True, verbose=False)
    print(f"video: {np.load(audio_out)['embedding'].shape} audio and "
          f"{np.load(image_out)['embedding'].shape} image embeddings in /tmp/l3-out")


if __name__ == "__main__":
    main()
