"""The console scripts' entry points: a Ctrl-C while a tool starts ends it quietly.

Importing OpenCV, LiteRT or TensorFlow takes seconds, and a Ctrl-C meanwhile would print a
``KeyboardInterrupt`` traceback. So the scripts start here, in a module that imports nothing
but the standard library's ``importlib`` and ``sys`` (already loaded by Python itself), and the
heavy imports run inside :func:`launch`. A Ctrl-C prints ``<tool>: interrupted`` and exits 0,
"stopped on purpose" in the table of :mod:`itemrec.edge_runtime.errors`, as it does once the
command runs (:mod:`itemrec.edge_runtime.cli_common`).
"""

import importlib
import sys

OK = 0  # errors.ExitCode.OK; errors is not imported here, to keep this module's import instant


def interrupted(tool: str):
    """End ``tool`` after a Ctrl-C: one line on stderr, exit code OK (stopped on purpose)."""
    print(f"\n{tool}: interrupted", file=sys.stderr)
    sys.exit(OK)


def launch(module: str, tool: str) -> None:
    """Import ``module`` and run its click ``main`` as ``tool``; Ctrl-C meanwhile ends quietly."""
    try:
        main = importlib.import_module(module).main
    except KeyboardInterrupt:
        interrupted(tool)
    main(prog_name=tool)


def edge_main() -> None:
    """``itemrec-edge``."""
    launch("itemrec.edge_runtime.cli", "itemrec-edge")


def train_main() -> None:
    """``itemrec-train``."""
    launch("itemrec.train.cli", "itemrec-train")


def eval_main() -> None:
    """``itemrec-eval``."""
    launch("itemrec.train.evaluation.cli", "itemrec-eval")


def convert_main() -> None:
    """``itemrec-convert``."""
    launch("itemrec.convert.cli", "itemrec-convert")
