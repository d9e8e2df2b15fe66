"""The models the edge benchmark times: EfficientNet-Lite0 and InceptionV3, fp32 and int8.

Lite0 comes from ``bench_convert``'s run when it exists (trained on the sample, 96 px);
otherwise, like InceptionV3, it is untrained (``--weights none``: timing does not depend on
the weights) at its native size. Each is made with the real ``itemrec-train`` and
``itemrec-convert`` (calibration and verification cut short: only the graph matters here),
the two conversions of a backbone at once, and cached under ``build/bench_edge``.
"""

from __future__ import annotations

import json
from pathlib import Path

from commands import ROOT, SAMPLE_UNSEEN, run, run_batch, train_command

from itemrec.train.run_dir import RunDir

WORK = ROOT / "build" / "bench_edge"
CONVERTED = ROOT / "build" / "bench_convert" / "models"
QUICK_CONVERT = [
    "--calibration-images",
    "16",
    "--verify-data",
    SAMPLE_UNSEEN,
    "--verify-images",
    "16",
    "--latency-runs",
    "1",
    "--force",
]
QUANTIZATIONS = {"fp32": [], "int8": ["--int8"]}


def _untrained_run(backbone: str, size: int) -> Path:
    run_dir = WORK / f"{backbone}_{size}"
    if not RunDir(run_dir).embedder.exists():
        train = train_command(
            run_dir,
            backbone,
            size,
            "--weights",
            "none",
            "--frozen-epochs",
            0,
            "--finetune-epochs",
            0,
            "--val-classes",
            0,
        )
        if run(train) != 0:
            raise SystemExit(f"itemrec-train failed for {backbone}")
    return run_dir


def _converted(backbone: str, size: int) -> list[Path]:
    """fp32 and int8 ``.tflite`` of an untrained ``backbone``, converting what is missing."""
    models = {q: WORK / f"{backbone}_{size}_{q}.tflite" for q in QUANTIZATIONS}
    missing = [q for q, path in models.items() if not path.exists()]
    if missing:
        run_dir = _untrained_run(backbone, size)
        commands = {
            models[q].stem: ["itemrec-convert", run_dir, "-o", models[q], *QUANTIZATIONS[q]]
            + QUICK_CONVERT
            for q in missing
        }
        codes = run_batch(commands, WORK / "logs")
        if any(codes.values()):
            raise SystemExit(f"itemrec-convert failed for {backbone}")
    return list(models.values())


def lite0_int8_224() -> Path:
    """int8 EfficientNet-Lite0 at 224 px, the size a Pi runs (untrained, as above: memory and
    speed do not depend on the weights)."""
    WORK.mkdir(parents=True, exist_ok=True)
    return _converted("efficientnet_lite0", 224)[1]


def standard_models() -> list[Path]:
    """fp32 and int8 .tflite files of EfficientNet-Lite0 and InceptionV3 (299 px)."""
    WORK.mkdir(parents=True, exist_ok=True)
    lite0 = [CONVERTED / "float32.tflite", CONVERTED / "int8.tflite"]
    if not all(path.exists() for path in lite0):
        lite0 = _converted("efficientnet_lite0", 224)
    return lite0 + _converted("inception_v3", 299)


# Lite0 int8 at the sizes a Pi may run, trained on the sample: the demo's frozen phase only
# (10 epochs at 0.01, lambda 0.003, cached features: minutes, not the demo's quarter hour),
# so the sizes compare on one short schedule. Rank-1 is the converter's verification on the
# 100 unseen items (first image of each represents it, the other probes).
SIZED = ROOT / "build" / "bench_live"
SIZED_TRAINING = [
    *("--frozen-epochs", 10, "--finetune-epochs", 0, "--frozen-lr", 0.01),
    *("--center-lambda", 0.003, "--cache-features", "--val-classes", 0),
]
SIZED_CONVERT = [
    *("--int8", "--verify-data", SAMPLE_UNSEEN, "--verify-images", 200),
    *("--latency-runs", 1, "--threads", 1),
]


def lite0_int8_by_size(sizes) -> dict[int, tuple[Path, float, list[list]]]:
    """size -> (int8 .tflite, rank-1 on the unseen items, [train, convert] commands)."""
    SIZED.mkdir(parents=True, exist_ok=True)
    commands = {}
    for size in sizes:
        run_dir, model = SIZED / f"lite0_{size}", SIZED / f"lite0_{size}_int8.tflite"
        train = train_command(run_dir, "efficientnet_lite0", size, *SIZED_TRAINING)
        convert = ["itemrec-convert", run_dir, "-o", model, *SIZED_CONVERT]
        commands[size] = (model, [train, convert])
    missing_runs = {
        f"train_{s}": cmds[0]
        for s, (_, cmds) in commands.items()
        if not RunDir(SIZED / f"lite0_{s}").embedder.exists()
    }
    if missing_runs and any(run_batch(missing_runs, SIZED / "logs").values()):
        raise SystemExit("itemrec-train failed (build/bench_live/logs)")
    missing_models = {
        f"convert_{s}": cmds[1] for s, (model, cmds) in commands.items() if not model.exists()
    }
    if missing_models and any(run_batch(missing_models, SIZED / "logs").values()):
        raise SystemExit("itemrec-convert failed (build/bench_live/logs)")
    out = {}
    for size, (model, cmds) in commands.items():
        report = json.loads(model.with_name(model.stem + ".report.json").read_text())
        out[size] = (model, report["verification"]["rank1_tflite"], cmds)
    return out
