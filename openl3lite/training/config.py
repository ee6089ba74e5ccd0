"""What defines a training run: :class:`TrainConfig`, the one place training defaults live.

Each option's default and description are written once, in :class:`TrainConfig`'s fields;
:func:`openl3lite.training.train.train`'s keyword arguments, its docstring and the options of
``l3embed train`` read them (:func:`default_of`, :func:`help_of`, :func:`document_options`).
No Keras here: the command line imports this module without starting a backend.
"""

import inspect
import os
import textwrap
from dataclasses import MISSING, dataclass, field, fields

from ..checks import check_choice, check_pair_batch_size
from ..errors import OpenL3liteError
from ..facts import INPUT_REPRS
from . import sampling

#: How a new run's fusion head starts (see :mod:`openl3lite.training.model`).
HEAD_INITS = ("zeros", "matching")
#: The optimizer every run uses (recorded in ``config.json`` and checkpoints).
OPTIMIZER = "AdamW"
#: Config keys that define the network: a resumed run must have the same.
ARCHITECTURE_KEYS = ("input_repr", "width")
#: Config keys that define the sequence of batches: changing them would not continue the run.
SAMPLER_KEYS = ("batch_size", "seed", "val_fraction", "negatives")


def _option(default, help):
    """A :class:`TrainConfig` field with its default and its description (``metadata["help"]``)."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json``).

    Each field's default and description are written once, here (``help(TrainConfig)`` lists
    them): :func:`openl3lite.training.train.train`'s keyword arguments and ``l3embed train``'s
    options (``l3embed train --help``) read them. ``optimizer`` is recorded, not chosen.
    """

    dataset_dir: str = field(metadata={"help": (
        "A prepared dataset (openl3lite.training.prepare.prepare_dataset, l3embed prepare).")})
    input_repr: str = _option("mel128", "Audio representation: linear, mel128 or mel256.")
    width: float = _option(0.25, "Width multiplier of both trunks, in (0, 1] (1 is the paper's "
                                 "network).")
    batch_size: int = _option(64, "Pairs per step (even): half of them corresponding, or all of "
                                  "them with in-batch negatives.")
    steps: int = _option(10000, "Total optimisation steps (a resumed run may raise it to train "
                                "longer).")
    val_fraction: float = _option(0.1, "Share of the dataset's videos held out for validation "
                                       "(split by video), in [0, 1).")
    seed: int = _option(0, "Seeds the initial weights, the video split and the batch sequence.")
    learning_rate: float = _option(1e-4, "AdamW learning rate (the paper: 1e-4); it may change "
                                         "when a run is resumed.")
    weight_decay: float = _option(1e-5, "Decoupled weight decay (the paper: 1e-5).")
    checkpoint_every: int = _option(200, "Steps between checkpoints (one is also written at the "
                                         "end and on Ctrl-C).")
    eval_every: int = _option(100, "Steps between rows of metrics.csv (validation pass, curves "
                                   "redrawn).")
    val_batches: int = _option(8, "Fixed validation (and held-out) batches per evaluation.")
    workers: int = _option(2, "Threads producing batches ahead of the model.")
    progress: bool = _option(True, "Show a progress bar.")
    heldout_dir: str = _option(None, "A second prepared dataset (e.g. unseen speakers) whose AVC "
                                     "loss and accuracy on fixed batches are logged too.")
    jit_compile: object = _option(None, "Passed to model.compile; None: XLA on TensorFlow and "
                                        "JAX (measured faster on CPU too), 'auto' elsewhere.")
    optimizer: str = _option(OPTIMIZER, "The optimizer (recorded; every run uses AdamW).")
    negatives: str = _option("sampled", (
        "sampled: the paper's batches, half corresponding pairs and half pairs of different "
        "videos. in-batch: each batch is batch_size corresponding pairs from different videos "
        "and the fusion head scores every frame against every clip of the batch (the other "
        "videos' clips are the negatives), positives and negatives weighted 50/50: many more "
        "negatives for the same compute. Validation always uses sampled pairs, so AVC "
        "accuracies are comparable."))
    head_init: str = _option("zeros", (
        "How a new run's fusion head starts. zeros: output layer at zero (p = 0.5 for every "
        "pair). matching: the same layers started as a distance between the audio and image "
        "vectors, so the correspondence signal reaches both subnetworks from the first step. "
        "Ignored when resuming or starting from a model file."))
    bn_batches: int = _option(16, (
        "Training batches BatchNorm statistics are recomputed on (with the current weights) "
        "before every evaluation and checkpoint, so logged accuracies and exported weights do "
        "not depend on a moving average of older weights; 0 keeps the moving averages."))
    speed_jitter: float = _option(0.0, (
        "Play each training clip at a random speed in [1 - J, 1 + J] (tempo and pitch "
        "together, as speed perturbation does for speech), an addition to the paper's "
        "augmentation; 0 is the paper's. It may change when a run is resumed."))
    init_from: str = _option(None, (
        "Start a new run from the weights of this model file (l3embed export's, or a released "
        "model's) instead of random ones, with a fresh optimizer: fine-tuning, or continuing a "
        "run whose folder is gone. Its input representation and width must be the run's; its "
        "path, sha256, name and training steps are recorded in the run's state and in exported "
        "metadata. Ignored when resuming from a checkpoint."))


