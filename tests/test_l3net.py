"""The whole L3-Net as one object (openl3lite.l3net.L3Net): construction, files, the embedding
models it makes, and that no part is fetched by layer name outside the network's module."""

import ast

import numpy as np
import pytest

from conftest import FIXTURES, REPO, require
from openl3lite import weights
from openl3lite.errors import OpenL3liteError
from openl3lite.l3net import L3Net

WIDTH = 0.0625


@pytest.fixture(scope="module")
def net():
    return L3Net.random("mel128", WIDTH, seed=5)


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(2)
    return {"audio": rng.normal(0, 0.1, (3, 48000)).astype(np.float32),
            "image": rng.uniform(-1, 1, (3, 224, 224, 3)).astype(np.float32)}


def _arrays(model):
    return [np.asarray(v) for v in model.weights]


def test_parts_are_attributes_and_the_graphs_share_them(net, pairs):
    parts = net.parts()
    assert tuple(parts) == weights.AVC_PARTS
    assert parts["audio"] is net.audio_trunk and parts["fusion"] is net.fusion
    assert net.input_repr == "mel128" and net.width == WIDTH and net.embedding_channels == 512
    assert net.audio_trunk.input_shape == (None, 128, None, 1)
    assert net.audio_trunk.output_shape[-1] == 512 and net.image_trunk.output_shape[-1] == 512
    avc = {id(v) for v in net.avc_model.weights}
    assert avc == {id(v) for part in parts.values() for v in part.weights} | \
        {id(v) for v in net.spectrogram.weights}
    assert {id(v) for v in net.all_pairs_model().weights} == avc
    probs = np.asarray(net.predict_on_batch(pairs))
    assert probs.shape == (3, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    fc1, bn1, fc2 = net.fusion_layers()
    assert fc1.units == 128 and fc2.units == 2 and bn1.epsilon > 0


def test_random_is_seeded(pairs):
    first, again = L3Net.random("mel128", WIDTH, seed=9), L3Net.random("mel128", WIDTH, seed=9)
    other = L3Net.random("mel128", WIDTH, seed=10)
    for a, b in zip(_arrays(first.avc_model), _arrays(again.avc_model)):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b)
               for a, b in zip(_arrays(first.avc_model), _arrays(other.avc_model)))
    assert first.metadata.name == f"random-w{WIDTH:g}"
    assert first.metadata.image_scaling == "symmetric"


def test_save_and_from_file_round_trip_by_value(net, pairs, tmp_path):
    rng = np.random.default_rng(3)
    for pool4 in (net.audio_pool4, net.image_pool4):  # non-default BN statistics must travel
        bn = pool4.layers[1]
        bn.set_weights([rng.uniform(0.5, 2, w.shape).astype(np.float32) for w in bn.weights])
    path = tmp_path / "net.h5"
    net.save(path)
    loaded = L3Net.from_file(path)
    assert loaded.metadata.sha256 == weights.sha256_of(path)
    assert (loaded.input_repr, loaded.width) == ("mel128", WIDTH)
    for a, b in zip(_arrays(net.avc_model), _arrays(loaded.avc_model)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(loaded.predict_on_batch(pairs), net.predict_on_batch(pairs),
                               atol=1e-6)
    with pytest.raises(ValueError, match="another architecture"):
        net.save(tmp_path / "bad.h5", L3Net.random("mel256", WIDTH).metadata)
    assert not (tmp_path / "bad.h5").exists()


def test_embedding_models_share_the_trunks(net, pairs, tmp_path):
    import openl3lite

    audio = net.audio_embedding_model(512)
    image = net.image_embedding_model(8192)
    assert audio.trunk is net.audio_trunk and image.trunk is net.image_trunk
    assert len(audio.weights) == len(net.audio_trunk.weights) + len(net.spectrogram.weights)
    features = np.asarray(net.audio_trunk(net.spectrogram(pairs["audio"])))
    np.testing.assert_allclose(np.asarray(audio(pairs["audio"][:, None, :])),
                               features.max(axis=(1, 2)), rtol=1e-5, atol=1e-5)
    path = tmp_path / "net.h5"
    net.save(path)
    loaded = openl3lite.load_image_embedding_model_from_path(path, embedding_size=8192)
    np.testing.assert_allclose(np.asarray(loaded(pairs["image"])),
                               np.asarray(image(pairs["image"])), rtol=1e-5, atol=1e-5)


def test_from_file_refuses_what_is_not_a_whole_network(net, tmp_path):
    partial = tmp_path / "audio_only.h5"
    weights.save_model_file(partial, {"audio": net.audio_trunk, "image": net.image_trunk},
                            net.metadata)
    with pytest.raises(OpenL3liteError, match=r"audio_only\.h5.*no audio_pool4"):
        L3Net.from_file(partial, "localisation")
    with pytest.raises(OpenL3liteError, match="no fusion head"):
        L3Net.from_file(require(FIXTURES / "openl3_audio_random.h5"))
    with pytest.raises(OpenL3liteError, match="missing.h5"):
        L3Net.from_file(tmp_path / "missing.h5")
    with pytest.raises(OpenL3liteError, match="invalid input_repr"):
        L3Net("mel64")


def test_from_file_takes_a_shipped_models_name():
    from openl3lite import registry

    name = registry.demonstration_model_name()
    net = L3Net.from_file(name)
    assert net.metadata.sha256 == registry.part_sha256(name, "audio")
    assert net.metadata.name == name


def _layer_fetches(path):
    tree = ast.parse(path.read_text())
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr == "get_layer"]


def test_no_part_is_fetched_by_layer_name_outside_the_network_module():
    """Parts are attributes of L3Net and of the embedding models; only network.py, which builds
    them, looks inside a part by layer name."""
    package = REPO / "openl3lite"
    fetches = {str(path.relative_to(REPO)): lines
               for path in sorted(package.rglob("*.py")) if path.name != "network.py"
               for lines in [_layer_fetches(path)] if lines}
    assert fetches == {}
    assert _layer_fetches(package / "network.py")  # the check can see a fetch
