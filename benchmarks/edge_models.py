"""The models the edge benchmark times: EfficientNet-Lite0 and InceptionV3, fp32 and int8.

Lite0 comes from ``bench_convert``'s run when it exists (trained on the sample, 96 px);
InceptionV3 is untrained (``--weights none``: timing does not depend on the weights) at its
native 299 px. Each is made with the real ``itemrec-train`` and ``itemrec-convert`` and
cached under ``build/bench_edge``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORK = ROOT / "build" / "bench_edge"
CONVERTED = ROOT / "build" / "bench_convert" / "models"
TRAIN_DATA = ROOT / "data" / "sample" / "train"
UNSEEN = ROOT / "data" / "sample" / "unseen"
QUICK_CONVERT = [
    "--calibration-images",
    "32",
    "--verify-data",
    str(UNSEEN),
    "--verify-images",
    "16",
    "--force",
]


def _run(args: list) -> None:
    args = [str(a) for a in args]
    print("$ " + " ".join(args), file=sys.stderr, flush=True)
    subprocess.run(args, cwd=ROOT, check=True)


def _untrained_run(backbone: str, size: int) -> Path:
    run = WORK / f"{backbone}_{size}"
    if not (run / "embedder.keras").exists():
        _run(
            [
                BIN / "itemrec-train",
                "--data",
                TRAIN_DATA,
                "--out",
                run,
                "--backbone",
                backbone,
                "--weights",
                "none",
                "--image-size",
                size,
                "--frozen-epochs",
                0,
                "--finetune-epochs",
                0,
                "--val-classes",
                0,
            ]
        )
    return run


def _converted(run: Path, name: str, flags: list) -> Path:
    model = WORK / f"{name}.tflite"
    if not model.exists():
        _run([BIN / "itemrec-convert", run, "-o", model, *flags, *QUICK_CONVERT])
    return model


def standard_models() -> list[Path]:
    """fp32 and int8 .tflite files of EfficientNet-Lite0 and InceptionV3 (299 px)."""
    WORK.mkdir(parents=True, exist_ok=True)
    if (CONVERTED / "float32.tflite").exists() and (CONVERTED / "int8.tflite").exists():
        lite0 = [CONVERTED / "float32.tflite", CONVERTED / "int8.tflite"]
    else:
        run = _untrained_run("efficientnet_lite0", 224)
        lite0 = [
            _converted(run, "lite0_224_fp32", []),
            _converted(run, "lite0_224_int8", ["--int8"]),
        ]
    inception = _untrained_run("inception_v3", 299)
    return lite0 + [
        _converted(inception, "inception_v3_299_fp32", []),
        _converted(inception, "inception_v3_299_int8", ["--int8"]),
    ]
