"""The `edgepose` command line: one module per command (run, convert, models, bench, eval)."""

from __future__ import annotations

import sys
import traceback

import typer

from edgepose.cli.bench import bench_app
from edgepose.cli.common import stderr
from edgepose.cli.convert import convert_command
from edgepose.cli.eval import eval_command
from edgepose.cli.models import models_app
from edgepose.cli.run import run_command
from edgepose.errors import EdgeposeError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="On-device human pose estimation.")
app.command("run")(run_command)
app.command("convert")(convert_command)
app.add_typer(models_app, name="models")
app.add_typer(bench_app, name="bench")
app.command("eval")(eval_command)


def main() -> None:
    """Entry point: every EdgeposeError becomes one line on stderr; tracebacks only with --debug."""
    debug = "--debug" in sys.argv
    try:
        app(standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        stderr.print("edgepose: interrupted", markup=False)
        sys.exit(130)
    except EdgeposeError as e:
        if debug:
            traceback.print_exc()
        stderr.print(f"edgepose: error: {e}", markup=False, soft_wrap=True)
        sys.exit(2)
    except Exception as e:  # a bug: still one line, the trace with --debug
        if debug:
            traceback.print_exc()
        stderr.print(
            f"edgepose: internal error: {type(e).__name__}: {e} (run with --debug for the trace)",
            markup=False,
            soft_wrap=True,
        )
        sys.exit(3)


if __name__ == "__main__":
    main()
