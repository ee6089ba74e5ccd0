"""The named models: those shipped in ``models/`` and OpenL3's published weights.

Every model has a name, a one-line description, its licence and the files of its parts
(``audio`` and/or ``image``). Shipped models are files inside the package, checked against
their sha256 once per process; OpenL3's are fetched on first use into the user's cache by
:mod:`openl3lite.hub` and checked against the git blob ids OpenL3's repository pins.

OpenL3's model names are ``openl3-<input_repr>-<content_type>`` (``openl3-mel256-music``
...), one per pair of OpenL3 weight files (``openl3_audio_<repr>_<type>.h5`` and
``openl3_image_<repr>_<type>.h5``). This module imports no Keras.
"""

import functools
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from . import hub
from .checks import check_choice
from .errors import OpenL3liteError
from .facts import (
    AUDIO_EMBEDDING_SIZES,
    CONTENT_TYPES,
    DEFAULT_CONTENT_TYPE,
    DEFAULT_INPUT_REPR,
    FRONTENDS,
    IMAGE_EMBEDDING_SIZES,
    INPUT_REPRS,
)

#: What the full-width OpenL3 networks hold, for the listing of models not yet downloaded:
#: the decompressed ``.h5`` of each part is about this size (float32 weights and the file's
#: overhead; the audio network's size depends slightly on its input representation).
_OPENL3_PART_MB = {"audio": 18.8, "image": 18.8}

OPENL3_CITATION = ("Cramer, Wu, Salamon and Bello, 'Look, Listen and Learn More: Design Choices "
                   "for Deep Audio Embeddings', ICASSP 2019")

_OPENL3_DESCRIPTIONS = {
    "music": "OpenL3 0.4.2's published weights, trained on AudioSet's music videos",
    "env": "OpenL3 0.4.2's published weights, trained on AudioSet's environmental-sound videos",
}
_REPR_WORDS = {"linear": "linear spectrogram (257 bins)", "mel128": "128-band mel spectrogram",
               "mel256": "256-band mel spectrogram"}


@dataclass(frozen=True)
class ModelEntry:
    """One named model.

    Attributes
    ----------
    name : str
    kind : str
        ``shipped`` (inside the package) or ``openl3`` (OpenL3's weights, fetched on demand).
    description : str
        One line.
    licence : str
    input_repr : str
        Audio representation the audio part was trained on.
    content_type : str or None
        OpenL3's ``music`` / ``env``; None for our models.
    parts : dict of str -> dict
        ``audio`` / ``image`` -> the part's file record: for shipped models ``file`` and
        ``sha256``; for OpenL3's the :func:`openl3lite.hub.weight_files` entry.
    card : str or None
        Model card file name (shipped models).
    citation : str or None
    width : float
        Width multiplier of the trunks (1.0: OpenL3's full-size networks).
    image_scaling : str
        How its image network wants images scaled (``openl3`` or ``symmetric``, see
        :mod:`openl3lite.image`).
    fusion_head : bool
        Whether its file holds the whole AVC network (pool4 stages and fusion head too), as
        ``l3embed localize``, ``evaluate-avc`` and ``train --init-from`` need; OpenL3's
        published files hold one subnetwork each.
    """

    name: str
    kind: str
    description: str
    licence: str
    input_repr: str
    content_type: str = None
    parts: dict = field(default_factory=dict)
    card: str = None
    citation: str = None
    width: float = 1.0
    image_scaling: str = "openl3"
    fusion_head: bool = False

    def parameters_text(self):
        """One line of the model's parameters, e.g. ``mel128, width 0.125, ...``."""
        sizes = {"audio": AUDIO_EMBEDDING_SIZES, "image": IMAGE_EMBEDDING_SIZES}
        embeddings = ", ".join(f"{part} {' or '.join(map(str, sizes[part]))}-D"
                               for part in ("audio", "image") if part in self.parts)
        head = "whole AVC network" if self.fusion_head else "no fusion head"
        return (f"{self.input_repr}, width {self.width:g}, {embeddings}, "
                f"{self.image_scaling} image scaling, {head}")


def shipped_dir():
    """Folder of the shipped models: the installed ``openl3lite.released_models`` package
    (``models/`` in the source tree), or ``models/`` beside the package in a bare checkout.

    Returns
    -------
    pathlib.Path or importlib.resources.abc.Traversable
    """
    try:
        return resources.files("openl3lite.released_models")
    except (ModuleNotFoundError, TypeError):
        return Path(__file__).resolve().parents[1] / "models"


def load_shipped_registry():
    """``models/registry.json``: ``{"default": name, "models": {name: {...}}}``."""
    try:
        text = (shipped_dir() / "registry.json").read_text()
    except FileNotFoundError:
        return {"default": None, "models": {}}
    return json.loads(text)


def openl3_model_name(input_repr=DEFAULT_INPUT_REPR, content_type=DEFAULT_CONTENT_TYPE):
    """The name of OpenL3's weights for a representation and content type.

    Returns
    -------
    str
        ``openl3-<input_repr>-<content_type>``.
    """
    return f"openl3-{input_repr}-{content_type}"


