"""A small grey "faces-like" set from the development benchmark: the tiny-data stress case.

    python scripts/build_faces_like.py [--devdata build/devdata] [--out build/faceslike]

Like the AT&T/ORL faces on which the demo's old recipe collapsed while fine-tuning: few
classes, 10 grey 92 x 112 images each. Each class is one emoji of the dev benchmark's
training split; its images are its designers' drawings (3 or 4) plus jittered copies
(rotation, scale, shift, exposure) up to 10, in grey. 25 classes to train on
(``train/``), 15 others to evaluate (``unseen/``). Seeded; not committed (``build/``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import cv2
import numpy as np

from itemrec.edge_runtime.folders import scan_class_folders

WIDTH, HEIGHT, PER_CLASS = 92, 112, 10


def jittered(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` turned, scaled and shifted a little, with another exposure."""
    h, w = image.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-12, 12), rng.uniform(0.88, 1.1))
    matrix[:, 2] += rng.uniform(-0.06, 0.06, 2) * (w, h)
    moved = cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    return np.clip(moved * rng.uniform(0.75, 1.2) + rng.uniform(-15, 15), 0, 255).astype(np.uint8)


def grey_portrait(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    h, w = image.shape
    crop_w = int(h * WIDTH / HEIGHT)  # a portrait crop of the square drawing
    left = (w - crop_w) // 2
    return cv2.resize(image[:, left : left + crop_w], (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


@click.command()
@click.option("--devdata", default="build/devdata", type=click.Path(exists=True, path_type=Path))
@click.option("--out", default="build/faceslike", type=click.Path(path_type=Path))
@click.option("--train-classes", default=25, show_default=True)
@click.option("--unseen-classes", default=15, show_default=True)
@click.option("--seed", default=7, show_default=True)
def main(devdata: Path, out: Path, train_classes: int, unseen_classes: int, seed: int):
    rng = np.random.default_rng(seed)
    classes = scan_class_folders(devdata / "train")
    codes = sorted(code for code, files in classes.items() if len(files) >= 3)
    chosen = rng.choice(codes, size=train_classes + unseen_classes, replace=False)
    shutil.rmtree(out, ignore_errors=True)
    for index, code in enumerate(chosen):
        split = "train" if index < train_classes else "unseen"
        folder = out / split / code
        folder.mkdir(parents=True)
        drawings = [grey_portrait(p) for p in sorted(classes[code])]
        images = drawings + [
            jittered(drawings[i % len(drawings)], rng) for i in range(PER_CLASS - len(drawings))
        ]
        for n, image in enumerate(images):
            cv2.imwrite(str(folder / f"{n:02d}.png"), image)
    click.echo(
        f"wrote {train_classes} + {unseen_classes} classes x {PER_CLASS} grey images to {out}"
    )


if __name__ == "__main__":
    main()
