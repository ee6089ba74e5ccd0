"""The facts every part of openl3lite reads: choices, defaults, rates and sizes (OpenL3 0.4.2's
conventions). Plain constants, no Keras: the CLI and the model registry import this module
without starting a backend."""

#: Sample rate every network works at, in Hz; audio is resampled to it.
TARGET_SR = 48000
#: One analysis window: one second at :data:`TARGET_SR`, in samples.
WINDOW_LEN = TARGET_SR

#: Audio input representations, and the one OpenL3 uses when none is given.
INPUT_REPRS = ("linear", "mel128", "mel256")
DEFAULT_INPUT_REPR = "mel256"
#: OpenL3's content types (which AudioSet subset its weights were trained on), and the default.
CONTENT_TYPES = ("music", "env")
DEFAULT_CONTENT_TYPE = "music"
#: Spectrogram frontends: in-graph ("kapre", OpenL3's default) or OpenL3's float64 librosa one.
FRONTENDS = ("kapre", "librosa")
DEFAULT_FRONTEND = "kapre"

#: Embedding sizes of the full-width networks, the default first.
AUDIO_EMBEDDING_SIZES = (6144, 512)
IMAGE_EMBEDDING_SIZES = (8192, 512)

#: API defaults shared by the functions and the CLI.
DEFAULT_HOP_SIZE = 0.1
DEFAULT_BATCH_SIZE = 32

#: HEAR 2021 entry (:mod:`openl3lite.hear`), as OpenL3's own HEAR 2021 entry: its default model
#: and embedding size, the hop of the timestamp embeddings and the hop of the windows that the
#: scene embedding averages, in seconds.
HEAR_DEFAULT_MODEL = "openl3-mel256-music"
HEAR_EMBEDDING_SIZE = 512
HEAR_TIMESTAMP_HOP_SIZE = 0.05
HEAR_SCENE_HOP_SIZE = 0.5
