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


# Optional or slow to import (scipy.optimize alone ~0.3 s): loaded only by the paths that use them.
OPTIONAL = ("scipy", "cv2", "matplotlib", "pycocotools", "onnxruntime", "ray", "asyncssh")


def _loaded(code: str, prefixes: tuple[str, ...]) -> list[str]:
    probe = code + f"\nprint(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {prefixes!r})))\n"
    r = subprocess.run(
        [sys.executable, "-c", "import json, sys\n" + probe], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_import_and_a_single_person_still_load_no_optional_module(one_person_photo):
    assert _loaded("import edgepose", OPTIONAL + ("edgepose",)) == [
        "edgepose",
        "edgepose.errors",
        "edgepose.keypoints",
        "edgepose.results",
    ]
    still = f"from edgepose import PoseEstimator\nPoseEstimator.create_from_model().estimate({str(one_person_photo)!r})"
    assert _loaded(still, OPTIONAL) == []


def test_cli_start_up_loads_neither_the_pipelines_nor_optional_modules():
    # What `edgepose --help` and every command pay before they start: no estimator, no tracking, no
    # progress bar or results database.
    code = "import edgepose.cli"
    heavy = OPTIONAL + ("sqlite3", "pydantic", "PIL", "rich")
    assert _loaded(code, heavy) == []
    inner = _loaded(code, ("edgepose",))
    layers = {m.split(".")[1] for m in inner if m.count(".") >= 1}
    assert not layers & {"estimator", "pipelines", "tracking", "eval", "cluster"}, inner
    assert [m for m in inner if m.startswith("edgepose.bench.")] == ["edgepose.bench.schema"]


def test_a_single_person_video_run_loads_no_scipy(tmp_path, demo_video):
    # The CLI on a video in single mode: OpenCV decodes, nothing loads scipy (multi-person tracking only).
    out = tmp_path / "out.jsonl"
    code = (
        "import atexit\n"
        "atexit.register(lambda: print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('scipy', 'matplotlib', 'pycocotools', 'onnxruntime', 'pydantic')))))\n"
        "from edgepose.cli import main\n"
        f"sys.argv = ['edgepose', 'run', {str(demo_video)!r}, '-o', {str(out)!r}]\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", "import json, sys\n" + code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []
    assert len(out.read_text().splitlines()) == 5


def test_help_loads_neither_the_pipelines_nor_pillow():
    # `edgepose --help` itself: typer renders it with rich, and nothing else is loaded for it.
    code = (
        "import atexit\n"
        "atexit.register(lambda: print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('scipy', 'cv2', 'PIL', 'sqlite3', 'pydantic', 'onnxruntime') or m.startswith(('edgepose.estimator', "
        "'edgepose.pipelines', 'edgepose.tracking', 'edgepose.eval', 'rich.progress'))))))\n"
        "from edgepose.cli import main\n"
        "sys.argv = ['edgepose', '--help']\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", "import json, sys\n" + code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Usage" in r.stdout
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []
