"""The facts every part of openl3lite reads: choices, defaults, rates and sizes (OpenL3 0.4.2's
conventions). Plain constants, no Keras: the CLI and the model registry import this module
without starting a backend."""

#: Sample rate every network works at, in Hz; audio is resampled to it.
TARGET_SR = 48000
#: One analysis window: one second at :data:`TARGET_SR`, in samples.
WINDOW_LEN = TARGET_SR

#: File extensions (lower case, with the dot) that folder searches keep, for every command that
#: reads a kind of file (``l3embed audio`` / ``evaluate`` for audio, ``image`` / ``evaluate
#: --modality image``, ``video`` / ``localize`` / ``prepare``). Audio: what libsndfile reads,
#: then what :func:`openl3lite.audio.open_audio_file` hands to ffmpeg.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".aifc", ".au",
                    ".snd", ".caf", ".w64", ".rf64", ".opus",
                    ".m4a", ".aac", ".wma", ".mka", ".ac3")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv",
                    ".flv")

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

#: Resampling methods: ``kaiser_best`` reproduces OpenL3 0.4.2 (resampy 0.2.2's kaiser_best
#: table) and is the default; ``soxr_hq`` / ``soxr_vhq`` are libsoxr's much faster streaming
#: resamplers.
RESAMPLERS = ("kaiser_best", "soxr_hq", "soxr_vhq")
DEFAULT_RESAMPLER = "kaiser_best"

#: Modes of the audio API: ``exact`` (every window through the network, OpenL3's results) and
#: ``fast`` (approximate, see :mod:`openl3lite.fast`).
MODES = ("exact", "fast")
DEFAULT_MODE = "exact"

#: API defaults shared by the functions and the CLI.
DEFAULT_HOP_SIZE = 0.1
DEFAULT_BATCH_SIZE = 32

#: Inference engines of exact mode: Keras itself (the default), or the network converted once
#: to ONNX and run by ONNX Runtime or OpenVINO (``pip install 'openl3lite[export]'``); and
#: ``openvino-bf16``, OpenVINO computing in bfloat16 (AMX / AVX-512 BF16 units where the CPU
#: has them), which is not exact: see :data:`BF16_TOLERANCE`.
ENGINES = ("keras", "onnxruntime", "openvino", "openvino-bf16")
DEFAULT_ENGINE = "keras"
#: Engines whose outputs differ from Keras' by more than float32 round-off.
APPROXIMATE_ENGINES = ("openvino-bf16",)
#: Formats of ``l3embed export-model`` / :func:`openl3lite.deploy.export_model`.
EXPORT_FORMATS = ("onnx", "tflite", "saved_model")
#: Parts of a model that can be exported: the audio or the image embedding network.
EXPORT_PARTS = ("audio", "image")
#: Largest accepted difference between an exported (or engine) network and the Keras model,
#: relative to the embedding's scale (max |embedding| of the Keras model on the same inputs):
#: for images, and for audio whose spectrogram bins all sit above float32's round-off floor
#: (broadband noise).
EXPORT_TOLERANCE = 1e-4
#: The same for real speech with quiet stretches: a float32 STFT's round-off floor lies at
#: 1e-7..1e-8 of a window's peak, i.e. -70..-80 dB on OpenL3's 10*log10-of-magnitude scale,
#: inside its 80 dB range, so two float32 spectrograms (TensorFlow's FFT and the export's
#: DFT) differ in near-silent bins by up to a few dB (see tests/test_openl3_fixtures.py).
EXPORT_SPEECH_TOLERANCE = {"linear": 3e-2, "mel128": 1e-2, "mel256": 1e-2}
#: Largest accepted difference between ``engine="openvino-bf16"`` and the Keras model, relative
#: to the embedding's scale, on the verification inputs (bfloat16 keeps 8 significant bits:
#: measured 8e-3 with OpenL3's full networks, random weights, lowest window cosine 0.99998).
BF16_TOLERANCE = 3e-2
#: HEAR 2021 entry (:mod:`openl3lite.hear`), as OpenL3's own HEAR 2021 entry: its default model
#: and embedding size, the hop of the timestamp embeddings and the hop of the windows that the
#: scene embedding averages, in seconds.
HEAR_DEFAULT_MODEL = "openl3-mel256-music"
HEAR_EMBEDDING_SIZE = 512
HEAR_TIMESTAMP_HOP_SIZE = 0.05
HEAR_SCENE_HOP_SIZE = 0.5
