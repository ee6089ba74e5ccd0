"""The embedding tests that matter, rerun on Keras' JAX and PyTorch backends.

Keras fixes its backend when it is first imported, so each backend runs in its own pytest
process (``KERAS_BACKEND=jax`` / ``=torch``) over :data:`SUBSET`: OpenL3 parity of
``get_audio_embedding`` (both frontends, every input representation, both embedding sizes,
resampling, lists), the network and frontends alone, ``get_image_embedding``, video (OpenL3's
decoded sound track and frames), fast mode, and the HEAR API; plus HEAR's validator under the
torch backend. The TensorFlow backend runs all of these in the main test run. The subset leaves
out what does not depend on the backend (decoding, framing, file handling) and the slowest
cases that repeat a covered path (the float64 librosa frontend at mel256, video frames batch by
batch).
"""

import os
import subprocess
import sys

import pytest
from conftest import REPO

#: OpenL3 0.4.2's own outputs of get_audio_embedding: every input representation, both
#: frontends, resampled (44.1 kHz) and 48 kHz input, both sizes, a short clip, a list call.
FIXTURE_CASES = [
    "audio_mel256_kapre:chirp_44k__center1__hop0.1__emb6144",
    "audio_mel128_kapre:chirp_stereo__center0__hop0.5__emb512",
    "audio_linear_kapre:chirp_1s__center1__hop0.1__emb512",
    "audio_linear_librosa:short__center1__hop0.1__emb6144",
    "audio_mel128_kapre:listcall0/listcall1",
]

#: pytest node ids: a parametrised test without brackets runs all its cases.
SUBSET = [
    *(f"tests/test_openl3_fixtures.py::test_audio_case[{case}]" for case in FIXTURE_CASES),
    "tests/test_openl3_fixtures.py::test_network_alone_matches_openl3",
    "tests/test_openl3_fixtures.py::test_frontends_match_openl3",
    # get_image_embedding, with timestamps, both sizes
    "tests/test_openl3_fixtures.py::test_image_case",
    # video: OpenL3's decoded sound track and frames
    "tests/test_openl3_fixtures.py::test_video_from_decoded_arrays",
    # fast mode
    "tests/test_fast_mode.py::test_same_windows_and_timestamps_as_exact",
    "tests/test_fast_mode.py::test_close_to_exact_on_speech_with_openl3s_architecture",
    "tests/test_fast_mode.py::test_spans_join_seamlessly",
    # lists of signals
    "tests/test_api.py::test_list_input_equals_single_calls",
    # the HEAR API
    "tests/test_hear.py::test_model_is_the_backends_module",
    "tests/test_hear.py::test_timestamp_embeddings_equal_get_audio_embedding",
    "tests/test_hear.py::test_torch_tensors_in_and_out",
]


def _run_subset(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-W", "ignore::DeprecationWarning", *SUBSET],
                          cwd=REPO, env=env, capture_output=True, text=True, check=False,
                          timeout=1200)


def _require(module):
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{module} is not installed (pip install -e '.[test]' installs it)")


@pytest.mark.parametrize("backend, module", [("jax", "jax"), ("torch", "torch")])
def test_embedding_subset_passes_on_backend(backend, module):
    _require(module)
    result = _run_subset(backend)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"KERAS_BACKEND={backend}: the subset failed:\n{output[-6000:]}"
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary, summary
    assert "skipped" not in summary or backend == "jax", summary  # jax: no HEAR module type


def test_hear_validator_passes_on_torch():
    from test_hear import run_validator

    _require("torch")
    result = run_validator("torch")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Received torch Module" in result.stdout
    assert "Received embedding of shape: torch.Size([16, 31, 512])" in result.stdout
    assert result.stdout.rstrip().endswith("Looks good!")
