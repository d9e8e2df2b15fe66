"""Figures of a run: the loss curves, the deep-feature scatter per epoch and its animation."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

LOSS_TERMS = ("softmax_loss", "center_loss", "triplet_loss")


def pca_2d(features) -> np.ndarray:
    """Project rows of ``features`` on their first two principal components (numpy SVD).

    Each component's sign is fixed (largest loading positive) so frames do not flip.
    """
    x = np.asarray(features, np.float64)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    components = vt[:2]
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    projected = x @ (components * signs[:, None]).T
    if projected.shape[1] < 2:  # a single feature dimension
        projected = np.pad(projected, ((0, 0), (0, 2 - projected.shape[1])))
    return projected


def plot_scatter(points, labels, names, title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 5), dpi=80)
    cmap = plt.get_cmap("tab10")
    for i, label in enumerate(np.unique(labels)):
        mask = labels == label
        ax.scatter(points[mask, 0], points[mask, 1], s=14, color=cmap(i % 10), label=names[label])
    ax.set_title(title)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_losses(history: list[dict], path: Path) -> None:
    """Per-epoch loss terms (left axis) and validation rank-1 (right axis, if any)."""
    epochs = [entry["global_epoch"] + 1 for entry in history]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=80)
    for term in LOSS_TERMS:
        values = [entry.get(term) for entry in history]
        if any(v is not None for v in values):
            ax.plot(epochs, values, marker="o", label=term.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ranks = [entry.get("val_rank1") for entry in history]
    if any(r is not None for r in ranks):
        right = ax.twinx()
        right.plot(epochs, ranks, color="black", linestyle="--", label="val rank-1")
        right.set_ylabel("validation rank-1")
        right.set_ylim(0, 1)
        right.legend(loc="upper right", fontsize=8)
    switch = [
        e["global_epoch"] + 1 for e in history if e["phase"] == "finetune" and e["epoch"] == 0
    ]
    for x in switch:
        ax.axvline(x - 0.5, color="grey", linewidth=0.8)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_gif(frames: list[Path], path: Path, ms_per_frame: int = 600) -> bool:
    """Animate the PNG ``frames`` into ``path``; False when there are none."""
    if not frames:
        return False
    images = [Image.open(frame).convert("RGB") for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)
    return True
