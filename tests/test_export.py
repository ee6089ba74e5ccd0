"""Export for deployment (openl3lite.deploy, ``l3embed export-model``): each format written,
checked in its own runtime against the Keras model on real audio and images, refused when
broken, written atomically; the docs' plain-onnxruntime example runs without openl3lite."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO

pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")

import openl3lite
from openl3lite import deploy, registry
from openl3lite.errors import OpenL3liteError
from openl3lite.facts import EXPORT_SPEECH_TOLERANCE, EXPORT_TOLERANCE

SHIPPED = "avdigits-mel128-w0125"
SPEECH = REPO / "examples" / "data" / "yweweler_141421.wav"  # not the verification clip
FRAME = REPO / "examples" / "data" / "avdigits_frame.png"


@pytest.fixture(scope="module")
def shipped_audio():
    return openl3lite.load_audio_embedding_model_from_path(SHIPPED, None, 6144)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """The shipped model's audio network in every format and its image network as ONNX,
    exported once for the module."""
    folder = tmp_path_factory.mktemp("exports")
    written = {}
    for fmt in ("onnx", "tflite", "saved_model"):
        path = folder / f"audio.{fmt}"
        written[("audio", fmt)] = (path, deploy.export_model(SHIPPED, fmt, path))
    path = folder / "image.onnx"
    written[("image", "onnx")] = (path, deploy.export_model(SHIPPED, "onnx", path, part="image"))
    return written


def _speech_windows(path, hop_size=0.25):
    """A real recording cut into the windows exact mode cuts it into (48 kHz, float32)."""
    audio, sr = sf.read(path)
    windows = openl3lite.preprocess_audio(audio, sr, hop_size=hop_size)
    return windows[:, 0, :]


@pytest.mark.parametrize("fmt", ["onnx", "tflite", "saved_model"])
def test_audio_export_reproduces_keras_on_held_out_speech(fmt, exports, shipped_audio):
    path, metadata = exports[("audio", fmt)]
    assert os.path.exists(path) and os.path.exists(f"{path}.json")
    assert deploy.read_sidecar(path) == json.loads(json.dumps(metadata))
    # verified when written, on the verification clip and on noise
    for label, check in metadata["verification"].items():
        assert check["ok"] and check["max_rel_diff"] <= check["tolerance"], label
    assert metadata["verification"]["noise"]["tolerance"] == EXPORT_TOLERANCE
    # and on another speaker's recording, through exact mode's own framing
    windows = _speech_windows(SPEECH)
    got = deploy.runner(path, fmt)(windows)
    reference, _ = openl3lite.get_audio_embedding(*sf.read(SPEECH), model=shipped_audio,
                                                  hop_size=0.25, verbose=False)
    assert got.shape == reference.shape == (len(windows), 6144)
    scale = np.abs(reference).max()
    assert np.abs(got - reference).max() / scale <= EXPORT_SPEECH_TOLERANCE["mel128"]
    # a batch of a size never seen at export time (dynamic batch)
    np.testing.assert_allclose(deploy.runner(path, fmt)(windows[:3]), got[:3], rtol=0,
                               atol=1e-4 * scale)


def test_audio_sidecar_says_how_to_feed_the_network(exports, shipped_audio):
    _, metadata = exports[("audio", "onnx")]
    assert metadata["part"] == "audio" and metadata["format"] == "onnx"
    assert metadata["sample_rate"] == 48000 and metadata["window_samples"] == 48000
    assert metadata["input"]["shape"] == [None, 48000] and metadata["input"]["name"] == "waveform"
    assert metadata["input_repr"] == "mel128" and metadata["embedding_size"] == 6144
    assert metadata["source_sha256"] == registry.part_sha256(SHIPPED, "audio")
    assert metadata["weights_sha256"] == deploy.weights_sha256(shipped_audio)
    assert metadata["openl3lite_version"] == openl3lite.__version__
    assert metadata["file_sha256"] == deploy.file_sha256(exports[("audio", "onnx")][0])
    assert "24000 zeros" in metadata["framing"]


def test_image_export_reproduces_keras_on_a_real_frame(exports):
    from PIL import Image

    path, metadata = exports[("image", "onnx")]
    assert metadata["image_size"] == 224 and metadata["image_scaling"] == "symmetric"
    assert metadata["input"]["shape"] == [None, 224, 224, 3]
    model = openl3lite.load_image_embedding_model_from_path(SHIPPED, 8192)
    frame = np.asarray(Image.open(FRAME).convert("RGB"))
    batch = openl3lite.image.preprocess_images(frame[None, 20:, 10:], model.image_scaling)
    reference = openl3lite.get_image_embedding(frame[20:, 10:], model=model, verbose=False)
    got = deploy.runner(path, "onnx")(batch.astype(np.float32))
    assert np.abs(got - reference).max() / np.abs(reference).max() <= EXPORT_TOLERANCE


def test_openl3_architecture_image_exports_to_tflite(tmp_path, fixtures_dir):
    """The full-width OpenL3 image network (random weights in OpenL3's format)."""
    pytest.importorskip("ai_edge_litert")
    path = tmp_path / "openl3_image.tflite"
    metadata = deploy.export_model("openl3-mel256-music", "tflite", path, part="image",
                                   embedding_size=512)
    assert metadata["embedding_size"] == 512 and metadata["image_scaling"] == "openl3"
    assert all(v["ok"] for v in metadata["verification"].values())


def _tamper_onnx(source, target):
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(source)
    largest = max(graph.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    values = numpy_helper.to_array(largest).copy()
    values.flat[: values.size // 10] *= 1.5
    largest.CopyFrom(numpy_helper.from_array(values, largest.name))
    onnx.save(graph, target)


def test_tampered_or_broken_export_is_refused(exports, shipped_audio, tmp_path):
    path, _ = exports[("audio", "onnx")]
    report = deploy.verify_export(path, shipped_audio)
    assert all(v["ok"] for v in report.values())
    tampered = tmp_path / "tampered.onnx"
    _tamper_onnx(path, tampered)
    with pytest.raises(OpenL3liteError, match="does not reproduce the Keras model"):
        deploy.verify_export(tampered, shipped_audio)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(path.read_bytes()[:100000])
    with pytest.raises(OpenL3liteError, match="cannot load it"):
        deploy.verify_export(truncated, shipped_audio)


def test_failed_verification_leaves_nothing(shipped_audio, tmp_path, monkeypatch):
    monkeypatch.setattr(deploy, "EXPORT_SPEECH_TOLERANCE", {"mel128": 0.0})
    path = tmp_path / "strict.tflite"
    with pytest.raises(OpenL3liteError, match="does not reproduce the Keras model"):
        deploy.export_model(shipped_audio, "tflite", path)
    assert os.listdir(tmp_path) == []


def test_existing_output_is_kept_unless_overwrite(exports, tmp_path):
    path = tmp_path / "image.onnx"
    path.write_bytes(b"mine")
    with pytest.raises(OpenL3liteError, match="exists"):
        deploy.export_model(SHIPPED, "onnx", path, part="image")
    assert path.read_bytes() == b"mine"
    deploy.export_model(SHIPPED, "onnx", path, part="image", overwrite=True)
    assert deploy.read_sidecar(path)["file_sha256"] == deploy.file_sha256(path)


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(OpenL3liteError, match="invalid format 'pb'"):
        deploy.export_model(SHIPPED, "pb", tmp_path / "x.pb")
    with pytest.raises(OpenL3liteError, match="invalid part"):
        deploy.export_model(SHIPPED, "onnx", tmp_path / "x.onnx", part="video")
    with pytest.raises(OpenL3liteError, match="not found"):
        deploy.export_model(tmp_path / "missing.h5", "onnx", tmp_path / "x.onnx")


def _l3embed(*args):
    return subprocess.run([sys.executable, "-m", "openl3lite", *args], capture_output=True,
                          text=True, timeout=600, check=False)


def test_cli_export_model(tmp_path):
    out = tmp_path / "image.onnx"
    done = _l3embed("export-model", SHIPPED, "--format", "onnx", "--part", "image", "-o",
                    str(out))
    assert done.returncode == 0, done.stderr
    assert out.exists() and json.loads((tmp_path / "image.onnx.json").read_text())["part"] == "image"
    assert "largest difference from Keras" in done.stdout
    again = _l3embed("export-model", SHIPPED, "--format", "onnx", "--part", "image", "-o",
                     str(out))
    assert again.returncode == 2 and "exists" in again.stderr
    bad = _l3embed("export-model", SHIPPED, "--format", "caffe", "-o", str(tmp_path / "x"))
    assert bad.returncode == 2 and "Invalid value for '--format'" in bad.stderr
    size = _l3embed("export-model", SHIPPED, "-f", "onnx", "--embedding-size", "8192", "-o",
                    str(tmp_path / "y.onnx"))
    assert size.returncode == 2 and "not an embedding size of the audio network" in size.stderr


def _docs_snippet():
    text = (REPO / "docs" / "export.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    plain = [b for b in blocks if "onnxruntime" in b and "openl3lite" not in b]
    assert plain, "docs/export.md has no plain-onnxruntime example"
    return plain[0]


def test_docs_example_runs_without_openl3lite(exports, shipped_audio, tmp_path):
    """The docs' example, run where ``import openl3lite`` fails, on real speech at 48 kHz (three
    recordings, resampled by openl3lite, one after the other): exact mode's timestamps and,
    within the speech tolerance, its embeddings. (At other rates the example's resampy differs
    from openl3lite's kaiser_best, which reproduces resampy 0.2.2, by round-off.)"""
    from openl3lite.audio import resample

    path, _ = exports[("audio", "onnx")]
    speech = np.concatenate([resample(sf.read(REPO / "examples" / "data" / name)[0], 8000)
                             for name in ("theo_314159.wav", "yweweler_141421.wav", "theo_271828.wav")])
    sf.write(tmp_path / "speech.wav", speech, 48000, subtype="FLOAT")
    os.symlink(path, tmp_path / "audio.onnx")
    code = ("import sys\nsys.modules['openl3lite'] = None  # import openl3lite fails\n"
            + _docs_snippet()
            + "\nimport numpy\nnumpy.save('embedding.npy', embedding)\n"
              "numpy.save('timestamps.npy', timestamps)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    embedding = np.load(tmp_path / "embedding.npy")
    reference, timestamps = openl3lite.get_audio_embedding(
        *sf.read(tmp_path / "speech.wav"), model=shipped_audio, verbose=False)
    np.testing.assert_array_equal(np.load(tmp_path / "timestamps.npy"), timestamps)
    assert embedding.shape == reference.shape and len(reference) > 3
    assert np.abs(embedding - reference).max() / np.abs(reference).max() \
        <= EXPORT_SPEECH_TOLERANCE["mel128"]


@pytest.mark.parametrize("n_mels", [128, 256])
def test_stored_mel_filterbanks_are_librosas(n_mels):
    from openl3lite import frontend

    np.testing.assert_array_equal(frontend.mel_filterbank(n_mels),
                                  frontend.librosa_mel_filterbank(n_mels))
