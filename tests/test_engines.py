"""Exact mode on ONNX Runtime and OpenVINO (openl3lite.engines): the same embeddings as Keras on
real audio and images, OpenL3's fixtures through an engine, the converted network cached by the
weights' sha256 and reused, a tampered cache file rebuilt, and the CLI's --engine."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO

pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")

import openl3lite
from openl3lite import engines
from openl3lite.errors import OpenL3liteError
from openl3lite.facts import BF16_TOLERANCE, EXPORT_SPEECH_TOLERANCE, EXPORT_TOLERANCE

SHIPPED = "avdigits-mel128-w0125"
DATA = REPO / "examples" / "data"
SPEECH = [DATA / "theo_314159.wav", DATA / "yweweler_141421.wav"]


@pytest.fixture(scope="module")
def home():
    """The suite's private OPENL3LITE_HOME (tests/conftest.py): the engines' cache is its
    ``engines`` folder, shared with child processes."""
    from pathlib import Path

    return Path(os.environ["OPENL3LITE_HOME"])


@pytest.fixture(scope="module")
def shipped_audio():
    return openl3lite.load_audio_embedding_model_from_path(SHIPPED, None, 6144)


def _relative(got, reference):
    return np.abs(np.asarray(got) - reference).max() / np.abs(reference).max()


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_audio_engine_equals_keras_on_real_speech(engine, home, shipped_audio):
    if engine == "openvino":
        pytest.importorskip("openvino")
    signals = [sf.read(p)[0] for p in SPEECH]
    reference, ts_ref = openl3lite.get_audio_embedding(signals, 8000, model=shipped_audio,
                                                       hop_size=0.1, verbose=False)
    got, ts = openl3lite.get_audio_embedding(signals, 8000, model=shipped_audio, hop_size=0.1,
                                             verbose=False, engine=engine)
    for g, r, t, tr in zip(got, reference, ts, ts_ref):
        assert g.shape == r.shape and g.dtype == np.float32
        np.testing.assert_array_equal(t, tr)
        assert _relative(g, r) <= EXPORT_SPEECH_TOLERANCE["mel128"]
    # broadband sound filling every window (no centring zeros, no end padding: frames that
    # overlap an edge of silence by a few samples sit near the float32 floor): every bin above
    # the floor, so the tight tolerance holds
    noise = np.random.default_rng(1).standard_normal(3 * 48000) * 0.1
    options = {"model": shipped_audio, "hop_size": 0.5, "center": False, "verbose": False}
    ref_noise, _ = openl3lite.get_audio_embedding(noise, 48000, **options)
    got_noise, _ = openl3lite.get_audio_embedding(noise, 48000, engine=engine, **options)
    assert len(got_noise) == 5
    assert _relative(got_noise, ref_noise) <= EXPORT_TOLERANCE


def test_image_engine_equals_keras_on_a_real_frame(home):
    from PIL import Image

    frame = np.asarray(Image.open(DATA / "avdigits_frame.png").convert("RGB"))
    model = openl3lite.load_image_embedding_model_from_path(SHIPPED, 8192)
    reference = openl3lite.get_image_embedding([frame, frame[::-1]], model=model, verbose=False)
    got = openl3lite.get_image_embedding([frame, frame[::-1]], model=model, verbose=False,
                                         engine="onnxruntime")
    for g, r in zip(got, reference):
        assert _relative(g, r) <= EXPORT_TOLERANCE


def test_openl3_fixtures_through_the_engine(home, fixtures_dir, manifest, openl3_audio_model):
    """OpenL3 0.4.2's own outputs (random weights in its format), as
    tests/test_openl3_fixtures.py compares Keras with them, through ONNX Runtime."""
    from test_openl3_fixtures import AUDIO_TOLERANCE

    cases = [c for c in manifest["cases"] if c["file"].startswith("audio")
             and c["input_repr"] == "mel256" and c["frontend"] == "kapre"
             and c["embedding_size"] == 6144 and not isinstance(c["input"], list)][:2]
    assert cases
    for case in cases:
        model = openl3_audio_model(case["input_repr"], case["embedding_size"], case["frontend"])
        audio, sr = sf.read(fixtures_dir / case["input"])
        emb, ts = openl3lite.get_audio_embedding(
            audio, sr, model=model, center=case["center"], hop_size=case["hop_size"],
            batch_size=case["batch_size"], verbose=False, engine="onnxruntime")
        reference = np.load(fixtures_dir / case["file"])
        np.testing.assert_array_equal(ts, reference[f"{case['key']}__timestamps"])
        np.testing.assert_allclose(emb, reference[f"{case['key']}__embedding"], rtol=0,
                                   atol=AUDIO_TOLERANCE[("mel256", "kapre")])


def test_converted_network_is_cached_and_reused(home, shipped_audio):
    first = engines.converted_model(shipped_audio)
    assert first.parent == home / "engines"
    assert engines.cache_name(shipped_audio) == first.name
    stamp = first.stat().st_mtime_ns
    again = engines.converted_model(shipped_audio)
    assert again == first and first.stat().st_mtime_ns == stamp  # not converted again
    # a model with other weights gets its own file
    other = openl3lite.models.random_audio_model("mel128", 6144, width=0.125, seed=3)
    assert engines.cache_name(other) != first.name
    # a cached file whose bytes changed is not used: it is converted again
    data = bytearray(first.read_bytes())
    data[-1000] ^= 0xFF
    first.write_bytes(bytes(data))
    rebuilt = engines.converted_model(shipped_audio)
    assert rebuilt == first and engines._cached_file_is_sound(rebuilt)
    assert rebuilt.read_bytes() != bytes(data)


def test_bad_engine_is_a_clear_error(shipped_audio):
    with pytest.raises(OpenL3liteError, match="invalid engine 'tensorrt'"):
        openl3lite.get_audio_embedding(np.zeros(48000), 48000, model=shipped_audio,
                                       verbose=False, engine="tensorrt")
    with pytest.raises(OpenL3liteError, match="invalid engine"):
        openl3lite.get_image_embedding(np.zeros((224, 224, 3), np.uint8), model=SHIPPED,
                                       verbose=False, engine=None)


def test_engine_refuses_a_bare_keras_model():
    import keras

    inputs = keras.Input((1, 48000))
    bare = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(inputs)))
    with pytest.raises(OpenL3liteError, match="runs openl3lite embedding models"):
        openl3lite.get_audio_embedding(np.ones(48000), 48000, model=bare, verbose=False,
                                       engine="onnxruntime")


def test_cli_engine_option(home, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, OPENL3LITE_HOME=str(home))
    done = subprocess.run([sys.executable, "-m", "openl3lite", "audio", str(SPEECH[0]),
                           "--model", SHIPPED, "--engine", "onnxruntime", "-o", str(out), "-q"],
                          capture_output=True, text=True, timeout=600, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert str(np.load(out / "theo_314159.npz")["engine"]) == "onnxruntime"  # provenance
    written = np.load(out / "theo_314159.npz")["embedding"]
    reference, _ = openl3lite.get_audio_embedding(sf.read(SPEECH[0])[0], 8000, model=SHIPPED,
                                                  verbose=False)
    assert _relative(written, reference) <= EXPORT_SPEECH_TOLERANCE["mel128"]
    bad = subprocess.run([sys.executable, "-m", "openl3lite", "image", str(tmp_path),
                          "--engine", "tensorrt"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert bad.returncode == 2 and "Invalid value for '--engine'" in bad.stderr


def _lowest_cosine(got, reference):
    got, reference = np.asarray(got, np.float64), np.asarray(reference, np.float64)
    return float(np.min(np.sum(got * reference, axis=1) /
                        (np.linalg.norm(got, axis=1) * np.linalg.norm(reference, axis=1))))


def test_bf16_engine_is_close_to_keras_and_checked_once(home, shipped_audio):
    """``openvino-bf16``: OpenVINO in bfloat16 (float32 where the CPU has no bfloat16 units);
    within its stated tolerance of Keras on real speech and a real frame, checked against
    Keras the first time a process uses it for a network."""
    pytest.importorskip("openvino")
    from PIL import Image

    signals = [sf.read(p)[0] for p in SPEECH]
    reference, _ = openl3lite.get_audio_embedding(signals, 8000, model=shipped_audio,
                                                  hop_size=0.25, verbose=False)
    got, _ = openl3lite.get_audio_embedding(signals, 8000, model=shipped_audio, hop_size=0.25,
                                            verbose=False, engine="openvino-bf16")
    for g, r in zip(got, reference):
        assert _relative(g, r) <= EXPORT_SPEECH_TOLERANCE["mel128"] + BF16_TOLERANCE
        assert _lowest_cosine(g, r) > 0.999
    assert any(key[1] == "openvino-bf16" for key in engines._VERIFIED)
    frame = np.asarray(Image.open(DATA / "avdigits_frame.png").convert("RGB"))
    image_model = openl3lite.load_image_embedding_model_from_path(SHIPPED, 8192)
    expected = openl3lite.get_image_embedding([frame], model=image_model, verbose=False)[0]
    close = openl3lite.get_image_embedding([frame], model=image_model, verbose=False,
                                           engine="openvino-bf16")[0]
    assert _relative(close, expected) <= EXPORT_TOLERANCE + BF16_TOLERANCE
    assert _lowest_cosine(close, expected) > 0.999


def test_bf16_engine_beyond_its_tolerance_is_refused(home, shipped_audio, monkeypatch):
    pytest.importorskip("openvino")
    monkeypatch.setattr(engines, "_VERIFIED", set())
    monkeypatch.setattr(engines, "BF16_TOLERANCE", -1.0)  # nothing can be within it
    with pytest.raises(OpenL3liteError, match="openvino-bf16.*does not reproduce the Keras"):
        openl3lite.get_audio_embedding(np.random.default_rng(0).standard_normal(48000) * 0.1,
                                       48000, model=shipped_audio, verbose=False,
                                       engine="openvino-bf16")
    assert not engines._VERIFIED


_WITHOUT_KERAS = r"""
import json, sys
import numpy as np
import soundfile as sf
import openl3lite
audio = sf.read(sys.argv[1])[0]
emb, ts = openl3lite.get_audio_embedding(audio, 8000, model=sys.argv[2], hop_size=0.25,
                                         verbose=False, engine="onnxruntime")
