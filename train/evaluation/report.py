"""Human-readable outputs of ``itemrec-eval``: the CMC plot, the score histogram, report.md."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def plot_cmc(results: dict[str, dict], path: Path, protocol: str = "seed_protocol") -> None:
    """One CMC curve per model (mean with a +-1 std band), like the original study's plot."""
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=110)
    for label, result in results.items():
        cmc = result[protocol]
        ranks, mean, std = cmc["ranks"], np.array(cmc["mean"]), np.array(cmc["std"])
        ax.plot(ranks, 100 * mean, marker="o", label=f"{label} (rank-1 {100 * mean[0]:.1f} %)")
        ax.fill_between(ranks, 100 * (mean - std), 100 * (mean + std), alpha=0.15)
    ax.set(xlabel="rank", ylabel="identification rate (%)", ylim=(0, 100), xticks=ranks)
    ax.set_title(f"CMC on unseen items ({protocol.replace('_', ' ')})")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_scores(result: dict, path: Path, label: str) -> None:
    """Genuine vs impostor similarity histograms with the recommended threshold."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    bins = np.linspace(-1, 1, 81)
    ax.hist(result["scores"]["genuine"], bins=bins, alpha=0.6, label="genuine (own item)")
    ax.hist(result["scores"]["impostor"], bins=bins, alpha=0.6, label="impostor (best other item)")
    threshold = result["verification"]["recommended_threshold"]
    ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="cosine similarity", ylabel="probes", title=f"Unknown-item rejection: {label}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markdown_report(results: dict[str, dict], data_dir: str) -> str:
    """A short Markdown summary: one row per model."""
    lines = [
        "# itemrec-eval report",
        "",
        f"Unseen items from `{data_dir}`. Seed protocol: one representative and one random "
        "probe per item, mean +- std over trials. All-probes: every other image is a probe.",
        "",
        "| model | items | rank-1 | rank-5 | rank-10 | all-probes rank-1 | mAP "
        "| TAR @ FAR 1 % | TAR @ FAR 0.1 % | EER | threshold (EER) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        cmc = r["seed_protocol"]
        cells = [f"{100 * cmc['mean'][k]:.1f} +- {100 * cmc['std'][k]:.1f}" for k in (0, 4, 9)]
        tars = {row["far"]: row["tar"] for row in r["verification"]["tar_at_far"]}
        lines.append(
            f"| {label} | {r['n_classes']} | "
            + " | ".join(cells)
            + f" | {100 * r['all_probes']['mean'][0]:.1f} | {r['mAP']:.3f} | "
            + " | ".join(f"{100 * tars[far]:.1f}" if far in tars else "-" for far in (0.01, 0.001))
            + f" | {100 * r['verification']['eer']:.1f} %"
            + f" | {r['verification']['recommended_threshold']:.3f} |"
        )
    return "\n".join(lines) + "\n"
