"""What the four command-line tools share: one-line errors and the exit-code table.

``ItemrecCommand`` and ``ItemrecGroup`` are click's command classes with two changes: an
:class:`~itemrec.edge_runtime.errors.ItemrecError` raised while the command runs prints
``<tool>: error: <first line of the message>`` on stderr and exits with the error's code
(:class:`~itemrec.edge_runtime.errors.ExitCode`), and Ctrl-C prints ``<tool>: interrupted``
and exits 0 (stopped on purpose) instead of click's "Aborted!" and 1. Any other exception is
a bug and keeps Python's traceback and exit status 1.

The console scripts start through :mod:`itemrec.edge_runtime.launch`, which gives a Ctrl-C
during start-up (importing OpenCV or TensorFlow takes seconds) the same quiet end.
"""

from __future__ import annotations

import click

from itemrec.edge_runtime.errors import ItemrecError
from itemrec.edge_runtime.launch import interrupted


def report(ctx: click.Context, error: ItemrecError):
    """Print ``error`` as one line and exit with its code."""
    click.echo(f"{ctx.find_root().info_name}: error: {error.one_line()}", err=True)
    ctx.exit(int(error.exit_code))


def invoke_reporting(invoke, ctx: click.Context):
    """``invoke(ctx)``; an ``ItemrecError`` becomes one line and its exit code, and Ctrl-C
    ``<tool>: interrupted``."""
    try:
        return invoke(ctx)
    except ItemrecError as error:
        report(ctx, error)
    except KeyboardInterrupt:
        interrupted(ctx.find_root().info_name)


class ItemrecCommand(click.Command):
    """A click command whose ``ItemrecError`` becomes one line and the table's exit code."""

    def invoke(self, ctx: click.Context):
        return invoke_reporting(super().invoke, ctx)


class ItemrecGroup(click.Group):
    """A click group whose sub-commands are :class:`ItemrecCommand` (errors as above)."""

    command_class = ItemrecCommand

    def invoke(self, ctx: click.Context):
        return invoke_reporting(super().invoke, ctx)


ItemrecGroup.group_class = ItemrecGroup
