"""Run every ``benchmarks/bench_*.py`` and gather their tables into ``results/SUMMARY.md``.

Each benchmark writes ``results/<name>.json`` and ``results/<name>.md`` itself; this runner
only runs them in order (one at a time, so they do not share the CPU), reports how long
each took, and concatenates the Markdown tables.

    python benchmarks/run_all.py [--only lookup --only edge] [-- extra args for each]

``resolution`` and ``enroll_augment`` train models for up to an hour: they run only when
named with ``--only``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import click

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
# They train 4 to 8 models (30 to 60 minutes on a 2-core machine): only with --only NAME.
ON_REQUEST = ("enroll_augment", "resolution")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--only", multiple=True, help="Run only these benchmarks (name without bench_).")
def main(only):
    """Run the benchmarks one after another and write results/SUMMARY.md."""
    scripts = sorted(HERE.glob("bench_*.py"))
    if only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in only]
    else:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") not in ON_REQUEST]
    if not scripts:
        raise click.UsageError("no benchmark matched")
    RESULTS.mkdir(exist_ok=True)
    sections, failed = [], []
    began = time.perf_counter()
    for script in scripts:
        name = script.stem.removeprefix("bench_")
        click.echo(f"== {name} ({script.name})", err=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        seconds = time.perf_counter() - start
        click.echo(f"== {name}: exit {code} after {seconds:.0f} s", err=True)
        if code != 0:
            failed.append(name)
        table = RESULTS / f"{name}.md"
        body = table.read_text() if table.exists() else "(no results written)\n"
        sections.append(f"## {name}\n\n_{script.name}, {seconds:.0f} s, exit {code}_\n\n{body}")
    minutes, seconds = divmod(round(time.perf_counter() - began), 60)
    took = f"{len(scripts)} benchmarks in {minutes} min {seconds:02d} s"
    summary = f"# itemrec benchmarks\n\n_{took}, one after another._\n\n" + "\n".join(sections)
    (RESULTS / "SUMMARY.md").write_text(summary)
    click.echo(f"{took}; wrote {RESULTS / 'SUMMARY.md'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
