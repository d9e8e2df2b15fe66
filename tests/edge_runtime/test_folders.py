import pytest

from itemrec.edge_runtime.errors import InputError
from itemrec.edge_runtime.folders import flatten, scan_class_folders


def test_scan_sorts_classes_and_images_and_skips_non_images(tmp_path):
    for code, files in {"b": ["2.png", "1.JPG", "notes.txt"], "a": ["x.webp"], "empty": []}.items():
        (tmp_path / code).mkdir()
        for name in files:
            (tmp_path / code / name).write_bytes(b"")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "names.csv").write_text("code,name\n")
    classes = scan_class_folders(tmp_path)
    assert list(classes) == ["a", "b", "empty"]
    assert [p.name for p in classes["b"]] == ["1.JPG", "2.png"]
    assert classes["empty"] == []
    paths, labels = flatten(classes)
    assert [p.name for p in paths] == ["x.webp", "1.JPG", "2.png"] and labels == ["a", "b", "b"]


def test_missing_or_flat_folders_are_refused(tmp_path):
    with pytest.raises(InputError, match="not a directory"):
        scan_class_folders(tmp_path / "absent")
    (tmp_path / "img.png").write_bytes(b"")
    with pytest.raises(InputError, match="no class folders"):
        scan_class_folders(tmp_path)