frame = np.asarray(__import__("PIL.Image").Image.open(sys.argv[3]).convert("RGB"))
img = openl3lite.get_image_embedding(frame, model=sys.argv[2], verbose=False,
                                     engine="onnxruntime")
out = openl3lite.process_audio_file(sys.argv[1], model=sys.argv[2], output_dir=sys.argv[4],
                                    verbose=False, engine="onnxruntime")
np.savez(sys.argv[4] + "/arrays.npz", emb=emb, ts=ts, img=img)
print("MODULES " + json.dumps({name: name in sys.modules for name in ("tensorflow", "keras")}))
"""


def test_a_cached_engine_network_runs_without_keras(home, tmp_path):
    """Once a weights file's network is converted, a process that asks for it by name (or
    file) on an engine finds it in the cache by the file's sha256 and never imports Keras or
    TensorFlow; it computes what the engine computed in the process that converted it."""
    frame_path = DATA / "avdigits_frame.png"
    audio = sf.read(SPEECH[0])[0]
    expected, expected_ts = openl3lite.get_audio_embedding(audio, 8000, model=SHIPPED,
                                                           hop_size=0.25, verbose=False,
                                                           engine="onnxruntime")
    from PIL import Image

    frame = np.asarray(Image.open(frame_path).convert("RGB"))
    expected_image = openl3lite.get_image_embedding(frame, model=SHIPPED, verbose=False,
                                                    engine="onnxruntime")
    env = dict(os.environ, OPENL3LITE_HOME=str(home), PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", _WITHOUT_KERAS, str(SPEECH[0]), SHIPPED,
                           str(frame_path), str(tmp_path)], capture_output=True, text=True,
                          timeout=600, env=env, check=False)
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stdout.split("MODULES ", 1)[1])
    assert modules == {"tensorflow": False, "keras": False}
    got = np.load(tmp_path / "arrays.npz")
    np.testing.assert_allclose(got["emb"], expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got["ts"], expected_ts)
    np.testing.assert_allclose(got["img"], expected_image, rtol=0, atol=1e-6)
    written = np.load(tmp_path / "theo_314159.npz")
    assert str(written["engine"]) == "onnxruntime" and str(written["model"]) == SHIPPED
    assert str(written["weights_sha256"]) == openl3lite.registry.part_sha256(SHIPPED, "audio")


def test_the_keras_free_path_serves_only_what_it_can(home, tmp_path):
    """Anything the cache cannot answer exactly falls back to the Keras model (None here)."""
    engines.converted_model(openl3lite.load_audio_embedding_model_from_path(SHIPPED, None, 512))
    found = engines.cached_engine_model(SHIPPED, "audio", None, 512, "kapre", "music",
                                        "onnxruntime")
    assert isinstance(found, engines.EngineModel) and found.input_repr == "mel128"
    assert found.metadata.name == SHIPPED and found.frontend == "kapre"
    for model, input_repr, size, frontend, engine in [
            (SHIPPED, "mel256", 512, "kapre", "onnxruntime"),  # not its representation
            (SHIPPED, None, 512, "librosa", "onnxruntime"),    # librosa frontend
            (SHIPPED, None, 512, "kapre", "keras"),            # Keras itself
            (SHIPPED, None, 512, "kapre", "openvino-bf16"),    # checked against Keras
            (tmp_path / "missing.h5", None, 512, "kapre", "onnxruntime")]:
        assert engines.cached_engine_model(model, "audio", input_repr, size, frontend, "music",
                                           engine) is None
    # fast mode runs its trunk in Keras: never the converted network
    assert engines.cached_engine_model(SHIPPED, "audio", None, 512, "kapre", "music",
                                       "onnxruntime", "fast") is None


def test_fast_mode_with_an_engine_still_runs_its_trunk_in_keras(home):
    """A cached engine network must not stand in for the model in fast mode, whose trunk runs
    in Keras whatever the engine (the engine's cache is warm from the tests above or now)."""
    engines.converted_model(openl3lite.load_audio_embedding_model_from_path(SHIPPED, None, 512))
    signal = np.concatenate([sf.read(p)[0] for p in SPEECH] * 4)  # about 8 s at 8 kHz
    options = {"model": SHIPPED, "embedding_size": 512, "hop_size": 0.1, "mode": "fast",
               "verbose": False}
    on_engine, _ = openl3lite.get_audio_embedding(signal, 8000, engine="onnxruntime", **options)
    in_keras, _ = openl3lite.get_audio_embedding(signal, 8000, **options)
    np.testing.assert_array_equal(on_engine, in_keras)


_CLI_WITHOUT_KERAS = r"""
import json, sys
from openl3lite.cli import main
main(sys.argv[1:])
print("MODULES " + json.dumps({name: name in sys.modules for name in ("tensorflow", "keras")}))
"""


@pytest.mark.parametrize("command", ["audio", "image", "video"])
def test_the_cli_runs_a_cached_engine_network_without_keras(home, tmp_path, command):
    """``l3embed audio|image|video --engine onnxruntime`` finds the network an earlier run
    converted and never imports Keras or TensorFlow; it writes what the API's engine path
    computes, with the engine and the model's provenance."""
    inputs = {"audio": SPEECH[0], "image": DATA / "avdigits_frame.png",
              "video": DATA / "avdigits_theo_001.mp4"}[command]
    # both conversions in the cache (made here, or found there from the tests above)
    engines.converted_model(openl3lite.load_audio_embedding_model_from_path(SHIPPED, None, 6144))
    engines.converted_model(openl3lite.load_image_embedding_model_from_path(SHIPPED, 8192))
    env = dict(os.environ, OPENL3LITE_HOME=str(home), PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", _CLI_WITHOUT_KERAS, command, str(inputs),
                           "--model", SHIPPED, "--engine", "onnxruntime", "-o", str(tmp_path),
                           "--quiet"], capture_output=True, text=True, timeout=600, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.split("MODULES ", 1)[1]) == {"tensorflow": False,
                                                               "keras": False}
    outputs = sorted(tmp_path.glob("*.npz"))
    assert len(outputs) == (2 if command == "video" else 1)
    for output in outputs:
        written = np.load(output)
        assert str(written["engine"]) == "onnxruntime" and str(written["model"]) == SHIPPED
    if command == "audio":
        expected, _ = openl3lite.get_audio_embedding(sf.read(inputs)[0], 8000, model=SHIPPED,
                                                     verbose=False, engine="onnxruntime")
        np.testing.assert_allclose(np.load(outputs[0])["embedding"], expected, rtol=0,
                                   atol=1e-6)