def default_model_name(input_repr=None, content_type=DEFAULT_CONTENT_TYPE, frontend="kapre"):
    """The model used when none is given: OpenL3's weights for ``input_repr`` (default
    ``mel256``) and ``content_type``, as OpenL3 0.4.2 chooses them.

    Parameters
    ----------
    input_repr : str, optional
    content_type : str
    frontend : str, optional
        None for the image network, which has no frontend.

    Raises
    ------
    OpenL3liteError
        For an unknown choice, or a librosa frontend without ``input_repr`` (OpenL3 requires
        it there).
    """
    if input_repr is not None:
        check_choice("input_repr", input_repr, INPUT_REPRS)
    check_choice("content_type", content_type, CONTENT_TYPES)
    if frontend is not None:
        check_choice("frontend", frontend, FRONTENDS)
    if input_repr is None and frontend == "librosa":
        raise OpenL3liteError("the librosa frontend needs input_repr (linear, mel128 or mel256)")
    return openl3_model_name(input_repr or DEFAULT_INPUT_REPR, content_type)


def _openl3_entries():
    files = {}
    for record in hub.weight_files():
        name = openl3_model_name(record["input_repr"], record["content_type"])
        files.setdefault(name, {})[record["modality"]] = dict(record, model=name)
    entries = []
    for input_repr in INPUT_REPRS:
        for content_type in CONTENT_TYPES:
            name = openl3_model_name(input_repr, content_type)
            if name not in files:
                continue
            entries.append(ModelEntry(
                name=name, kind="openl3",
                description=f"{_OPENL3_DESCRIPTIONS[content_type]}; audio: "
                            f"{_REPR_WORDS[input_repr]}",
                licence="CC BY 4.0", input_repr=input_repr, content_type=content_type,
                parts=files[name], citation=OPENL3_CITATION, width=1.0,
                image_scaling="openl3", fusion_head=False))
    return entries


def _shipped_entries():
    registry = load_shipped_registry()
    return [ModelEntry(name=name, kind="shipped", description=record.get("description", ""),
                       licence=record.get("licence", ""), input_repr=record["input_repr"],
                       parts={"audio": record, "image": record}, card=record.get("card"),
                       width=float(record["width"]), image_scaling=record["image_scaling"],
                       fusion_head=bool(record["fusion_head"]))
            for name, record in registry.get("models", {}).items()]


@functools.lru_cache(maxsize=1)
def _entries():
    return {entry.name: entry for entry in _shipped_entries() + _openl3_entries()}


def all_models():
    """Every named model: the shipped ones first, then OpenL3's.

    Returns
    -------
    list of ModelEntry
    """
    return list(_entries().values())


def get_model(name):
    """The entry of a named model.

    Raises
    ------
    OpenL3liteError
        If no model has that name (the message lists the names).
    """
    entries = _entries()
    if name not in entries:
        raise OpenL3liteError(f"unknown model {name!r}; known models: {', '.join(entries)} "
                              "(`l3embed models` lists them)")
    return entries[name]


def is_model_name(value):
    """Whether ``value`` is the name of a model (not a path to a file)."""
    return isinstance(value, str) and value in _entries()


def demonstration_model_name():
    """The name of the shipped demonstration model (None if none is shipped)."""
    return load_shipped_registry().get("default")


@functools.lru_cache(maxsize=16)
def _checked_shipped_file(name, file_name, sha256):
    from .weights import sha256_of

    path = os.fspath(shipped_dir() / file_name)
    if not os.path.exists(path):
        raise OpenL3liteError(f"shipped model {name!r}: file {path} is missing")
    if sha256_of(path) != sha256:
        raise OpenL3liteError(f"shipped model {name!r}: {path} fails its sha256 check "
                              "(corrupt or modified file)")
    return path


def part_file(name, modality, progress=True):
    """Local path of a model part's weights, fetching OpenL3's on first use.

    Parameters
    ----------
    name : str
        A model name (:func:`all_models`).
    modality : str
        ``audio`` or ``image``.
    progress : bool
        Show a progress bar while downloading.

    Returns
    -------
    str
        A verified file: a shipped file's sha256 is checked once per process; OpenL3's
        files are verified against their pinned git blob id when installed and against the
        sha256 recorded then, once per process.

    Raises
    ------
    OpenL3liteError
        Unknown name, no such part, a file that fails its check, or OpenL3's weights that
        cannot be had (offline or a failed download; the message says what to do).
    """
    entry = get_model(name)
    if modality not in entry.parts:
        raise OpenL3liteError(f"model {name!r} has no {modality} part")
    record = entry.parts[modality]
    if entry.kind == "shipped":
        return _checked_shipped_file(name, record["file"], record["sha256"])
    hub.fetch(record, progress=progress)
    return hub.verify_installed(record)


def part_sha256(name, modality):
    """The sha256 of a model part's installed weights file (None if not installed)."""
    entry = get_model(name)
    record = entry.parts[modality]
    if entry.kind == "shipped":
        return record["sha256"]
    installed = hub.installed_record(record)
    return installed.get("sha256") if installed else None


def is_installed(name):
    """Whether every part of a model is available without a download."""
    entry = get_model(name)
    if entry.kind == "shipped":
        return all(os.path.exists(os.fspath(shipped_dir() / r["file"]))
                   for r in entry.parts.values())
    return all(hub.is_installed(record) for record in entry.parts.values())


def size_text(name):
    """The size of a model's files on disk, or the expected size if not downloaded.

    Returns
    -------
    str
        e.g. ``"37.6 MB"`` or ``"about 36 MB to download"``.
    """
    entry = get_model(name)
    if entry.kind == "shipped":
        files = {r["file"] for r in entry.parts.values()}
        total = sum(os.path.getsize(os.fspath(shipped_dir() / f)) for f in files)
        return f"{total / 1e6:.1f} MB"
    if is_installed(name):
        total = sum(os.path.getsize(hub.installed_path(r)) for r in entry.parts.values())
        return f"{total / 1e6:.1f} MB"
    return f"about {sum(_OPENL3_PART_MB[m] for m in entry.parts):.0f} MB (not downloaded)"
