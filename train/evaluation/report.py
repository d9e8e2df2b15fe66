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
    """Genuine vs impostor similarity densities with the recommended threshold."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    bins = np.linspace(-1, 1, 81)
    scores = result["scores"]
    for key, name in (
        ("open_set_genuine", "genuine (own item)"),
        ("unknown", "unknown item (not in the gallery)"),
        ("impostor", "best other enrolled item"),
    ):
        ax.hist(scores[key], bins=bins, alpha=0.5, density=True, label=name)
    threshold = result["recommended_threshold"]
    ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="cosine similarity", ylabel="density", title=f"Unknown-item rejection: {label}")
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
        "Open set: probes of items *not in the gallery* are the impostors; the threshold is "
        "its equal-error one, and DIR is the share of known items identified and accepted "
        "there. Best other item: the earlier protocol's impostor (another enrolled item).",
        "",
        "| model | items | rank-1 | rank-5 | rank-10 | all-probes rank-1 | mAP "
        "| open-set EER | TAR @ FAR 1 % | TAR @ FAR 0.1 % | threshold | DIR there "
        "| EER (best other item) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        cmc = r["seed_protocol"]
        cells = [f"{100 * cmc['mean'][k]:.1f} +- {100 * cmc['std'][k]:.1f}" for k in (0, 4, 9)]
        open_set = r["open_set"]
        tars = {row["far"]: row["tar"] for row in open_set["tar_at_far"]}
        lines.append(
            f"| {label} | {r['n_classes']} | "
            + " | ".join(cells)
            + f" | {100 * r['all_probes']['mean'][0]:.1f} | {r['mAP']:.3f}"
            + f" | {100 * open_set['eer']:.1f} % | "
            + " | ".join(f"{100 * tars[far]:.1f}" if far in tars else "-" for far in (0.01, 0.001))
            + f" | {r['recommended_threshold']:.3f}"
            + f" | {100 * open_set['at_threshold']['identification_rate']:.1f} %"
            + f" | {100 * r['verification']['eer']:.1f} % |"
        )
    first = next(iter(results.values()))["open_set"]
    lines += [
        "",
        f"Open-set impostors: {first['impostors']} ({first['unknown_items']} unknown, "
        f"{first['enrolled_items']} enrolled items, {first['trials']} draw(s)).",
    ]
    return "\n".join(lines) + "\n"
