"""Where training runs: the backend's threads and compiler, and distribution over devices.

Only ``keras`` and ``keras.ops`` are used, so the loop runs on TensorFlow and on JAX. On
TensorFlow the train step is XLA-compiled (``jit_compile=True``): on a 2-core CPU it was about
15 % faster than the plain graph at width 0.25 (Keras' ``"auto"`` would switch XLA off on CPU).

Several accelerators
--------------------
With more than one local accelerator on the JAX backend, training shards every batch over
them with ``keras.distribution.DataParallel`` (``batch_size`` must be divisible by their number).
On several machines (JAX backend), run the same script on every host, each calling first::

    import keras
    keras.distribution.initialize(
        job_addresses="host0:1234,host1:1234",  # coordinator first
        num_processes=2, process_id=i)           # i = this host's index

``DataParallel`` then spans every host's devices; each host feeds its own ``batch_size`` pairs per
step (sampled with the seed offset by its process index), so the global batch is
``batch_size * num_processes``, and only process 0 writes logs and checkpoints. (Keras'
TensorFlow distribution backend is a prototype, so on TensorFlow one device is used.)
"""

import os
import warnings

from ..errors import OpenL3liteError


def configure_threads(n_threads=None):
    """Let the backend use ``n_threads`` CPU cores (all of them by default).

    On TensorFlow this sets the intra- and inter-op thread pools; it only works before TensorFlow
    has run any op, and is silently skipped afterwards. JAX's XLA CPU runtime uses every core.

    Parameters
    ----------
    n_threads : int, optional
        Cores to use; ``os.cpu_count()`` if None.
    """
    import keras

    n_threads = int(n_threads or os.cpu_count() or 1)
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n_threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, n_threads))
    except RuntimeError:  # TensorFlow already initialised: keep its (all-core) defaults
        pass


def resolve_jit_compile(jit_compile=None):
    """The ``jit_compile`` to compile the model with.

    Parameters
    ----------
    jit_compile : bool or str, optional
        None: True on TensorFlow and JAX (XLA, measured faster on CPU too), ``"auto"`` elsewhere.

    Returns
    -------
    bool or str
    """
    import keras

    if jit_compile is not None:
        return jit_compile
    return True if keras.backend.backend() in ("tensorflow", "jax") else "auto"


def _accelerators():
    """The backend's devices that are not CPUs (empty without a distribution API)."""
    import keras

    try:
        devices = keras.distribution.list_devices()
    except Exception:  # backend without the distribution API
        return []
    return [d for d in devices if "cpu" not in str(d).lower()]


def configure_distribution(batch_size):
    """Shard batches over all accelerators with ``keras.distribution.DataParallel`` (JAX).

    Parameters
    ----------
    batch_size : int
        Per-process batch; must be divisible by the number of local accelerators.

    Returns
    -------
    int
        Devices a batch is split over (1 if no distribution was set).
    """
    import keras

    devices = _accelerators()
    if len(devices) < 2:
        return 1
    if keras.backend.backend() != "jax":
        warnings.warn(f"{len(devices)} accelerators found, but multi-device training needs the "
                      "JAX backend (KERAS_BACKEND=jax); using one device")
        return 1
    if batch_size % len(devices):
        raise OpenL3liteError(f"batch_size {batch_size} must be divisible by the number of "
                              f"accelerators ({len(devices)}) for data-parallel training")
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return len(devices)


def process_index():
    """This process's index in a multi-host run (0 when single-host).

    Returns
    -------
    int
    """
    import keras

    if keras.backend.backend() != "jax":
        return 0
    import jax

    return int(jax.process_index())


def backend_info():
    """The backend and Keras version a run records in its config and checkpoints.

    Returns
    -------
    dict
        ``backend`` (``"tensorflow"``, ``"jax"``, ...) and ``keras_version``.
    """
    import keras

    return {"backend": keras.backend.backend(), "keras_version": keras.__version__}


def to_numpy(variable):
    """A Keras variable's value as a NumPy array (on any backend and device).

    Parameters
    ----------
    variable : keras.Variable

    Returns
    -------
    np.ndarray
    """
    import keras

    return keras.ops.convert_to_numpy(variable.value)
