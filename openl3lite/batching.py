"""Run a model over a stream of input batches: shared by the audio, image and video paths.

Producing batches (decoding, resampling, framing, spectrograms, image scaling) runs in a
background thread while the network runs, so preprocessing overlaps with inference.
"""

import contextlib
import itertools
import logging
import queue
import threading

import numpy as np

from .checks import check_batch_size


class _Failure:
    def __init__(self, exc):
        self.exc = exc


_DONE = object()


def prefetch(iterable, depth=2):
    """Iterate ``iterable`` in a background thread, keeping up to ``depth`` items ready.

    Exceptions raised by the producer are re-raised in the consumer.

    Parameters
    ----------
    iterable : iterable
    depth : int
        Items buffered ahead.

    Yields
    ------
    The items of ``iterable``, in order.
    """
    items = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item):
        """Hand ``item`` to the consumer; False once the consumer has stopped."""
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        # every put gives up once the consumer stops, so the thread ends even when the
        # iterable ends or fails while the buffer is full and nobody reads it any more
        try:
            for item in iterable:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer
            put(_Failure(exc))

    thread = threading.Thread(target=produce, daemon=True, name="openl3lite-prefetch")
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()


def run_batches(predict, batches, n_items, progress=None, overlap=True):
    """Apply ``predict`` to each batch and stack the results.

    Parameters
    ----------
    predict : callable
        (b, ...) float32 array -> (b, D) array.
    batches : iterable of np.ndarray
        Input batches; ``n_items`` rows in total.
    n_items : int or None
        Total rows (preallocates the output); None when not known in advance (a stream):
        the results are then gathered and joined at the end.
    progress : tqdm-like or None
        Updated by each batch's size.
    overlap : bool
        Produce batches in a background thread.

    Returns
    -------
    np.ndarray, float32, shape (n_items, D)
    """
    output = None
    gathered = []
    row = 0
    source = prefetch(batches) if overlap else batches
    for batch in source:
        result = np.asarray(predict(batch), dtype=np.float32)
        if n_items is None:
            gathered.append(result)
        else:
            if output is None:
                output = np.empty((n_items,) + result.shape[1:], dtype=np.float32)
            output[row : row + len(result)] = result
        row += len(result)
        if progress is not None:
            progress.update(len(result))
    if n_items is None:
        if not gathered:
            raise RuntimeError("no batches to run")
        return np.concatenate(gathered)
    if output is None or row != n_items:
        raise RuntimeError(f"expected {n_items} rows from the batches, got {row}")
    return output


def batched_stream(items, batch_size):
    """Group a stream of items into lists of ``batch_size`` (the last may be shorter).

    Parameters
    ----------
    items : iterable
    batch_size : int

    Yields
    ------
    list, 1 to ``batch_size`` items

    Raises
    ------
    OpenL3liteError
        ``batch_size`` under one (before anything is read from ``items``).
    """
    check_batch_size(batch_size)
    iterator = iter(items)
    while True:
        group = list(itertools.islice(iterator, batch_size))
        if not group:
            return
        yield group


def batched(array, batch_size):
    """Split an array along its first axis into batches.

    Parameters
    ----------
    array : np.ndarray, shape (n, ...)
    batch_size : int

    Yields
    ------
    np.ndarray, shape (<= batch_size, ...)

    Raises
    ------
    OpenL3liteError
        ``batch_size`` under one.
    """
    check_batch_size(batch_size)
    for start in range(0, len(array), batch_size):
        yield array[start : start + batch_size]


class _DropRetracingWarning(logging.Filter):
    """Drops TensorFlow's "calls ... triggered tf.function retracing" log record."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


_DROP_RETRACING_WARNING = _DropRetracingWarning()


@contextlib.contextmanager
def no_retracing_warning():
    """Silence TensorFlow's retracing warning within the block.

    TensorFlow counts traces of every Keras model's predict function together, so a process that
    loads several models (each traced once or twice: a full batch and the shorter last one)
    is told it is "creating @tf.function repeatedly in a loop". Keras traces with
    ``reduce_retracing``, so each model's traces stay bounded and the warning is a false alarm
    here; it is dropped only while our predict call runs.
    """
    logger = logging.getLogger("tensorflow")
    logger.addFilter(_DROP_RETRACING_WARNING)
    try:
        yield
    finally:
        logger.removeFilter(_DROP_RETRACING_WARNING)


def keras_predict(keras_model):
    """A fast predict function for a Keras model (compiled once, no per-call overhead).

    Returns
    -------
    callable
        (b, ...) float32 -> (b, D) numpy array.
    """
    def predict(batch):
        with no_retracing_warning():
            return keras_model.predict_on_batch(np.asarray(batch, dtype=np.float32))

    return predict
