"""The argument checks every public boundary uses: the API, the CLI's option types, the batch
jobs (one process or Ray) and the internal functions that must not be fed an invalid value.

Small pure functions, no Keras: each returns the checked value (converted where that is
useful, e.g. ``int``) or raises :class:`~openl3lite.errors.OpenL3liteError` with a message
that names the parameter and the value, ``invalid <name> <value>: <rule>``. The CLI's click
types call the same functions (with the option's name), so the two say the same thing.
"""

import numbers

import numpy as np

from .errors import OpenL3liteError
from .facts import TARGET_SR


def _is_real(value):
    return (not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real)
            and bool(np.isfinite(value)))


def check_choice(name, value, choices):
    """``value`` if it is one of ``choices``.

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    value : object
    choices : sequence

    Returns
    -------
    object
        ``value``.

    Raises
    ------
    OpenL3liteError
        ``invalid <name> <value>: must be one of ...``.
    """
    if isinstance(value, (bool, np.bool_)) or value not in choices:
        raise OpenL3liteError(
            f"invalid {name} {value!r}: must be one of {', '.join(map(repr, choices))}")
    return value


def check_positive_number(name, value):
    """``value`` if it is a finite real number over 0 (not a bool).

    Returns
    -------
    numbers.Real
        ``value``.

    Raises
    ------
    OpenL3liteError
        ``invalid <name> <value>: must be a positive number``.
    """
    if not _is_real(value) or value <= 0:
        raise OpenL3liteError(f"invalid {name} {value!r}: must be a positive number")
    return value


def check_positive_int(name, value):
    """``int(value)`` if ``value`` is an integer (not a bool) of at least 1.

    Returns
    -------
    int

    Raises
    ------
    OpenL3liteError
        ``invalid <name> <value>: must be a positive integer``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or value < 1:
        raise OpenL3liteError(f"invalid {name} {value!r}: must be a positive integer")
    return int(value)


def check_batch_size(batch_size, name="batch_size"):
    """A batch size: an integer of at least 1 (``batch_size=0`` would put every item in one
    batch, holding them all in memory).

    Parameters
    ----------
    batch_size : int
    name : str
        The parameter's name in the message (``audio_batch_size``, ``--batch-size``, ...).

    Returns
    -------
    int
    """
    return check_positive_int(name, batch_size)


def check_pair_batch_size(batch_size, name="batch_size"):
    """A training batch size: an even integer of at least 2 (half of each sampled batch is
    positive pairs, half negative).

    Returns
    -------
    int
    """
    batch_size = check_batch_size(batch_size, name)
    if batch_size < 2 or batch_size % 2:
        raise OpenL3liteError(f"invalid {name} {batch_size}: must be even and >= 2 (half of "
                              "each batch is positive)")
    return batch_size


def hop_length(hop_size):
    """Hop in samples at 48 kHz of a hop in seconds, ``int(hop_size * 48000)`` as OpenL3
    computes it, refusing a hop that is not a positive number or rounds to no sample.

    Parameters
    ----------
    hop_size : float
        Seconds.

    Returns
    -------
    int
        At least 1.

    Raises
    ------
    OpenL3liteError
        ``invalid hop_size ...: must be a positive number`` or ``...: shorter than one sample
        at 48 kHz (1/48000 s)``.
    """
    return _hop_length(hop_size, "hop_size")


def _hop_length(hop_size, name):
    check_positive_number(name, hop_size)
    hop = int(hop_size * TARGET_SR)
    if hop < 1:
        raise OpenL3liteError(f"invalid {name} {hop_size!r}: shorter than one sample at "
                              f"{TARGET_SR // 1000} kHz (1/{TARGET_SR} s)")
    return hop


def check_hop_size(hop_size, name="hop_size"):
    """A hop between windows in seconds: a positive number of at least one sample at 48 kHz.

    Parameters
    ----------
    hop_size : float
        Seconds.
    name : str
        The parameter's name in the message.

    Returns
    -------
    float
        ``hop_size``.
    """
    _hop_length(hop_size, name)
    return hop_size


def check_bool(name, value):
    """``bool(value)`` if ``value`` is True or False (a Python or numpy bool).

    Raises
    ------
    OpenL3liteError
        ``invalid <name> <value>: must be True or False``.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise OpenL3liteError(f"invalid {name} {value!r}: must be True or False")
    return bool(value)


def check_verbose(verbose):
    """OpenL3's rule for ``verbose``: a boolean, or the integer 0 or 1.

    Returns
    -------
    bool
    """
    if isinstance(verbose, (bool, np.bool_)) or (isinstance(verbose, numbers.Integral)
                                                 and verbose in (0, 1)):
        return bool(verbose)
    raise OpenL3liteError(f"invalid verbosity level {verbose!r}: must be True, False, 0 or 1")


def check_embedding_size(embedding_size, sizes, name="embedding_size"):
    """An embedding size: one of ``sizes`` (an int, not a bool).

    Parameters
    ----------
    embedding_size : int
    sizes : sequence of int
        The allowed sizes, e.g. :data:`openl3lite.facts.AUDIO_EMBEDDING_SIZES`.
    name : str

    Returns
    -------
    int
    """
    if isinstance(embedding_size, (bool, np.bool_)) or embedding_size not in sizes:
        raise OpenL3liteError(f"invalid {name} {embedding_size!r}: must be "
                              f"{' or '.join(map(str, sizes))}")
    return int(embedding_size)
