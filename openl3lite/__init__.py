"""openl3lite: L3-Net ("Look, Listen and Learn") audio, image and video embeddings in Keras 3.

Drop-in for OpenL3 0.4.2's API::

    import openl3lite as openl3
    emb, ts = openl3.get_audio_embedding(audio, sr)
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .api import (embed_audio_file, get_audio_embedding, get_image_embedding,
                  process_audio_file, process_image_file, process_video_file)
from .errors import OpenL3Error, OpenL3liteError, OpenL3liteWarning
from .models import (AudioEmbeddingModel, ImageEmbeddingModel, list_models,
                     load_audio_embedding_model, load_audio_embedding_model_from_path,
                     load_image_embedding_model, load_image_embedding_model_from_path,
                     random_audio_model, random_image_model)

__version__ = "0.1.0"

__all__ = [
    "AudioEmbeddingModel", "ImageEmbeddingModel", "OpenL3Error", "OpenL3liteError",
    "OpenL3liteWarning", "embed_audio_file", "get_audio_embedding", "get_image_embedding",
    "list_models", "load_audio_embedding_model", "load_audio_embedding_model_from_path",
    "load_image_embedding_model", "load_image_embedding_model_from_path", "process_audio_file",
    "process_image_file", "process_video_file", "random_audio_model", "random_image_model",
]
