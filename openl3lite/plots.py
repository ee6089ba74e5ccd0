"""Figures: confusion matrices, 2-D embedding maps, localisation overlays and training curves
(matplotlib, no display needed)."""

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path, dpi=110):
    from .output import atomic_write

    plt = _pyplot()
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, dpi=dpi, format="png")
    finally:
        plt.close(fig)


def plot_confusion_matrix(confusion, labels, path, title=""):
    """Draw a confusion matrix (rows: true class, columns: predicted) to a PNG.

    Parameters
    ----------
    confusion : np.ndarray, int, shape (n_classes, n_classes)
    labels : list of str
    path : str
    title : str
    """
    plt = _pyplot()
    confusion = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(1.0 + 0.5 * len(labels), 0.8 + 0.5 * len(labels)))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for (i, j), value in np.ndenumerate(confusion):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                color="white" if value > confusion.max() / 2 else "black")
    fig.tight_layout()
    _save(fig, path)


def embedding_map(features, method="tsne", seed=0):
    """2-D coordinates of z-scored features.

    Parameters
    ----------
    features : np.ndarray, shape (n, D)
    method : str
        ``tsne`` (scikit-learn) or ``pca``.

    Returns
    -------
    np.ndarray, float, shape (n, 2)
    """
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    z = StandardScaler().fit_transform(features)
    z = PCA(n_components=min(50, z.shape[1], len(z)), random_state=seed).fit_transform(z)
    if method == "pca":
        return z[:, :2]
    from sklearn.manifold import TSNE

    perplexity = max(2.0, min(30.0, (len(z) - 1) / 3))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(z)


def plot_embedding_maps(features_by_model, labels, path, method="tsne", seed=0):
    """Side-by-side 2-D maps of several models' embeddings of the same clips, coloured by label
    (e.g. trained vs random weights, as in the paper).

    Parameters
    ----------
    features_by_model : dict of str -> np.ndarray (n, D)
    labels : sequence of str, length n
    path : str
    method : str
    """
    plt = _pyplot()
    labels = np.asarray(labels)
    classes = sorted(set(labels.tolist()))
    colours = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    fig, axes = plt.subplots(1, len(features_by_model), figsize=(5 * len(features_by_model), 4.6),
                             squeeze=False)
    for ax, (name, features) in zip(axes[0], features_by_model.items()):
        xy = embedding_map(features, method, seed)
        for index, cls in enumerate(classes):
            mask = labels == cls
            ax.scatter(xy[mask, 0], xy[mask, 1], s=8, color=colours(index % colours.N),
                       label=cls)
        ax.set(title=f"{name} ({method})", xticks=[], yticks=[])
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8, markerscale=2)
    fig.tight_layout()
    _save(fig, path)


# ---------------------------------------------------------------- localisation figures

def normalise_map(score_map):
    """Scale a map to [0, 1] by its own minimum and maximum (all zeros if it is constant).

    Parameters
    ----------
    score_map : np.ndarray, float

    Returns
    -------
    np.ndarray, float32, same shape
    """
    score_map = np.asarray(score_map, np.float64)
    low, high = score_map.min(), score_map.max()
    if not high > low:
        return np.zeros(score_map.shape, np.float32)
    return ((score_map - low) / (high - low)).astype(np.float32)