def test_a_weights_file_is_hashed_once_per_version(tmp_path, monkeypatch):
    """Repeated engine calls with the same weights file do not hash it again; a file rewritten
    in place (new modification time) is hashed again and its new sha256 used."""
    import shutil

    from openl3lite import registry, weights

    path = tmp_path / "model.keras"
    shutil.copyfile(registry.part_file(SHIPPED, "audio"), path)
    hashed = []
    real_sha256 = weights.sha256_of
    monkeypatch.setattr(weights, "sha256_of", lambda p: hashed.append(p) or real_sha256(p))
    first = engines._weights_file_facts(path, "audio", None, "music", "kapre")
    again = engines._weights_file_facts(path, "audio", None, "music", "kapre")
    assert first == again and first[1] == "mel128" and len(hashed) == 1
    with open(path, "ab") as f:  # another version of the file: other bytes, other sha256
        f.write(b"\0")
    changed = engines._weights_file_facts(path, "audio", None, "music", "kapre")
    assert len(hashed) == 2 and changed[0] != first[0] == real_sha256(
        registry.part_file(SHIPPED, "audio"))


def test_a_linked_openl3_file_is_known_by_the_name_it_was_given(tmp_path):
    """OpenL3's weights files tell their input representation by name; a link named
    ``openl3_audio_mel128_music.h5`` to a file named otherwise is a mel128 file."""
    from conftest import FIXTURES

    link = tmp_path / "openl3_audio_mel128_music.h5"
    link.symlink_to(FIXTURES / "openl3_audio_random.h5")
    facts = engines._weights_file_facts(link, "audio", None, "music", "kapre")
    assert facts is not None and facts[1] == "mel128"
