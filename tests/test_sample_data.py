"""The bundled sample data set (data/sample/) and its builder (scripts/build_sample.py)."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
SPLITS = {"train": 300, "unseen": 100}
VENDOR_FILES = ["google.jpg", "twitter.jpg"]


def _load_builder():
    spec = importlib.util.spec_from_file_location(
        "build_sample", REPO / "scripts" / "build_sample.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


builder = _load_builder()


def _class_dirs(split: str) -> list[Path]:
    return sorted(p for p in (SAMPLE / split).iterdir() if p.is_dir())


def _all_images() -> list[Path]:
    return [d / name for split in SPLITS for d in _class_dirs(split) for name in VENDOR_FILES]


# --- the committed data set -------------------------------------------------------------


def test_split_sizes_are_300_train_and_100_unseen_disjoint():
    codes = {split: {d.name for d in _class_dirs(split)} for split in SPLITS}
    assert {split: len(c) for split, c in codes.items()} == SPLITS
    assert codes["train"].isdisjoint(codes["unseen"])
    for code in codes["train"] | codes["unseen"]:
        assert code == builder.safe_code(code), code
        assert not code.startswith("-"), code


def test_every_class_has_exactly_two_decodable_96px_rgb_images():
    for split in SPLITS:
        for class_dir in _class_dirs(split):
            assert sorted(p.name for p in class_dir.iterdir()) == VENDOR_FILES, class_dir
            for name in VENDOR_FILES:
                image = cv2.imread(str(class_dir / name), cv2.IMREAD_UNCHANGED)
                assert image is not None, class_dir / name
                assert image.shape == (96, 96, 3) and image.dtype == np.uint8, class_dir / name


def test_names_csv_covers_every_code_once_with_a_title_cased_name():
    with (SAMPLE / "names.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["code", "name"]
    names = dict(rows[1:])
    assert len(names) == len(rows) - 1 == 400
    assert set(names) == {d.name for split in SPLITS for d in _class_dirs(split)}
    assert all(name and name == name.title() for name in names.values())


def test_backgrounds_are_light_and_differ_from_the_emoji_at_the_centre():
    corner_min, centre_gaps = [], []
    for path in _all_images():
        image = cv2.imread(str(path)).astype(np.float64)
        corner_min.append(image[:2, :2].min())  # the emoji never reaches the 2 px border
        centre_mean = image[40:56, 40:56].reshape(-1, 3).mean(axis=0)
        centre_gaps.append(np.abs(image[0, 0] - centre_mean).max())
    assert len(centre_gaps) == 800
    assert min(corner_min) >= 140  # light colour 175..240, gradient <= 18, mild noise
    # A few white objects (a clock face) nearly match their background; nearly all differ.
    assert np.mean(np.array(centre_gaps) > 12) >= 0.95
    assert np.median(centre_gaps) > 60


def test_the_two_vendors_draw_each_class_differently():
    gaps = []
    for split in SPLITS:
        for class_dir in _class_dirs(split):
            google, twitter = (
                cv2.imread(str(class_dir / n)).astype(np.float64) for n in VENDOR_FILES
            )
            gaps.append(np.abs(google - twitter).mean())
    assert min(gaps) > 5


def test_licences_and_readme_are_present():
    licences = (SAMPLE / "LICENSES.md").read_text(encoding="utf-8")
    assert "Apache License, Version 2.0" in licences
    assert "Copyright 2019 Twitter, Inc and other contributors" in licences
    assert "CC-BY 4.0" in licences
    assert "Apache License" in (SAMPLE / "licenses" / "Apache-2.0.txt").read_text()
    for vendor in ("google", "twitter"):
        assert (SAMPLE / "licenses" / f"emoji-datasource-{vendor}.LICENSE").stat().st_size > 0
    assert "scripts/build_sample.py" in (SAMPLE / "README.md").read_text(encoding="utf-8")


# --- the builder on a tiny synthetic package -------------------------------------------

CATALOGUE = [
    {"name": "RED APPLE", "short_name": "apple", "image": "1f34e.png", "category": "Food & Drink"},
    {"name": "THUMBS UP", "short_name": "+1", "image": "1f44d.png", "category": "People & Body"},
    {"name": "HAMMER", "short_name": "hammer", "image": "1f528.png", "category": "Objects"},
    {"name": "FLAG", "short_name": "flag-eg", "image": "1f1ea.png", "category": "Flags"},
    {"name": "KEY", "short_name": "key", "image": "1f511.png", "category": "Objects", "twitter": 0},
]


def _fake_packages(root: Path) -> dict[str, Path]:
    """One npm-like `package/` folder per vendor: emoji.json, LICENSE, img/<vendor>/64/*.png."""
    dirs = {}
    for vendor in builder.VENDORS:
        package = root / vendor / "package"
        images = package / "img" / vendor / "64"
        images.mkdir(parents=True)
        entries = []
        for i, entry in enumerate(CATALOGUE):
            has_twitter = entry.get("twitter", 1) == 1
            entries.append(
                {
                    "name": entry["name"],
                    "short_name": entry["short_name"],
                    "image": entry["image"],
                    "category": entry["category"],
                    "has_img_google": True,
                    "has_img_twitter": has_twitter,
                }
            )
            if vendor == "google" or has_twitter:
                shade = 40 * i + (0 if vendor == "google" else 20)
                Image.new("RGBA", (64, 64), (shade, 255 - shade, 128, 255)).save(
                    images / entry["image"]
                )
        (package / "emoji.json").write_text(json.dumps(entries))
        (package / "LICENSE").write_text(f"MIT licence of the {vendor} package\n")
        dirs[vendor] = package
    return dirs


def _tree_bytes(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_safe_code_spells_signs_and_drops_other_characters():
    assert builder.safe_code("+1") == "plus1"
    assert builder.safe_code("-1") == "minus1"
    assert builder.safe_code("Man-Woman Boy!") == "man-woman_boy"
    assert builder.safe_code("t-rex") == "t-rex"


def test_load_classes_keeps_only_both_vendor_non_flag_emoji(tmp_path):
    packages = _fake_packages(tmp_path)
    classes = builder.load_classes(packages["google"])
    assert [(c.code, c.name, c.image) for c in classes] == [
        ("apple", "Red Apple", "1f34e.png"),
        ("plus1", "Thumbs Up", "1f44d.png"),
        ("hammer", "Hammer", "1f528.png"),
    ]


def test_builder_is_byte_identical_across_runs_and_splits_disjointly(tmp_path):
    packages = _fake_packages(tmp_path / "packages")
    first = builder.build_dataset(packages, tmp_path / "a", n_train=2, n_unseen=1, seed=7)
    second = builder.build_dataset(packages, tmp_path / "b", n_train=2, n_unseen=1, seed=7)
    assert first == second
    a, b = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert a == b
    train, unseen = first
    assert len(train) == 2 and len(unseen) == 1
    assert {c.code for c in train + unseen} == {"apple", "plus1", "hammer"}
    jpgs = sorted(k for k in a if k.endswith(".jpg"))
    assert len(jpgs) == 6 and len({a[k] for k in jpgs}) == 6  # every file has its own seed
    names = "code,name\napple,Red Apple\nhammer,Hammer\nplus1,Thumbs Up\n"
    assert a["names.csv"].decode() == names
    assert a["licenses/emoji-datasource-twitter.LICENSE"] == b"MIT licence of the twitter package\n"
    assert a["licenses/Apache-2.0.txt"] == (SAMPLE / "licenses" / "Apache-2.0.txt").read_bytes()


def test_compose_product_alpha_composites_premultiplied_emoji_over_the_background():
    seed = 11
    background = builder.shelf_background(np.random.default_rng(seed), 96)
    half_blue = Image.new("RGBA", (64, 64), (0, 0, 255, 128))
    product = np.asarray(builder.compose_product(half_blue, np.random.default_rng(seed)))
    a = 128 / 255
    # out = emoji * a + background * (1 - a) where the emoji covers (the 48..50 px centre
    # is inside the emoji for any size 56..80 and offset <= 6).
    expected = np.array([0.0, 0.0, 255.0]) * a + background[48, 48] * (1 - a)
    np.testing.assert_allclose(product[48, 48], expected, atol=1.0)
    np.testing.assert_allclose(product[0, 0], background[0, 0], atol=0.5)
    assert product.shape == (96, 96, 3) and product.dtype == np.uint8


def test_shelf_background_is_light_with_a_gentle_gradient():
    background = builder.shelf_background(np.random.default_rng(3), 96)
    assert background.shape == (96, 96, 3)
    assert 140 <= background.min() and background.max() <= 275
    colour_spread = background.reshape(-1, 3).std(axis=0)
    assert np.all(colour_spread < 15) and np.all(colour_spread > 1)


def test_cli_builds_from_tarballs_offline(tmp_path):
    packages = _fake_packages(tmp_path / "packages")
    args = []
    for vendor, package in packages.items():
        tarball = tmp_path / f"{vendor}.tgz"
        with tarfile.open(tarball, "w:gz") as archive:
            archive.add(package, arcname="package")
        args += ["--tarball", f"{vendor}={tarball}"]
    out = tmp_path / "sample"
    result = CliRunner().invoke(
        builder.main, [*args, "--out", str(out), "--train", "1", "--unseen", "2", "--seed", "5"]
    )
    assert result.exit_code == 0, result.output
    assert len(list((out / "train").iterdir())) == 1 and len(list((out / "unseen").iterdir())) == 2
    image = cv2.imread(str(next((out / "unseen").iterdir()) / "twitter.jpg"))
    assert image.shape == (96, 96, 3)


def test_cli_reports_a_broken_tarball_in_one_line(tmp_path):
    broken = tmp_path / "google.tgz"
    broken.write_bytes(b"not a tarball")
    result = CliRunner().invoke(
        builder.main,
        [
            "--tarball",
            f"google={broken}",
            "--tarball",
            f"twitter={broken}",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and str(broken) in result.output


def test_too_many_classes_is_a_clear_error(tmp_path):
    packages = _fake_packages(tmp_path)
    with pytest.raises(builder.SampleBuildError, match="asked for 4 classes, the catalogue has 3"):
        builder.build_dataset(packages, tmp_path / "out", n_train=3, n_unseen=1, seed=0)
