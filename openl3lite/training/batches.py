"""The batches a run uses: its training sampler, the fixed validation, held-out and BatchNorm
batches, and the stream of training batches produced ahead of the model.

Every batch is a pure function of its index ``k`` (:class:`openl3lite.training.sampling.PairSampler`):
step ``s`` (0-based) trains on batch ``k = s``, so a resumed run sees exactly the batches the
uninterrupted run would have. Fixed batches use indices far from any training index.
"""

import contextlib
from concurrent.futures import ThreadPoolExecutor

from ..batching import prefetch
from ..errors import OpenL3liteError
from . import sampling
from .batchnorm import batchnorm_layers, recompute_batchnorm_statistics
from .prepare import load_manifest

#: Batch indices of the fixed validation batches (far from any training index).
VAL_BATCH_OFFSET = 1_000_000_007
#: Batch indices of the fixed training batches BatchNorm statistics are recomputed on.
BN_BATCH_OFFSET = 2_000_000_011
#: Offset of each process's training seed in a multi-host run (process ``i``: ``seed + i * it``).
PROCESS_SEED_STRIDE = 7919


def split(config):
    """The run's training and validation videos (split by video, seeded by ``config.seed``).

    Parameters
    ----------
    config : TrainConfig

    Returns
    -------
    train_ids, val_ids : list of str
    """
    return sampling.split_videos(load_manifest(config.dataset_dir), config.val_fraction,
                                 config.seed)


def _pair_dataset(dataset_dir, video_ids, batch_size, seed, augment, negatives="sampled",
                  speed_jitter=0.0):
    """The sampler of AVC batches over some videos of a prepared dataset."""
    return sampling.PairSampler(dataset_dir, video_ids, batch_size, seed, augment=augment,
                                negatives=negatives, speed_jitter=speed_jitter)


def training_sampler(config, train_ids, process=0):
    """The sampler of a process's training batches (augmented).

    Parameters
    ----------
    config : TrainConfig
    train_ids : list of str
    process : int
        This process's index in a multi-host run: each process draws its own pairs.

    Returns
    -------
    PairSampler
    """
    return _pair_dataset(config.dataset_dir, train_ids, config.batch_size,
                         config.seed + PROCESS_SEED_STRIDE * process, True, config.negatives,
                         config.speed_jitter)


def batchnorm_sampler(config, train_ids):
    """The training batches BatchNorm statistics are recomputed on.

    Augmented as in training, and the same on every process (seeded by ``config.seed`` alone),
    so replicated statistics stay identical.

    Parameters
    ----------
    config : TrainConfig
    train_ids : list of str

    Returns
    -------
    PairSampler
    """
    return _pair_dataset(config.dataset_dir, train_ids, config.batch_size, config.seed, True,
                         config.negatives, config.speed_jitter)


def fixed_batches(dataset, n_batches):
    """``n_batches`` batches that are the same at every evaluation.

    Parameters
    ----------
    dataset : object with ``sample_batch(k)``
        Should not augment.
    n_batches : int

    Returns
    -------
    list of (dict, np.ndarray)
        ``({"audio": (B, 48000) float32, "image": (B, 224, 224, 3) float32}, labels int32 (B,))``.
    """
    return [dataset.sample_batch(VAL_BATCH_OFFSET + i) for i in range(n_batches)]


def evaluation_sets(config, val_ids):
    """Fixed batches for validation (held-out videos) and for the held-out dataset.

    Parameters
    ----------
    config : TrainConfig
    val_ids : list of str
        The run's validation videos (may be empty).

    Returns
    -------
    dict of str -> list of (dict, np.ndarray)
        ``"val"`` and / or ``"heldout"``: :func:`fixed_batches` of sampled (50/50) pairs,
        without augmentation.

    Raises
    ------
    OpenL3liteError
        Fewer than two validation videos (negatives pair different videos).
    """
    sets = {}
    if val_ids:
        if len(val_ids) < 2:
            raise OpenL3liteError(f"validation needs at least 2 videos (negatives pair different "
                                  f"videos), val_fraction {config.val_fraction} gives "
                                  f"{len(val_ids)}; raise it or use val_fraction=0")
        sets["val"] = fixed_batches(_pair_dataset(
            config.dataset_dir, val_ids, config.batch_size, config.seed, False),
            config.val_batches)
    if config.heldout_dir:
        sets["heldout"] = fixed_batches(_pair_dataset(
            config.heldout_dir, None, config.batch_size, config.seed, False),
            config.val_batches)
    return sets


def refresh_batchnorm(model, avc_model, sampler, n_batches):
    """Recompute the BatchNorm statistics of an AVC model on the run's fixed BatchNorm batches.

    Parameters
    ----------
    model : keras.Model
        The training model, run in training mode on the batches (it shares ``avc_model``'s
        layers).
    avc_model : keras.Model
        Whose BatchNorm layers receive the statistics.
    sampler : object with ``sample_batch(k)``
        :func:`batchnorm_sampler`; batches ``BN_BATCH_OFFSET + i``, ``i < n_batches``, are used.
    n_batches : int
        0: nothing is done.
    """
    if n_batches:
        batches = (sampler.sample_batch(BN_BATCH_OFFSET + i)[0] for i in range(n_batches))
        recompute_batchnorm_statistics(model, batches, batchnorm_layers(avc_model))


@contextlib.contextmanager
def batch_stream(sampler, start, stop, workers=2):
    """Batches ``start .. stop - 1`` of a sampler, in order, made by worker threads ahead of use.

    ``workers`` threads call ``sampler.sample_batch``; :func:`openl3lite.batching.prefetch`
    keeps at most ``2 * workers`` batches requested ahead, which bounds the memory. Leaving the
    ``with`` block cancels the batches not yet started.

    Parameters
    ----------
    sampler : object with ``sample_batch(k)``
        Deterministic in ``k`` and safe to call from several threads.
    start, stop : int
    workers : int

    Yields
    ------
    iterator of (dict, np.ndarray)
        ``(inputs, labels)`` of batch ``start``, then ``start + 1``, ...; a sampler's error is
        raised where its batch is taken.
    """
    workers = max(1, int(workers))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="avc-batches")
    requests = (pool.submit(sampler.sample_batch, k) for k in range(start, stop))
    ready = prefetch(requests, depth=2 * workers - 1)
    try:
        yield (future.result()[:2] for future in ready)
    finally:
        ready.close()
        pool.shutdown(wait=False, cancel_futures=True)
