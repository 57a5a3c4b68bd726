"""The runtime stays light: importing it (and running a still) never loads the converters or their
heavy dependencies, nor the optional eval and plot extras."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("edgepose.converters", "tensorflow", "torch", "onnx", "onnx2tf", "tf2onnx", "pycocotools", "matplotlib")


def test_runtime_never_imports_converters(one_person_photo):
    code = (
        "import json, sys\n"
        "from edgepose import PoseEstimator\n"
        "import edgepose.cli\n"
        f"PoseEstimator.create_from_model().estimate({str(one_person_photo)!r})\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r})))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []
