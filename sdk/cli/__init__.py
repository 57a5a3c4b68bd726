"""The `edgepose` command line: one module per command (run, convert, models, bench, eval, reps, doctor)."""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import traceback

import typer

from edgepose.cli.bench import bench_app
from edgepose.cli.common import stderr
from edgepose.cli.convert import convert_command
from edgepose.cli.doctor import doctor_command
from edgepose.cli.eval import eval_command
from edgepose.cli.models import models_app
from edgepose.cli.reps import reps_command
from edgepose.cli.run import run_command
from edgepose.errors import EdgeposeError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="On-device human pose estimation.")


def _show_version(value: bool) -> None:
    if value:
        from edgepose.bench.device_info import package_version

        typer.echo(f"edgepose {package_version('edgepose') or 'unknown (not installed)'}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Show the installed version and exit."
    ),
) -> None:
    """On-device human pose estimation."""


app.command("run")(run_command)
app.command("convert")(convert_command)
app.add_typer(models_app, name="models")
app.add_typer(bench_app, name="bench")
app.command("eval")(eval_command)
app.command("reps")(reps_command)
app.command("doctor")(doctor_command)


# typer re-exports BadParameter but not its base; found this way it works with click and typer's own copy.
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every `finally` runs (temporary outputs removed), like
    Ctrl-C. A BaseException so that no `except Exception` on the way swallows it."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def main() -> None:
    """Entry point: every EdgeposeError becomes one line on stderr; tracebacks only with --debug."""
    debug = "--debug" in sys.argv
    signal.signal(signal.SIGTERM, _terminate)
    _report_native_crashes()
    try:
        code = app(standalone_mode=False)
    except typer.BadParameter as e:  # a wrong value: one line (unknown options keep click's usage text)
        stderr.print(f"edgepose: error: {e.format_message()}", markup=False, soft_wrap=True)
        sys.exit(2)
    except _ClickException as e:
        _show_usage_error(e)
        sys.exit(e.exit_code)
    except typer.Abort:
        stderr.print("edgepose: aborted", markup=False)
        sys.exit(1)
    except Terminated:
        stderr.print("edgepose: terminated", markup=False)
        sys.exit(128 + signal.SIGTERM)
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
    sys.exit(code if isinstance(code, int) else 0)


_crash_stream = None


def _report_native_crashes() -> None:
    """Should a native library still crash (every model file is verified first), say where, on the
    user's real stderr: native calls run with fd 2 silenced (`quiet_native_stderr`), which would hide
    even Python's fault handler."""
    global _crash_stream
    if faulthandler.is_enabled():
        return
    try:
        _crash_stream = os.fdopen(os.dup(2), "w")
        faulthandler.enable(file=_crash_stream)
    except (OSError, ValueError):  # no real fd 2
        _crash_stream = None


def _show_usage_error(e: Exception) -> None:
    try:
        from typer import rich_utils

        rich_utils.rich_format_error(e)
    except (ImportError, AttributeError):
        e.show()


if __name__ == "__main__":
    main()
