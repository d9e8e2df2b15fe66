"""Peak memory of every bad-input case: the corpus of ``tests/bad_inputs.py`` through the tools.

Runs the same commands as ``tests/test_bad_inputs.py`` (real ``itemrec-edge`` processes, the
torch-pickle reader in a process of its own) and reports, per case, the highest peak resident
memory (``wait4``'s ``ru_maxrss``) of the processes that handled it, the worst case, and
whether every case was handled cleanly (the test's own checks). The test hands all image
cases to one ``identify``; here each image is also identified alone, so that its own peak
shows (``alone_mb``).

    python benchmarks/bench_bad_inputs.py

Writes ``benchmarks/results/bad_inputs.json`` and ``bad_inputs.md``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import test_bad_inputs as corpus_test  # noqa: E402  (the test's runner and checks)

RESULTS = HERE / "results"


@click.command()
def main():
    """Run the corpus, write results/bad_inputs.json and .md."""
    with tempfile.TemporaryDirectory() as folder:
        results = corpus_test.Results(Path(folder))
        for group in (results.images, results.galleries, results.names, results.models):
            group()
        results.pickles()
        alone = {
            f"image-{case_id}": results.edge_run(
                "identify", "--model", corpus_test.MODEL, "--db", results.corpus.gallery, path
            ).peak_mb
            for case_id, path in results.corpus.images.items()
        }
        cases = {}
        for case_id in corpus_test._case_ids():
            runs = results.runs[case_id]
            try:
                corpus_test.test_bad_input_is_handled_cleanly(results, case_id)
                problem = None
            except AssertionError as error:
                problem = str(error).splitlines()[0][:200]
            cases[case_id] = {
                "processes": len(runs),
                "peak_mb": round(max(r.peak_mb for r in runs), 1),
                "alone_mb": round(alone[case_id], 1) if case_id in alone else None,
                "problem": problem,
            }
    worst = max(cases, key=lambda c: (cases[c]["peak_mb"], cases[c]["alone_mb"] or 0))
    clean = sum(c["problem"] is None for c in cases.values())
    summary = {"cases": len(cases), "handled_cleanly": clean, "worst_case": worst, **cases[worst]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bad_inputs.json").write_text(
        json.dumps({"summary": summary, "cases": cases}, indent=1) + "\n"
    )
    (RESULTS / "bad_inputs.md").write_text(markdown(summary, cases))
    click.echo(markdown(summary, cases))


def markdown(summary: dict, cases: dict) -> str:
    lines = [
        f"{summary['cases']} bad-input cases, {summary['handled_cleanly']} handled cleanly; "
        f"worst peak {summary['peak_mb']} MB ({summary['worst_case']}), bound "
        f"{corpus_test.PEAK_MB} MB.\n",
        "| case | processes | peak MB | identified alone, MB | problem |",
        "|---|---:|---:|---:|---|",
    ]
    for case_id, case in sorted(cases.items(), key=lambda item: -item[1]["peak_mb"]):
        alone = "" if case["alone_mb"] is None else case["alone_mb"]
        problem = case["problem"] or ""
        lines.append(
            f"| {case_id} | {case['processes']} | {case['peak_mb']} | {alone} | {problem} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
