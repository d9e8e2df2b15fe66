"""The conversion report: JSON beside the model, and a one-table summary for the terminal."""

from __future__ import annotations

import json
from pathlib import Path

COLUMNS = (
    ("variant", "variant"),
    ("size", "size MB"),
    ("cos_mean", "cos mean"),
    ("cos_min", "cos min"),
    ("rank1_keras", "rank-1 Keras"),
    ("rank1_tflite", "rank-1 TFLite"),
    ("variance", "emb. variance"),
    ("latency", "ms/image"),
    ("integer", "integer graph"),
    ("status", "status"),
)


def row(report: dict) -> dict:
    """The table's cells for one report."""
    v = report["verification"]
    label = report["variant"] + (
        f"+prune{report['pruning']['target_sparsity']:g}" if "pruning" in report else ""
    )
    return {
        "variant": label,
        "size": f"{v['size_bytes'] / 1e6:.2f}",
        "cos_mean": f"{v['cosine_mean']:.4f}",
        "cos_min": f"{v['cosine_min']:.4f}",
        "rank1_keras": f"{100 * v['rank1_keras']:.1f} %",
        "rank1_tflite": f"{100 * v['rank1_tflite']:.1f} %",
        "variance": f"{v['embedding_variance_keras']:.3f}"
        if "embedding_variance_keras" in v
        else "-",
        "latency": f"{v['latency_ms_median']:.2f} ({v['threads']} thr)",
        "integer": "yes" if report["graph"]["integer"] else "no",
        "status": ("pass" if report["passed"] else "FAIL")
        + ("" if report["written"] else ", not written"),
    }


def markdown_table(reports: list[dict]) -> str:
    """A Markdown table, one row per report."""
    lines = [
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for report in reports:
        cells = row(report)
        lines.append("| " + " | ".join(cells[key] for key, _ in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def write_report(report: dict, path: Path) -> None:
    Path(path).write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")
