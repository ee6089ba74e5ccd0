"""OpenL3 0.4.2's ``openl3.core``: the embedding functions under the module path OpenL3 code
imports them from (``from openl3.core import get_audio_embedding``).

Everything here is defined in :mod:`openl3lite.api` (the functions), :mod:`openl3lite.output`
(``get_output_path``) and :mod:`openl3lite.facts` (``TARGET_SR``); this module only gives them
OpenL3's address. OpenL3's private helpers (``_pad_audio`` ...) are not part of the promise.
"""

from .api import (get_audio_embedding, get_image_embedding, preprocess_audio,
                  process_audio_file, process_image_file, process_video_file)
from .errors import OpenL3Error, OpenL3Warning
from .facts import TARGET_SR
from .models import load_audio_embedding_model, load_image_embedding_model
from .output import get_output_path

__all__ = ["get_audio_embedding", "get_image_embedding", "get_output_path", "preprocess_audio",
           "process_audio_file", "process_image_file", "process_video_file",
           "load_audio_embedding_model", "load_image_embedding_model", "OpenL3Error",
           "OpenL3Warning", "TARGET_SR"]
