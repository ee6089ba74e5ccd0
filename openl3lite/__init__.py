"""openl3lite: L3-Net ("Look, Listen and Learn") audio, image and video embeddings in Keras 3.

Drop-in for OpenL3 0.4.2's API::

    import openl3lite as openl3
    emb, ts = openl3.get_audio_embedding(audio, sr)

The public names are imported lazily, so ``import openl3lite`` (and ``l3embed --help``) does
not start TensorFlow until a model is needed.
"""

import importlib
import os as _os

#: TensorFlow's C++ log level (``TF_CPP_MIN_LOG_LEVEL``) as the user set it (None if unset or
#: empty); the CLI shows what TensorFlow writes at start-up only when it is 0 or 1.
_TF_LOG_LEVEL_FROM_USER = _os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() or None
if _TF_LOG_LEVEL_FROM_USER is None:
    # 3: no C++ log lines once TensorFlow's logging is up; on a machine without a GPU that
    # includes an "E ... failed call to cuInit" line that reads like a failure and is not one
    _os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

__version__ = "0.1.0"

_EXPORTS = {
    "get_audio_embedding": "api", "get_image_embedding": "api", "process_audio_file": "api",
    "process_image_file": "api", "process_video_file": "api", "embed_audio_file": "api",
    "preprocess_audio": "api", "get_output_path": "output",
    "OpenL3Error": "errors", "OpenL3liteError": "errors", "OpenL3liteWarning": "errors",
    "OpenL3Warning": "errors",
    "AudioEmbeddingModel": "models", "ImageEmbeddingModel": "models", "list_models": "models",
    "load_audio_embedding_model": "models", "load_audio_embedding_model_from_path": "models",
    "load_image_embedding_model": "models", "load_image_embedding_model_from_path": "models",
    "random_audio_model": "models", "random_image_model": "models",
}

#: Submodules reachable as attributes (``openl3lite.models.load_audio_embedding_model``, as
#: ``openl3.models...`` is), imported on first use.
_SUBMODULES = ("core", "models", "cli", "openl3_exceptions", "openl3_warnings", "hub",
               "registry", "hear", "deploy", "engines", "raydata", "jobs")

__all__ = sorted(_EXPORTS)


#: Modules that import Keras (and so TensorFlow) at import time: imported through
#: :func:`openl3lite.quiet.import_backend_quietly` first, so that TensorFlow's start-up lines
#: stay off the terminal. ``api`` imports Keras only when it loads a Keras model (the same
#: way), so an engine's cached network runs without TensorFlow.
_NEED_BACKEND = ("core", "models")


def _import(name):
    if name in _NEED_BACKEND:
        from .quiet import import_backend_quietly

        import_backend_quietly()
    return importlib.import_module(f".{name}", __name__)


def __getattr__(name):
    if name in _SUBMODULES:
        module = _import(name)
        globals()[name] = module
        return module
    if name in _EXPORTS:
        value = getattr(_import(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'openl3lite' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
