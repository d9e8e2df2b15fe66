"""Lookup for large catalogues, on one core: query time against FAISS, and a 100k-item gallery.

Pinned to one core with one BLAS/OpenMP thread (the closest budget to a Raspberry Pi here).

1. For 1k / 10k / 100k items (one L2-normalised 128-d representative each, random), one
   query at a time as on the device: p50/p95 ms of ``Lookup.top_k_indices`` and of
   ``faiss.IndexFlatIP.search``, their ratio, and whether the top-k item lists agree.
2. A real 100,000-item ``gallery.db``: ``itemrec-edge gallery import`` of an ``.npz`` (the
   bulk rate), the first ``GalleryLookup`` (reads SQLite, writes the vector cache), later
   ones (map the cache: the load time of ``identify``), lookups through it, and a change
   while running (one item enrolled, then ``refresh()``) against a full reload.

    python benchmarks/bench_lookup.py [--dim 128] [--queries 300] [--k 5] [--sizes ...]

Writes ``benchmarks/results/lookup.json`` and ``lookup.md``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import click  # noqa: E402
import faiss  # noqa: E402
import numpy as np  # noqa: E402

from itemrec.edge_runtime.gallery import Gallery, GalleryVectors  # noqa: E402
from itemrec.edge_runtime.lookup import GalleryLookup, Lookup  # noqa: E402
from itemrec.edge_runtime.spec import ModelSpec  # noqa: E402
from itemrec.edge_runtime.vector_cache import cache_path  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent
GOALS = {"lookup_ms": 2.0, "faiss_ratio": 1.2, "load_ms": 50.0, "import_s_per_100k": 60.0}


def unit_rows(rng, n, dim):
    rows = rng.normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def probes(rng, matrix, n):
    """Queries near a random item, as real probes are: cosine ~0.8 to their item."""
    queries = matrix[rng.integers(0, len(matrix), n)] + 0.7 * unit_rows(rng, n, matrix.shape[1])
    return queries / np.linalg.norm(queries, axis=1, keepdims=True)


def timings_ms(function, queries) -> np.ndarray:
    for q in queries[:5]:
        function(q)  # warm-up
    times = []
    for q in queries:
        start = time.perf_counter()
        function(q)
        times.append(time.perf_counter() - start)
    return 1e3 * np.asarray(times)


def percentiles(ms: np.ndarray) -> dict:
    return {"p50": round(float(np.median(ms)), 4), "p95": round(float(np.percentile(ms, 95)), 4)}


def measure(items: int, dim: int, n_queries: int, k: int, rng) -> dict:
    matrix = unit_rows(rng, items, dim)
    codes = [str(i) for i in range(items)]
    lookup = Lookup(GalleryVectors(matrix, np.arange(items), codes, codes))
    index = faiss.IndexFlatIP(dim)
    index.add(matrix)
    queries = probes(rng, matrix, n_queries)
    # Interleaved halves, so a change of load on the shared machine hits both alike.
    ours, theirs = [], []
    for half in np.array_split(queries, 4):
        ours.append(timings_ms(lambda q: lookup.top_k_indices(q, k), half))
        theirs.append(timings_ms(lambda q: index.search(q[np.newaxis], k), half))
    ours, theirs = np.concatenate(ours), np.concatenate(theirs)
    same = all(
        np.array_equal(lookup.top_k_indices(q, k)[1][0], index.search(q[np.newaxis], k)[1][0])
        for q in queries
    )
    return {
        "items": items,
        "dim": dim,
        "k": k,
        "queries": n_queries,
        "int8_scorer": lookup.scorer is not None,
        "lookup_ms": percentiles(ours),
        "faiss_flat_ip_ms": percentiles(theirs),
        "ratio_lookup_over_faiss": round(float(np.median(ours) / np.median(theirs)), 3),
        "same_top_k": bool(same),
    }


def gallery_at_scale(items: int, dim: int, n_queries: int, k: int, rng, work: Path) -> dict:
    """Import, load, look up and change a real gallery of ``items`` items."""
    spec = ModelSpec(96, 96, dim, "random", fingerprint="b" * 64)
    db = work / "gallery.db"
    Gallery.create(db, spec).close()
    matrix = unit_rows(rng, items, dim)
    npz = work / "vectors.npz"
    codes = np.array([f"{i:08d}" for i in range(items)])
    np.savez(npz, codes=codes, names=np.char.add("item ", codes), vectors=matrix)
    command = [str(BIN / "itemrec-edge"), "gallery", "import", "--db", str(db), str(npz)]
    start = time.perf_counter()
    subprocess.run(command, check=True, stderr=subprocess.DEVNULL)
    import_s = time.perf_counter() - start

    result = {"items": items, "import_s": round(import_s, 2)}
    result["import_items_per_s"] = round(items / import_s)
    with Gallery.open(db, write=True) as gallery:  # it enrols below
        assert GalleryLookup(gallery).cache_state == "fresh"  # the import wrote it
        cache_path(db).unlink()
        start = time.perf_counter()
        first = GalleryLookup(gallery)
        result["first_load_ms"] = round(1e3 * (time.perf_counter() - start), 1)
        assert first.cache_state == "written", first.cache_state
        loads = []
        for _ in range(5):
            start = time.perf_counter()
            lookup = GalleryLookup(gallery)
            loads.append(1e3 * (time.perf_counter() - start))
            assert lookup.cache_state == "fresh"
        result["cached_load_ms"] = percentiles(np.asarray(loads))
        queries = probes(rng, matrix, n_queries)
        result["identify_ms"] = percentiles(timings_ms(lambda q: lookup.identify(q, k), queries))
        expected = [
            codes[i] for i in Lookup(lookup, scorer=None).top_k_indices(queries[0], k)[1][0]
        ]
        assert [m.code for m in lookup.identify(queries[0], k).matches] == expected

        changes = []
        for n in range(5):
            gallery.enroll(f"new{n}", None, unit_rows(rng, 1, dim))
            start = time.perf_counter()
            lookup.refresh()
            changes.append(1e3 * (time.perf_counter() - start))
        result["refresh_after_one_change_ms"] = percentiles(np.asarray(changes))
        start = time.perf_counter()
        GalleryLookup(gallery, cache=False)
        result["full_reload_ms"] = round(1e3 * (time.perf_counter() - start), 1)
        result["identify_after_changes_ms"] = percentiles(
            timings_ms(lambda q: lookup.identify(q, k), queries)
        )
    return result


@click.command()
@click.option("--dim", default=128, show_default=True)
@click.option("--queries", "n_queries", default=300, show_default=True)
@click.option("--k", default=5, show_default=True)
@click.option("--sizes", default="1000,10000,100000", show_default=True)
@click.option("--gallery-items", default=100_000, show_default=True)
def main(dim, n_queries, k, sizes, gallery_items):
    """Time top-k lookup against faiss.IndexFlatIP and a 100k gallery, on one core."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    rows = [measure(int(n), dim, n_queries, k, rng) for n in sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        scale = gallery_at_scale(gallery_items, dim, n_queries, k, rng, Path(tmp))
    meta = {
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "cpus": sorted(os.sched_getaffinity(0)),
        "load_average": os.getloadavg(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lookup.json").write_text(
        json.dumps({"meta": meta, "goals": GOALS, "rows": rows, "gallery": scale}, indent=2)
    )
    (RESULTS / "lookup.md").write_text(_markdown(meta, rows, scale))
    click.echo(_markdown(meta, rows, scale))


def _markdown(meta, rows, g) -> str:
    lines = [
        f"One query at a time, top-{rows[0]['k']}, pinned to one core (CPU {meta['cpus']}), one "
        f"thread (faiss {meta['faiss']}, numpy {meta['numpy']}); load average at the end "
        f"{meta['load_average'][0]:.1f}. From {FAST_ROWS_NOTE}",
        "",
        "| items | dim | lookup p50 ms | p95 | FAISS FlatIP p50 ms | p95 | ratio (goal <= 1.2) "
        "| same top-k |",
        "|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    lines += [
        f"| {r['items']} | {r['dim']} | {r['lookup_ms']['p50']:.3f} | {r['lookup_ms']['p95']:.3f} "
        f"| {r['faiss_flat_ip_ms']['p50']:.3f} | {r['faiss_flat_ip_ms']['p95']:.3f} | "
        f"{r['ratio_lookup_over_faiss']:.2f} | {'yes' if r['same_top_k'] else 'NO'} |"
        for r in rows
    ]
    lines += [
        "",
        f"A real {g['items']:,}-item gallery.db (one 128-d representative each):",
        "",
        "| measure | value | goal |",
        "|---|---:|---|",
        f"| `gallery import` of an .npz (the whole command, vector cache written) | "
        f"{g['import_s']:.1f} s "
        f"({g['import_items_per_s']:,} items/s) | <= 60 s |",
        f"| first load (SQLite, then the vector cache written) | {g['first_load_ms']:.0f} ms | |",
        f"| load with the cache (what `identify` pays), p50 / p95 | "
        f"{g['cached_load_ms']['p50']:.1f} / {g['cached_load_ms']['p95']:.1f} ms | <= 50 ms |",
        f"| identify top-{rows[0]['k']}, p50 / p95 | {g['identify_ms']['p50']:.3f} / "
        f"{g['identify_ms']['p95']:.3f} ms | <= 2 ms |",
        f"| one item enrolled while running: `refresh()` p50 / p95 | "
        f"{g['refresh_after_one_change_ms']['p50']:.2f} / "
        f"{g['refresh_after_one_change_ms']['p95']:.2f} ms | proportional to the change |",
        f"| full reload from SQLite, for comparison | {g['full_reload_ms']:.0f} ms | |",
        f"| identify after those changes, p50 / p95 | {g['identify_after_changes_ms']['p50']:.3f}"
        f" / {g['identify_after_changes_ms']['p95']:.3f} ms | |",
    ]
    return "\n".join(lines) + "\n"


FAST_ROWS_NOTE = "8,000 representatives on, the lookup uses the int8 scorer + exact re-rank."

if __name__ == "__main__":
    main()
