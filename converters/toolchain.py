"""The external converters (tf2onnx, onnx2tf) run as subprocesses, each with its own log file.

Running them out of process keeps TensorFlow's start-up and log noise out of ours, and a crash in a
converter becomes one clear line instead of a native traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edgepose.errors import ModelError

TOOL_TIMEOUT_S = 1800


def missing_extra(what: str) -> ModelError:
    return ModelError(
        f"{what} is not installed: the converters need the workstation extra, pip install 'edgepose[convert]'"
    )


def run_tool(args: list[str], log: Path, what: str, cwd: Path | None = None) -> None:
    """Run `python -m <tool> ...`; on failure raise with the tool's last meaningful log line."""
    with open(log, "w") as out:
        try:
            proc = subprocess.run(
                [sys.executable, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                check=False,
                timeout=TOOL_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as e:
            raise ModelError(f"{what} did not finish in {TOOL_TIMEOUT_S} s") from e
    if proc.returncode != 0:
        raise ModelError(f"{what} failed: {last_error_line(log)}")


def last_error_line(log: Path) -> str:
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "error" in ln.lower() or "exception" in ln.lower():
            return ln[:300]
    return lines[-1][:300] if lines else "no output"