#: The options :func:`openl3lite.training.train.train` takes, in its order (every field but
#: the dataset, which is positional, and the recorded optimizer).
TRAIN_OPTIONS = tuple(f.name for f in fields(TrainConfig)
                      if f.name not in ("dataset_dir", "optimizer"))
_FIELDS = {f.name: f for f in fields(TrainConfig)}


def default_of(name):
    """The default of a :class:`TrainConfig` field.

    Parameters
    ----------
    name : str
        A field name, e.g. ``"width"``.

    Returns
    -------
    object
        Its default value.
    """
    default = _FIELDS[name].default
    if default is MISSING:
        raise KeyError(f"{name} has no default")
    return default


def help_of(name):
    """The one-paragraph description of a :class:`TrainConfig` field (CLI help, docstrings).

    Parameters
    ----------
    name : str

    Returns
    -------
    str
    """
    return _FIELDS[name].metadata["help"]


def choices_of(name):
    """The values a choice field takes (``input_repr``, ``negatives``, ``head_init``).

    Parameters
    ----------
    name : str

    Returns
    -------
    list of str
    """
    return list({"input_repr": INPUT_REPRS, "negatives": sampling.NEGATIVE_MODES,
                 "head_init": HEAD_INITS}[name])


def _type_name(name):
    """The numpy-docstring type of a field: ``float``, ``str, optional`` ..."""
    spelled = {"object": "bool or str, optional"}
    annotation = _FIELDS[name].type
    annotation = annotation if isinstance(annotation, str) else annotation.__name__
    if _FIELDS[name].default is None:
        return spelled.get(annotation, f"{annotation}, optional")
    return annotation


def options_doc(names=TRAIN_OPTIONS):
    """The numpy-style ``Parameters`` entries of some :class:`TrainConfig` fields.

    Parameters
    ----------
    names : sequence of str

    Returns
    -------
    str
        ``name : type`` lines, each followed by its description (with its default) indented by
        four spaces; no leading indentation.
    """
    entries = []
    for name in names:
        default = _FIELDS[name].default
        text = help_of(name) + ("" if default in (None, MISSING) else f" Default: {default!r}.")
        text = textwrap.fill(text, 92, initial_indent="    ", subsequent_indent="    ")
        entries.append(f"{name} : {_type_name(name)}\n{text}")
    return "\n".join(entries)


