"""The development benchmark's builder (scripts/build_devdata.py) on tiny synthetic packages."""

from __future__ import annotations

import importlib.util
import json
import sys
import tarfile
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))  # build_devdata imports build_sample's helpers
_spec = importlib.util.spec_from_file_location("build_devdata", REPO / "scripts/build_devdata.py")
builder = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = builder
_spec.loader.exec_module(builder)
sys.path.remove(str(REPO / "scripts"))

# code points, short name, Unicode name; which designers draw it
EMOJI = [
    ("1F34E", "apple", "RED APPLE", "noto twemoji openmoji fluent"),
    ("1F44D", "+1", "THUMBS UP", "noto twemoji openmoji fluent"),
    ("1F528", "hammer", "HAMMER", "noto twemoji openmoji"),
    ("1F511", "key", "KEY", "noto twemoji openmoji fluent"),
    ("2764-FE0F", "heart", "HEAVY BLACK HEART", "noto twemoji openmoji"),
    ("1F36A", "cookie", "COOKIE", "noto twemoji openmoji"),
    ("1F4A1", "bulb", "ELECTRIC LIGHT BULB", "noto twemoji"),  # no OpenMoji: left out
]


def _svg(shade: int, tag: str = "svg", extra: str = "") -> str:
    return (
        f'<{tag} xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"{extra}>'
        f'<circle cx="16" cy="16" r="14" fill="rgb({shade},{255 - shade},90)"/></{tag}>'
    )


def _fake_packages(root: Path) -> dict[str, Path]:
    """npm-like `package/` folders laid out like the real ones (see build_devdata.DESIGNERS)."""
    dirs = {key: root / key / "package" for key in ("catalogue", "noto", "twemoji", "openmoji")}
    dirs["fluent"] = root / "fluent" / "package"
    for package in dirs.values():
        package.mkdir(parents=True)
        (package / "LICENSE").write_text(f"licence of {package.parent.name}\n")
    catalogue = [
        {
            "name": name,
            "short_name": short,
            "image": code.lower() + ".png",
            "category": "Objects",
            "has_img_google": True,
            "has_img_twitter": True,
        }
        for code, short, name, _ in EMOJI
    ]
    (dirs["catalogue"] / "emoji.json").write_text(json.dumps(catalogue))
    sprite = []
    for folder in (
        "openmoji/package/color/svg",
        "fluent/package/icons/flat",
        "noto/package/sprites",
    ):
        (root / folder).mkdir(parents=True)
    for i, (code, _, name, designers) in enumerate(EMOJI):
        if "noto" in designers:
            sprite.append(_svg(30 * i, extra=f' id="{code}"'))
        if "twemoji" in designers:  # Twemoji drops FE0F from single characters
            (dirs["twemoji"] / f"{code.lower().replace('-fe0f', '')}.svg").write_text(_svg(30 * i))
        if "openmoji" in designers:
            (root / "openmoji/package/color/svg" / f"{code}.svg").write_text(_svg(30 * i + 5))
        if "fluent" in designers:
            (root / "fluent/package/icons/flat" / f"{builder.slug(name)}.svg").write_text(_svg(9))
    (root / "noto/package/sprites/all.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg"><style>svg{}</style>' + "".join(sprite) + "</svg>"
    )
    return dirs


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_open_set_split_is_fixed_disjoint_and_byte_identical(tmp_path):
    packages = _fake_packages(tmp_path / "packages")
    first = builder.build_devdata(packages, tmp_path / "a", n_enrolled=2, n_unknown=1, seed=7)
    second = builder.build_devdata(packages, tmp_path / "b", n_enrolled=2, n_unknown=1, seed=7)
    assert first == second
    a = _tree_bytes(tmp_path / "a")
    assert a == _tree_bytes(tmp_path / "b")
    splits = {s: sorted(p.name for p in (tmp_path / "a" / s).iterdir()) for s in builder.SPLITS}
    assert [len(splits[s]) for s in ("train", "enrolled", "unknown")] == [3, 2, 1]
    assert sorted(sum(splits.values(), [])) == [
        "apple",
        "cookie",
        "hammer",
        "heart",
        "key",
        "plus1",
    ]
    assert first["classes"] == {"train": 3, "enrolled": 2, "unknown": 1}
    assert first["images_per_designer"] == {"noto": 6, "twemoji": 6, "openmoji": 6, "fluent": 3}
    # the Noto drawing is the first file, so it represents its class
    for split, codes in splits.items():
        for code in codes:
            names = sorted(p.name for p in (tmp_path / "a" / split / code).iterdir())
            assert names[:3] == ["0-noto.jpg", "1-twemoji.jpg", "2-openmoji.jpg"]
    image = cv2.imread(str(tmp_path / "a" / "train" / splits["train"][0] / "0-noto.jpg"))
    assert image.shape == (160, 160, 3)
    assert a["licenses/openmoji.LICENSE"] == b"licence of openmoji\n"
    assert "CC BY-SA 4.0" in a["LICENSES.md"].decode()


def test_another_seed_draws_another_split(tmp_path):
    packages = _fake_packages(tmp_path / "packages")
    splits = [
        builder.split_classes(
            builder.load_classes(packages["catalogue"]), n_enrolled=2, n_unknown=2, seed=seed
        )["unknown"]
        for seed in range(6)
    ]
    assert len({tuple(c.code for c in split) for split in splits}) > 1


def test_cli_builds_offline_from_tarballs_and_writes_the_manifest(tmp_path):
    packages = _fake_packages(tmp_path / "packages")
    tarballs = tmp_path / "tarballs"
    tarballs.mkdir()
    names = {"catalogue": "emoji-datasource-16.0.0"} | {
        d.key: d.package.lstrip("@").replace("/", "-").replace("@", "-") for d in builder.DESIGNERS
    }
    for key, package in packages.items():
        with tarfile.open(tarballs / f"{names[key]}.tgz", "w:gz") as archive:
            archive.add(package, arcname="package")
    out = tmp_path / "devdata"
    args = ["--tarballs", tarballs, "--out", out, "--enrolled", 1, "--unknown", 1]
    result = CliRunner().invoke(builder.main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == {"train": 4, "enrolled": 1, "unknown": 1}
    assert manifest["images"] == 21 and manifest["tarball_bytes"] > 0


def test_a_split_that_leaves_nothing_to_train_on_is_refused(tmp_path):
    packages = _fake_packages(tmp_path / "packages")
    with pytest.raises(builder.SampleBuildError, match="leave none of 6 for training"):
        builder.build_devdata(packages, tmp_path / "out", n_enrolled=3, n_unknown=3, seed=0)
