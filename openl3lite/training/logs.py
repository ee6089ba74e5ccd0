"""A run's metrics: the rows of ``metrics.csv`` (the curves are drawn by
:func:`openl3lite.plots.plot_curves`)."""

import csv

import numpy as np

from ..output import atomic_write

CSV_FIELDS = ("step", "elapsed_s", "train_loss", "train_acc", "val_loss", "val_acc",
              "heldout_acc", "heldout_loss", "learning_rate")
METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"


def metrics_row(state, scores):
    """Close the running train means of a run's state into a metrics row.

    Parameters
    ----------
    state : dict
        ``step``, ``elapsed_s`` (s), ``pending`` (``[loss, accuracy]`` of each step since the
        previous row) and ``learning_rates`` (:func:`openl3lite.training.checkpoints
        .record_setting`).
    scores : dict of str -> dict
        Per evaluation set (``"val"``, ``"heldout"``), its
        :func:`openl3lite.evaluation.score_avc_batches` result.

    Returns
    -------
    dict
        Keys among :data:`CSV_FIELDS`; train means None when no step is pending.
    """
    pending = np.asarray(state["pending"], dtype=np.float64).reshape(-1, 2)
    row = {"step": state["step"], "elapsed_s": round(state["elapsed_s"], 2),
           "train_loss": float(pending[:, 0].mean()) if len(pending) else None,
           "train_acc": float(pending[:, 1].mean()) if len(pending) else None,
           "learning_rate": state["learning_rates"][-1][1]}
    for name, score in scores.items():
        row[f"{name}_loss"], row[f"{name}_acc"] = score["loss"], score["accuracy"]
    return row


def write_metrics_csv(path, history):
    """Write the metric rows to a CSV file atomically.

    Parameters
    ----------
    path : str
    history : list of dict
        Rows with keys among :data:`CSV_FIELDS`: ``step``, ``elapsed_s`` (training wall time
        in seconds, summed over resumes), train loss / accuracy (running means since the
        previous row), validation and held-out loss / accuracy (blank when not computed) and
        ``learning_rate`` (the one in force at ``step``; blank in rows of older runs).
    """
    with atomic_write(path, "w", newline="") as f:
        writer = csv.DictWriter(f, CSV_FIELDS)
        writer.writeheader()
        for row in history:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in CSV_FIELDS})