def document_options(documented, names=TRAIN_OPTIONS, section="Other Parameters"):
    """Add the descriptions of some fields to a numpy-style docstring, as a section of its own.

    The section goes before ``Returns`` (or at the end); the docstring as written stays valid
    for tools that read the source (the API pages).

    Parameters
    ----------
    documented : callable or class
    names : sequence of str
        The fields to describe.
    section : str
        The section's heading.

    Returns
    -------
    callable or class
        ``documented``, its ``__doc__`` completed (unchanged if it has none, as under
        ``python -OO``).
    """
    if not documented.__doc__:
        return documented
    doc = inspect.cleandoc(documented.__doc__)
    added = f"{section}\n{'-' * len(section)}\n{options_doc(names)}\n\n"
    at = doc.find("\nReturns\n-------\n")
    documented.__doc__ = (doc.rstrip() + "\n\n" + added.rstrip() if at < 0
                          else doc[:at + 1] + added + doc[at + 1:])
    return documented


document_options(TrainConfig, tuple(_FIELDS), "Attributes")


def make_config(dataset_dir, **options):
    """A :class:`TrainConfig` from user arguments: paths made absolute, numbers typed, checked.

    Parameters
    ----------
    dataset_dir : str or os.PathLike
    **options
        Fields of :data:`TRAIN_OPTIONS`; missing ones take their defaults.

    Returns
    -------
    TrainConfig

    Raises
    ------
    OpenL3liteError
        An invalid value (:func:`check_config`).
    """
    values = {name: options.get(name, default_of(name)) for name in TRAIN_OPTIONS}
    for name in ("width", "val_fraction", "learning_rate", "weight_decay", "speed_jitter"):
        values[name] = float(values[name])
    for name in ("batch_size", "steps", "seed", "checkpoint_every", "eval_every",
                 "val_batches", "workers", "bn_batches"):
        values[name] = int(values[name])
    values["progress"] = bool(values["progress"])
    heldout, init_from = values["heldout_dir"], values["init_from"]
    values["heldout_dir"] = os.path.abspath(os.fspath(heldout)) if heldout else None
    values["init_from"] = os.fspath(init_from) if init_from else None
    config = TrainConfig(dataset_dir=os.path.abspath(os.fspath(dataset_dir)), **values)
    check_config(config)
    return config


def config_from_dict(data):
    """The :class:`TrainConfig` of a saved ``config.json`` / checkpoint record.

    Parameters
    ----------
    data : dict
        Keys that are not fields (``backend``, ``keras_version``, ...) are ignored; missing
        fields take their defaults (configs of older runs).

    Returns
    -------
    TrainConfig
    """
    return TrainConfig(**{k: v for k, v in data.items() if k in _FIELDS})


def check_config(config):
    """Raise OpenL3liteError for invalid training arguments.

    Parameters
    ----------
    config : TrainConfig
    """
    check_choice("input_repr", config.input_repr, INPUT_REPRS)
    if not 0 < config.width <= 1:
        raise OpenL3liteError(f"invalid width {config.width}: must be in (0, 1]")
    check_pair_batch_size(config.batch_size)
    for name in ("steps", "checkpoint_every", "eval_every", "val_batches", "workers"):
        if int(getattr(config, name)) < 1:
            raise OpenL3liteError(f"invalid {name} {getattr(config, name)}: must be >= 1")
    if int(config.bn_batches) < 0:
        raise OpenL3liteError(f"invalid bn_batches {config.bn_batches}: must be >= 0")
    if not 0 <= config.val_fraction < 1:
        raise OpenL3liteError(f"invalid val_fraction {config.val_fraction}: must be in [0, 1)")
    check_choice("negatives", config.negatives, sampling.NEGATIVE_MODES)
    check_choice("head_init", config.head_init, HEAD_INITS)
    sampling.check_speed_jitter(config.speed_jitter)
    if not config.learning_rate > 0 or config.weight_decay < 0:
        raise OpenL3liteError(f"invalid learning_rate {config.learning_rate} / weight_decay "
                              f"{config.weight_decay}: need learning_rate > 0, weight_decay >= 0")
