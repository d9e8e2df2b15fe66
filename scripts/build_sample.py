"""Build the bundled sample data set (`data/sample/`) from two vendors' emoji images.

Every class is one emoji; its two images are the Google (Noto, Apache-2.0) and the
Twitter (Twemoji, CC-BY-4.0) drawings, composited like a product photographed on a
shelf. The same object drawn by two vendors looks like one product in two package
designs. Rebuilds are byte-stable: every random choice is seeded from `--seed` and the
file's own name.

    python scripts/build_sample.py                       # fetches the tarballs with npm
    python scripts/build_sample.py --tarball google=emoji-datasource-google-16.0.0.tgz \\
        --tarball twitter=emoji-datasource-twitter-16.0.0.tgz   # offline rebuild
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

import click
import numpy as np
from PIL import Image

VENDORS = ("google", "twitter")
PACKAGE_VERSION = "16.0.0"
EXCLUDED_CATEGORIES = frozenset({"Flags", "Symbols", "Component"})
IMAGE_SIZE = 96
EMOJI_SIZE_RANGE = (56, 80)  # inclusive, pixels
MAX_OFFSET = 6  # pixels from the centre, each axis
JPEG_QUALITY = 90
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "data" / "sample"
# The Apache-2.0 text is not in the tarballs; it is committed with the data set.
APACHE_TEXT = DEFAULT_OUT / "licenses" / "Apache-2.0.txt"


class SampleBuildError(Exception):
    """A missing or malformed input; the message names the file."""


@dataclass(frozen=True)
class EmojiClass:
    code: str  # filesystem-safe short name: the class folder's name
    name: str  # human name, title-cased
    image: str  # file name under img/<vendor>/64/


def package_name(vendor: str) -> str:
    return f"emoji-datasource-{vendor}"


def safe_code(short_name: str) -> str:
    """Lowercase `short_name`, keep only [a-z0-9_-], never start with '-'.

    '+1' -> 'plus1', '-1' -> 'minus1', 'Ok Hand!' -> 'ok_hand'.
    """
    code = re.sub(r"^-", "minus", short_name.lower()).replace("+", "plus")
    return re.sub(r"[^a-z0-9_-]+", "_", code).strip("_")


def load_classes(package_dir: Path) -> list[EmojiClass]:
    """Emoji outside Flags/Symbols/Component that both vendors draw, in emoji.json order.

    A code that two emoji would share after `safe_code` keeps only the first one.
    """
    catalogue = package_dir / "emoji.json"
    try:
        entries = json.loads(catalogue.read_text(encoding="utf-8"))
        classes: dict[str, EmojiClass] = {}
        for entry in entries:
            if entry["category"] in EXCLUDED_CATEGORIES:
                continue
            if not all(entry.get(f"has_img_{vendor}") for vendor in VENDORS):
                continue
            code = safe_code(entry["short_name"])
            if code and code not in classes:
                classes[code] = EmojiClass(code, entry["name"].title(), entry["image"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise SampleBuildError(f"{catalogue}: not a readable emoji catalogue ({error!r})") from None
    return list(classes.values())


def select_classes(
    classes: list[EmojiClass], n_train: int, n_unseen: int, seed: int
) -> tuple[list[EmojiClass], list[EmojiClass]]:
    """Draw n_train + n_unseen distinct classes with `seed`; each split sorted by code."""
    wanted = n_train + n_unseen
    if wanted > len(classes):
        raise SampleBuildError(f"asked for {wanted} classes, the catalogue has {len(classes)}")
    drawn = random.Random(seed).sample(classes, wanted)
    by_code = attrgetter("code")
    return sorted(drawn[:n_train], key=by_code), sorted(drawn[n_train:], key=by_code)


def file_seed(seed: int, relative_path: str) -> int:
    """A 64-bit seed from the global seed and a file's path inside the data set."""
    digest = hashlib.sha256(f"{seed}:{relative_path}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def shelf_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """size x size x 3 float32: a light colour, a gentle linear gradient, mild noise."""
    base = rng.uniform(175.0, 240.0, size=3)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    strength = rng.uniform(6.0, 18.0)  # grey levels from the centre to an edge
    coords = (np.arange(size, dtype=np.float64) - (size - 1) / 2.0) / (size / 2.0)
    ramp = np.cos(angle) * coords[None, :] + np.sin(angle) * coords[:, None]
    noise = rng.normal(0.0, 2.5, size=(size, size, 3))
    return (base[None, None, :] + strength * ramp[:, :, None] + noise).astype(np.float32)


def compose_product(
    emoji: Image.Image, rng: np.random.Generator, size: int = IMAGE_SIZE
) -> Image.Image:
    """Alpha-composite `emoji` (RGBA), scaled and shifted at random, onto a shelf background.

    At `size` 96 the emoji is 56-80 px and up to 6 px off the centre; other sizes scale both.
    """
    canvas = shelf_background(rng, size)
    # The emoji's size and offset keep their proportion of the frame at any image size.
    low, high, offset = (round(v * size / IMAGE_SIZE) for v in (*EMOJI_SIZE_RANGE, MAX_OFFSET))
    side = int(rng.integers(low, high + 1))
    dx, dy = (int(v) for v in rng.integers(-offset, offset + 1, size=2))
    # Resize premultiplied so transparent pixels' colours do not bleed into the edges.
    scaled = emoji.convert("RGBA").convert("RGBa").resize((side, side), Image.Resampling.LANCZOS)
    premultiplied = np.asarray(scaled, dtype=np.float32)
    alpha = premultiplied[:, :, 3:] / 255.0
    left = min(max((size - side) // 2 + dx, 0), size - side)
    top = min(max((size - side) // 2 + dy, 0), size - side)
    window = canvas[top : top + side, left : left + side]
    window[:] = premultiplied[:, :, :3] + window * (1.0 - alpha)
    return Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), "RGB")


def encode_jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False)
    return buffer.getvalue()


def render_class(
    item: EmojiClass, split: str, package_dirs: dict[str, Path], out_dir: Path, seed: int
) -> None:
    """Write <split>/<code>/<vendor>.jpg for every vendor."""
    for vendor in VENDORS:
        source = package_dirs[vendor] / "img" / vendor / "64" / item.image
        relative = f"{split}/{item.code}/{vendor}.jpg"
        try:
            with Image.open(source) as emoji:
                emoji.load()
                product = compose_product(emoji, np.random.default_rng(file_seed(seed, relative)))
        except OSError as error:
            raise SampleBuildError(f"{source}: cannot read the emoji image ({error})") from None
        target = out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(encode_jpeg(product))


def write_names(path: Path, classes: list[EmojiClass]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["code", "name"])
        for item in sorted(classes, key=attrgetter("code")):
            writer.writerow([item.code, item.name])


LICENSES_TEXT = """\
# Licences of the sample images

Every image in `train/` and `unseen/` is derived from one emoji image of the npm packages
`emoji-datasource-google@{version}` and `emoji-datasource-twitter@{version}`
(<https://github.com/iamcal/emoji-data>), file `img/<vendor>/64/<codepoints>.png`.

## `google.jpg`: Google Noto Emoji

Copyright Google Inc. Noto Emoji images (<https://github.com/googlefonts/noto-emoji>), licensed
under the Apache License, Version 2.0 (<https://www.apache.org/licenses/LICENSE-2.0>); the full
text is in `licenses/Apache-2.0.txt`. Flags, whose Noto images have a different licence, are
not included.

## `twitter.jpg`: Twemoji

Copyright 2019 Twitter, Inc and other contributors; graphics licensed under CC-BY 4.0
(<https://creativecommons.org/licenses/by/4.0/>). Source: Twemoji
(<https://github.com/jdecked/twemoji>, graphics licence `LICENSE-GRAPHICS`).

## What was changed

Each 64x64 RGBA emoji was resized (Lanczos, to a random 56-80 px square), alpha-composited
onto a generated light background with a gradient and noise, shifted off the centre by a few
pixels, and saved as a 96x96 RGB JPEG (quality 90). Class codes and names come from the
packages' `emoji.json`. The changes were made by `scripts/build_sample.py` of itemrec.

## The packages' own licence

The packages' code and `emoji.json` (emoji-data, Copyright (c) 2013 Cal Henderson) are under
the MIT licence; the packages' `LICENSE` files are copied to `licenses/`.
"""

README_TEXT = """\
# Sample data set: {n_classes} emoji "products"

A small real-image data set for tests, demos and quick experiments. Each class is one emoji;
its two images are the Google (Noto) and the Twitter (Twemoji) drawings of it, each
composited onto a light shelf-like background (random colour, gradient, noise; emoji
56-80 px, a few pixels off the centre). The same object drawn by two vendors looks like one
product in two package designs.

## Layout

    train/<code>/google.jpg, train/<code>/twitter.jpg     {n_train} classes for training
    unseen/<code>/google.jpg, unseen/<code>/twitter.jpg   {n_unseen} other classes, never
                                                          used in training: evaluation and
                                                          the gallery demo
    names.csv                                             code,name for every class
    LICENSES.md, licenses/                                image licences and attribution

Images are 96x96 RGB JPEG (quality 90). `<code>` is the emoji's short name, lowercase,
[a-z0-9_-] only.

## Rebuilding

    python scripts/build_sample.py --seed {seed} --train {n_train} --unseen {n_unseen}

fetches `emoji-datasource-google@{version}` and `emoji-datasource-twitter@{version}` with
`npm pack`; offline, pass the tarballs:

    python scripts/build_sample.py --tarball google=emoji-datasource-google-{version}.tgz \\
        --tarball twitter=emoji-datasource-twitter-{version}.tgz

The output is byte-identical for the same packages, seed and Pillow/libjpeg.
"""


def build_dataset(
    package_dirs: dict[str, Path], out_dir: Path, n_train: int, n_unseen: int, seed: int
) -> tuple[list[EmojiClass], list[EmojiClass]]:
    """Write the whole data set into `out_dir` from unpacked packages (one dir per vendor).

    Each package dir holds `emoji.json`, `img/<vendor>/64/*.png` and optionally `LICENSE`.
    `train/` and `unseen/` are replaced; other files in `out_dir` are overwritten or kept.
    """
    classes = load_classes(package_dirs[VENDORS[0]])
    train, unseen = select_classes(classes, n_train, n_unseen, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, items in (("train", train), ("unseen", unseen)):
        shutil.rmtree(out_dir / split, ignore_errors=True)
        for item in items:
            render_class(item, split, package_dirs, out_dir, seed)
    write_names(out_dir / "names.csv", train + unseen)
    (out_dir / "LICENSES.md").write_text(LICENSES_TEXT.format(version=PACKAGE_VERSION))
    (out_dir / "README.md").write_text(
        README_TEXT.format(
            n_classes=n_train + n_unseen,
            n_train=n_train,
            n_unseen=n_unseen,
            seed=seed,
            version=PACKAGE_VERSION,
        )
    )
    (out_dir / "licenses").mkdir(exist_ok=True)
    if APACHE_TEXT.is_file() and not (out_dir / "licenses" / APACHE_TEXT.name).exists():
        shutil.copyfile(APACHE_TEXT, out_dir / "licenses" / APACHE_TEXT.name)
    for vendor in VENDORS:
        licence = package_dirs[vendor] / "LICENSE"
        if licence.is_file():
            shutil.copyfile(licence, out_dir / "licenses" / f"{package_name(vendor)}.LICENSE")
    return train, unseen


def npm_pack_spec(spec: str, dest: Path) -> Path:
    """Download the npm package `spec` (`name@version`) into `dest`; the tarball's path."""
    try:
        done = subprocess.run(
            ["npm", "pack", "--json", spec], cwd=dest, check=True, capture_output=True, text=True
        )
        return dest / json.loads(done.stdout)[0]["filename"]
    except (OSError, subprocess.CalledProcessError, ValueError, LookupError) as error:
        raise SampleBuildError(f"npm pack {spec} failed ({error})") from None


def npm_pack(vendor: str, dest: Path) -> Path:
    """Download `emoji-datasource-<vendor>@PACKAGE_VERSION` into `dest` with `npm pack`."""
    return npm_pack_spec(f"{package_name(vendor)}@{PACKAGE_VERSION}", dest)


def extract(tarball: Path, dest: Path, wanted: Callable[[str], bool]) -> Path:
    """Extract the files of an npm tarball whose member name passes `wanted`; `dest/package`."""
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            members = [m for m in archive.getmembers() if m.isfile() and wanted(m.name)]
            archive.extractall(dest, members=members, filter="data")
    except (OSError, tarfile.TarError) as error:
        raise SampleBuildError(f"{tarball}: not a readable npm tarball ({error})") from None
    return dest / "package"


def unpack(tarball: Path, vendor: str, dest: Path) -> Path:
    """Extract emoji.json, LICENSE and img/<vendor>/64/ of an npm tarball; return `package/`."""
    wanted = ("package/emoji.json", "package/LICENSE")
    images = f"package/img/{vendor}/64/"
    package = extract(tarball, dest, lambda name: name in wanted or name.startswith(images))
    if not (package / "emoji.json").is_file():
        raise SampleBuildError(f"{tarball}: has no package/emoji.json")
    return package


def parse_tarballs(values: tuple[str, ...]) -> dict[str, Path]:
    tarballs = {}
    for value in values:
        vendor, sep, path = value.partition("=")
        if not sep or vendor not in VENDORS:
            raise click.BadParameter(
                f"expected VENDOR=PATH with VENDOR in {VENDORS}, got {value!r}"
            )
        tarballs[vendor] = Path(path)
    return tarballs


@click.command(help=__doc__.split("\n\n")[0])
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Data set folder to write.",
)
@click.option(
    "--tarball",
    "tarballs",
    multiple=True,
    metavar="VENDOR=PATH",
    help="Use a downloaded npm tarball (google=..., twitter=...) instead of `npm pack`.",
)
@click.option("--train", "n_train", default=300, show_default=True, help="Training classes.")
@click.option("--unseen", "n_unseen", default=100, show_default=True, help="Unseen classes.")
@click.option("--seed", default=2024, show_default=True, help="Seed of every random choice.")
def main(out_dir: Path, tarballs: tuple[str, ...], n_train: int, n_unseen: int, seed: int) -> None:
    given = parse_tarballs(tarballs)
    try:
        with tempfile.TemporaryDirectory(prefix="itemrec-sample-") as tmp:
            work = Path(tmp)
            package_dirs = {}
            for vendor in VENDORS:
                tarball = given.get(vendor) or npm_pack(vendor, work)
                package_dirs[vendor] = unpack(tarball, vendor, work / vendor)
            train, unseen = build_dataset(package_dirs, out_dir, n_train, n_unseen, seed)
    except SampleBuildError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    click.echo(f"wrote {len(train)} train + {len(unseen)} unseen classes to {out_dir}")


if __name__ == "__main__":
    main()
