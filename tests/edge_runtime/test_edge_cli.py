"""``itemrec-edge`` gallery maintenance commands, help texts and one-line errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from edge_helpers import FP32_MODEL, INT8_MODEL, build_args

from itemrec.edge_runtime.cli import main
from itemrec.edge_runtime.errors import ExitCode
from itemrec.edge_runtime.gallery import Gallery


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["gallery"],
        ["gallery", "build"],
        ["gallery", "add"],
        ["gallery", "remove"],
        ["gallery", "list"],
        ["gallery", "set-threshold"],
        ["gallery", "export"],
        ["gallery", "import"],
        ["serve"],
        ["identify"],
        ["run"],
        ["enroll"],
    ],
)
def test_every_command_has_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0 and "Usage: " in result.output


def test_build_list_add_remove_threshold_export(tmp_path, class_folders, names_csv):
    db = tmp_path / "g.db"
    assert invoke(*build_args(class_folders, db, "--names", names_csv)).exit_code == 0
    extra = class_folders / "A" / "front.png"
    result = invoke("gallery", "add", "--model", INT8_MODEL, "--db", db, "--code", "A", extra)
    assert result.exit_code == 0 and "enrolled 1 representatives" in result.output
    assert invoke("gallery", "remove", "--db", db, "C").exit_code == 0
    assert invoke("gallery", "set-threshold", "--db", db, 0.8).exit_code == 0
    listing = json.loads(invoke("gallery", "list", "--db", db, "--json").output)
    assert [(i["code"], i["name"], i["representatives"]) for i in listing["items"]] == [
        ("A", "Apple juice", 3),
        ("B", "Bread", 2),
    ]
    assert listing["threshold"] == 0.8 and listing["spec"]["quantization"] == "int8"

    from itemrec.edge_runtime import gallery_bin

    out = tmp_path / "gallery.bin"
    result = invoke("gallery", "export", "--format", "android", "--db", db, "--out", out)
    assert result.exit_code == 0, result.output
    exported = gallery_bin.read_gallery_bin(out)
    with Gallery.open(db) as g:
        vectors = g.vectors()
    assert list(exported.codes) == ["A", "B"]
    np.testing.assert_allclose(exported.vectors, vectors.matrix, atol=1e-6)
    assert exported.threshold == pytest.approx(0.8)


def test_errors_are_one_line_without_traceback(tmp_path, class_folders):
    db = tmp_path / "g.db"
    invoke(*build_args(class_folders, db))
    bad_model, bad_input = ExitCode.BAD_MODEL, ExitCode.BAD_INPUT
    cases = {
        "did not make the embeddings": (
            bad_model,
            (
                "identify",
                "--model",
                FP32_MODEL,
                "--db",
                db,
                class_folders / "A" / "front.png",
            ),
        ),
        "corrupt or not a gallery": (bad_model, ("gallery", "list", "--db", INT8_MODEL)),
        "not a TFLite model": (bad_model, ("identify", "--model", db, "--db", db, "x.png")),
        "already exists": (bad_input, build_args(class_folders, db)),
        "no item with code 'Z'": (bad_input, ("gallery", "remove", "--db", db, "Z")),
        "lies in [-1, 1]": (bad_input, ("gallery", "set-threshold", "--db", db, "1.5")),
        "no readable image for D": (
            bad_input,
            ("enroll", "--model", INT8_MODEL, "--db", db, "--code", "D", tmp_path / "none.png"),
        ),
        "gallery.db does not exist": (
            bad_model,
            ("gallery", "export", "--db", tmp_path / "gallery.db", "--out", tmp_path / "g.bin"),
        ),
        "no class folders": (bad_input, build_args(class_folders / "A", tmp_path / "new.db")),
        "broken.jpg": (
            bad_input,
            (
                "identify",
                "--model",
                INT8_MODEL,
                "--db",
                db,
                class_folders / "B" / "broken.jpg",
            ),
        ),
    }
    for message, (code, args) in cases.items():
        result = invoke(*args)
        assert result.exit_code == code, (message, result.output)
        assert message in result.output and "Traceback" not in result.output
        assert result.output.count("error:") == 1


def write_npz(path, codes, vectors, **extra):
    np.savez(path, codes=np.array(codes), vectors=np.asarray(vectors, np.float32), **extra)
    return path


def test_import_precomputed_vectors_creates_then_adds(tmp_path):
    from itemrec.edge_runtime.interpreter import EmbeddingModel

    model = EmbeddingModel(INT8_MODEL, threads=1)
    dim, db = model.spec.embedding_size, tmp_path / "g.db"
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(2500, dim))  # three transactions of BATCH_ITEMS
    codes = [f"p{i:05d}" for i in range(2500)]
    npz = write_npz(tmp_path / "v.npz", codes, vectors, fingerprint=model.fingerprint)
    assert invoke("gallery", "import", "--db", db, npz).exit_code == ExitCode.BAD_INPUT
    result = invoke("gallery", "import", "--db", db, "--model", INT8_MODEL, npz)
    assert result.exit_code == 0 and "imported 2500 items" in result.output
    more = write_npz(tmp_path / "m.npz", ["p00001", "new"], vectors[:2], names=["One", "New"])
    assert invoke("gallery", "import", "--db", db, more).exit_code == 0
    with Gallery.open(db) as g:
        stored = g.vectors(["p00000", "p00001", "new"])
        items = {i.code: i for i in g.items()}
    assert len(items) == 2501 and items["p00001"].representatives == 2
    assert items["p00001"].name == "One" and items["p00002"].name == "p00002"
    assert stored.codes == ["new", "p00000", "p00001"]  # code order
    np.testing.assert_allclose(stored.matrix[1], vectors[0] / np.linalg.norm(vectors[0]), rtol=1e-6)


@pytest.mark.parametrize(
    "codes, vectors, extra, message",
    [
        (["a", "b"], np.ones((2, 5)), {}, "must be 2 x 16"),
        (["a", "a"], np.ones((2, 16)), {}, "code 'a' appears more than once"),
        (["a", " "], np.ones((2, 16)), {}, "row 1 has an empty code"),
        (["a", "b"], [[np.nan] * 16, [1] * 16], {}, "row 0 ('a') is not finite"),
        (["a", "b"], [[0] * 16, [1] * 16], {}, "row 0 is all zeros"),
        (["a", "b"], np.ones((2, 16)), {"names": ["x"]}, "'names' must be 2 strings"),
        (["a", "b"], np.ones((2, 16)), {"fingerprint": "0" * 64}, "computed by model 000000000000"),
    ],
)
def test_import_refuses_bad_vectors_and_stores_nothing(tmp_path, codes, vectors, extra, message):
    db = tmp_path / "g.db"
    good = write_npz(tmp_path / "good.npz", ["keep"], np.ones((1, 16)))
    assert invoke("gallery", "import", "--db", db, "--model", INT8_MODEL, good).exit_code == 0
    bad = write_npz(tmp_path / "bad.npz", codes, vectors, **extra)
    result = invoke("gallery", "import", "--db", db, bad)
    assert result.exit_code == ExitCode.BAD_INPUT and message in result.output
    with Gallery.open(db) as g:
        assert [i.code for i in g.items()] == ["keep"]
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    result = invoke("gallery", "import", "--db", db, tmp_path / "junk.npz")
    assert result.exit_code == ExitCode.BAD_INPUT and "not a readable .npz" in result.output


def test_usage_errors_exit_2(tmp_path):
    for args in (
        ("gallery", "set-threshold", "--db", tmp_path / "g.db"),  # no THRESHOLD, no --clear
        ("enroll", "--model", INT8_MODEL, "--db", tmp_path / "g.db", "--code", "D"),  # no images
        ("identify", "--model", INT8_MODEL),  # no --db
    ):
        result = invoke(*args)
        assert result.exit_code == ExitCode.USAGE, (args, result.output)
        assert "Traceback" not in result.output


@pytest.mark.parametrize("value", ["nan", "inf", "1.5", "-2"])
def test_a_threshold_outside_the_cosine_range_is_bad_input(tmp_path, class_folders, value):
    db = tmp_path / "g.db"
    invoke(*build_args(class_folders, db))
    image = class_folders / "A" / "front.png"
    for args in (
        ("identify", "--model", INT8_MODEL, "--db", db, "--threshold", value, image),
        ("gallery", "set-threshold", "--db", db, "--", value),
    ):
        result = invoke(*args)
        assert result.exit_code == ExitCode.BAD_INPUT and "Traceback" not in result.output
        assert "a cosine threshold lies in [-1, 1]" in result.output, result.output
    assert invoke("gallery", "set-threshold", "--db", db, "high").exit_code == ExitCode.USAGE
    with Gallery.open(db) as gallery:
        assert gallery.threshold is None


def test_a_fifo_as_token_file_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "token"
    os.mkfifo(fifo)
    args = ("serve", "--model", INT8_MODEL, "--db", tmp_path / "g.db", "--token-file", fifo)
    result = invoke(*args)
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "not a regular file" in result.output and "token" in result.output
