"""Figures: confusion matrices and 2-D embedding maps (matplotlib, no display needed)."""

import os

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    plt = _pyplot()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".tmp-{os.path.basename(path)}")
    try:
        fig.savefig(tmp, dpi=110, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)


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
