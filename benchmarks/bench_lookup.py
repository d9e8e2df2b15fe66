"""Lookup speed for large catalogues: ``edge_runtime.lookup`` against brute-force FAISS.

For 1k / 10k / 100k items (one L2-normalised 128-d representative each, random), one query at a
time as on the device: the mean time per query of ``Lookup.top_k_indices`` and of
``faiss.IndexFlatIP.search``, their ratio, and whether the top-k item lists agree.

    python benchmarks/bench_lookup.py [--dim 128] [--queries 200] [--k 5]

Writes ``benchmarks/results/lookup.json`` and ``lookup.md``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import faiss
import numpy as np

from itemrec.edge_runtime.gallery import GalleryVectors
from itemrec.edge_runtime.lookup import Lookup

RESULTS = Path(__file__).resolve().parent / "results"


def unit_rows(rng, n, dim):
    rows = rng.normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def mean_seconds(function, queries) -> float:
    function(queries[0])  # warm-up
    start = time.perf_counter()
    for q in queries:
        function(q)
    return (time.perf_counter() - start) / len(queries)


def measure(items: int, dim: int, n_queries: int, k: int, rng) -> dict:
    matrix = unit_rows(rng, items, dim)
    codes = [str(i) for i in range(items)]
    lookup = Lookup(GalleryVectors(matrix, np.arange(items), codes, codes))
    index = faiss.IndexFlatIP(dim)
    index.add(matrix)
    # Queries near a random item, as real probes are: cosine ~0.7 to their item.
    targets = rng.integers(0, items, n_queries)
    queries = matrix[targets] + 0.7 * unit_rows(rng, n_queries, dim)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    ours = mean_seconds(lambda q: lookup.top_k_indices(q, k), queries)
    reference = mean_seconds(lambda q: index.search(q[np.newaxis], k), queries)
    _, our_top = lookup.top_k_indices(queries, k)
    _, faiss_top = index.search(queries, k)
    return {
        "items": items,
        "dim": dim,
        "k": k,
        "queries": n_queries,
        "lookup_ms": round(ours * 1e3, 4),
        "faiss_flat_ip_ms": round(reference * 1e3, 4),
        "ratio_lookup_over_faiss": round(ours / reference, 3),
        "same_top_k": bool(np.array_equal(our_top, faiss_top)),
    }


@click.command()
@click.option("--dim", default=128, show_default=True)
@click.option("--queries", "n_queries", default=200, show_default=True)
@click.option("--k", default=5, show_default=True)
@click.option("--sizes", default="1000,10000,100000", show_default=True)
def main(dim, n_queries, k, sizes):
    """Time top-k lookup against faiss.IndexFlatIP; write results/lookup.json and .md."""
    rng = np.random.default_rng(0)
    rows = [measure(int(n), dim, n_queries, k, rng) for n in sizes.split(",")]
    meta = {
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lookup.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        "Top-k lookup, one query at a time, one representative per item "
        f"(faiss {meta['faiss']}, numpy {meta['numpy']}).",
        "",
        "| items | dim | k | lookup ms | FAISS FlatIP ms | ratio | same top-k |",
        "|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    lines += [
        f"| {r['items']} | {r['dim']} | {r['k']} | {r['lookup_ms']:.3f} | "
        f"{r['faiss_flat_ip_ms']:.3f} | {r['ratio_lookup_over_faiss']:.2f} | "
        f"{'yes' if r['same_top_k'] else 'NO'} |"
        for r in rows
    ]
    (RESULTS / "lookup.md").write_text("\n".join(lines) + "\n")
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