def heatmap_overlay(frame, heatmap, alpha=0.5, cmap="jet"):
    """Blend a colour-mapped heatmap over a frame.

    Parameters
    ----------
    frame : np.ndarray, uint8, shape (H, W, 3)
    heatmap : np.ndarray, float, shape (H, W)
        Any range: it is scaled by its own minimum and maximum (:func:`normalise_map`).
    alpha : float
        Weight of the heatmap, in [0, 1].
    cmap : str
        A matplotlib colour map.

    Returns
    -------
    np.ndarray, uint8, shape (H, W, 3)
    """
    from matplotlib import colormaps

    frame = np.asarray(frame)
    if heatmap.shape != frame.shape[:2]:
        raise ValueError(f"heatmap {heatmap.shape} does not match frame {frame.shape[:2]}")
    colours = colormaps[cmap](normalise_map(heatmap))[..., :3] * 255.0
    blended = (1.0 - alpha) * frame.astype(np.float64) + alpha * colours
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def plot_image_localization(frame, heatmap, path, peak=None, title="", box=None):
    """Draw a frame with its correspondence heatmap overlaid (and the map's peak) to a PNG.

    Parameters
    ----------
    frame : np.ndarray, uint8, shape (H, W, 3)
    heatmap : np.ndarray, float, shape (H, W)
        E.g. :meth:`openl3lite.localize.VideoLocalization.image_map`.
    path : str
    peak : (float, float), optional
        (x, y) in pixels, marked with a cross.
    title : str
    box : sequence of 4 numbers, optional
        ``[x0, y0, x1, y1]`` (end-exclusive pixels) outlined in white, e.g. the object the sound
        comes from.
    """
    plt = _pyplot()
    height, width = frame.shape[:2]
    fig, ax = plt.subplots(figsize=(4.2 * width / max(height, width) + 0.6,
                                    4.2 * height / max(height, width) + 0.5))
    ax.imshow(heatmap_overlay(frame, heatmap))
    if box is not None:
        x0, y0, x1, y1 = box
        ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                   edgecolor="white", linewidth=1.5))
    if peak is not None:
        ax.plot([peak[0]], [peak[1]], "w+", markersize=14, markeredgewidth=2)
    ax.set(title=title, xticks=[], yticks=[])
    ax.title.set_fontsize(9)
    fig.tight_layout()
    _save(fig, path)


def plot_audio_localization(spectrogram, heatmap, path, time_range=(0.0, 1.0), title=""):
    """Draw a spectrogram and which of its time-frequency regions correspond to the picture.

    Parameters
    ----------
    spectrogram : np.ndarray, float, shape (n_freq, n_time)
        dB values (frequency bins upwards).
    heatmap : np.ndarray, float, shape (n_freq, n_time)
        Correspondence map at the spectrogram's resolution.
    path : str
    time_range : (float, float)
        Seconds the window spans.
    title : str
    """
    plt = _pyplot()
    extent = (time_range[0], time_range[1], 0, spectrogram.shape[0])
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
    axes[0].imshow(spectrogram, origin="lower", aspect="auto", cmap="magma", extent=extent)
    axes[0].set(title="spectrogram (dB)", xlabel="time (s)", ylabel="frequency bin")
    shown = axes[1].imshow(heatmap, origin="lower", aspect="auto", cmap="jet", extent=extent)
    axes[1].set(title="p(corresponds) per position", xlabel="time (s)")
    fig.colorbar(shown, ax=axes[1], fraction=0.05)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def plot_curves(history, path):
    """Draw loss and AVC accuracy against step (train, validation, held-out) to a PNG.

    Parameters
    ----------
    history : list of dict
        Rows as in a training run's ``metrics.csv`` (:mod:`openl3lite.training.logs`): ``step``
        and any of ``train_loss``, ``val_loss``, ``heldout_loss`` (nats) and ``train_acc``,
        ``val_acc``, ``heldout_acc`` (None where not computed).
    path : str
        PNG file (1000 x 400 pixels), replaced atomically.
    """
    plt = _pyplot()
    steps = [row["step"] for row in history]

    def series(key):
        return [np.nan if row.get(key) is None else row[key] for row in history]

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, keys in ((ax_loss, ("train_loss", "val_loss", "heldout_loss")),
                     (ax_acc, ("train_acc", "val_acc", "heldout_acc"))):
        for key in keys:
            values = series(key)
            if not np.all(np.isnan(values)):
                ax.plot(steps, values, marker=".", label=key.split("_")[0])
        ax.axhline(0.5 if ax is ax_acc else np.log(2), color="grey", lw=0.8, ls=":",
                   label="chance")
        ax.grid(alpha=0.3)
        ax.legend()
    ax_loss.set(xlabel="step", ylabel="cross-entropy", title="AVC loss")
    ax_acc.set(xlabel="step", ylabel="accuracy", title="AVC accuracy")
    fig.tight_layout()
    _save(fig, path, dpi=100)
