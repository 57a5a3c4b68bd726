"""Whole process, single person: ms per frame of complete programs on one 300-frame 640x480 clip, start-up included.

What a user of a small board waits for is the whole program: interpreter start-up, imports, model load,
decode, inference and output. So every case here is a separate process, timed from spawn to exit, and
ms/frame = wall / 300. The cases, all on the same clip:

  plain           the simplest correct script: OpenCV decode, letterbox to 192x192, LiteRT invoke of MoveNet
                  Lightning int8 (2 threads), keypoints kept in a list. The floor for any MoveNet program.
  tf-example      the same model driven like the MoveNet class of the TensorFlow Lite Raspberry Pi
                  pose-estimation example: "smart cropping" (the next crop from this frame's torso and body
                  keypoints), crop_and_resize into the model input. Written here from its description.
  edgepose[NAME]  `VENV/bin/edgepose run CLIP -o OUT.jsonl` of each install under test (--install NAME=VENV,
                  repeatable, for before->after; default: the venv running this script). 300 JSON lines checked.
  mediapipe       legacy MediaPipe Pose (model_complexity=1, tracking), OpenCV decode; only where a python
                  with mediapipe is given (--mediapipe-python), else reported as not installed.

The clip is built once from the shared squats video (720x1280 portrait, 65 frames): each frame letterboxed
into 640x480, played forward and back until 300 frames, mp4v, cached in --workdir. Each round runs every
case once, in an order rotated per round so load changes on a shared machine hit all alike; one warm-up
run of each first (page cache, .pyc) is not recorded. Medians over rounds.

Start-up and memory, also whole processes, interleaved over --startup-rounds: per install
`python -c "import numpy, PIL.Image"` (the baseline: what any numpy program pays), `python -c "import
edgepose"` and `edgepose --help`, as ms and ratios to the baseline.

Peak RSS is ru_maxrss from wait4. Linux records the high-water RSS of the memory a child runs in before its
exec, and a vfork'd child runs in its parent's, so a child spawned straight from this process (numpy, cv2,
the clip) would report this process's peak. Every child is therefore spawned by a small stdlib-only launcher
process; the launcher's own RSS, the smallest peak this can report, is recorded as rss_floor_mb.

    python benchmarks/whole_process.py --install before=../venvs/before --install after=.venv \\
        --mediapipe-python ../venvs/mp/bin/python --label my-board

Targets (from the issue) are reported pass/fail next to the numbers; they do not change the exit code.
Exit 1 when a case failed (a child exited non-zero or processed the wrong number of frames).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common import SHARED_DATA, fingerprint, save_result

FRAMES = 300
WIDTH, HEIGHT = 640, 480
MODEL_FILE = "movenet_singlepose_lightning_int8.tflite"
SOURCE_VIDEO = SHARED_DATA / "fitness" / "pose_squats.mp4"
# Bump when the clip recipe changes, so a cached clip made the old way is rebuilt.
CLIP_RECIPE = 1

PLAIN_SCRIPT = '''\
"""plain: OpenCV decode, letterbox to the model input, LiteRT invoke; keypoints kept in a list."""
import os
import sys

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

model_dir = os.environ["EDGEPOSE_MODEL_DIR"]  # set by whole_process.py
interpreter = Interpreter(model_path=os.path.join(model_dir, "movenet_singlepose_lightning_int8.tflite"), num_threads=2)
interpreter.allocate_tensors()
input_index = interpreter.get_input_details()[0]["index"]
output_index = interpreter.get_output_details()[0]["index"]
size = 192

keypoints = []
capture = cv2.VideoCapture(sys.argv[1])
while True:
    ok, frame = capture.read()
    if not ok:
        break
    h, w = frame.shape[:2]
    scale = size / max(h, w)
    nw, nh = round(w * scale), round(h * scale)
    small = cv2.cvtColor(cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    canvas = np.zeros((size, size, 3), np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas[top : top + nh, left : left + nw] = small
    interpreter.set_tensor(input_index, canvas[np.newaxis])
    interpreter.invoke()
    keypoints.append(interpreter.get_tensor(output_index)[0, 0].copy())  # 17 x (y, x, score) in the letterbox
print(len(keypoints))
'''

TF_EXAMPLE_SCRIPT = '''\
"""tf-example: MoveNet with the smart cropping of the TensorFlow Lite Raspberry Pi pose-estimation example.

Crop regions are normalized to the frame and may reach outside it (then padded black). The first is a
square as large as the frame's longer side, centred; each next one is centred on the hips and sized from
how far the torso and the confidently seen body reach from there, or the first again when the torso is not
seen or the crop would outgrow the frame.
"""
import os
import sys

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

MIN_SCORE = 0.2
TORSO_EXPANSION = 1.9
BODY_EXPANSION = 1.2
SHOULDERS, HIPS = (5, 6), (11, 12)
TORSO = SHOULDERS + HIPS


def full_square(h, w):
    side = max(h, w)
    top, left = (h - side) / 2, (w - side) / 2
    return (top / h, left / w, (top + side) / h, (left + side) / w)


def next_crop(keypoints, h, w):
    scores = keypoints[:, 2]
    if not (scores[list(HIPS)].max() > MIN_SCORE and scores[list(SHOULDERS)].max() > MIN_SCORE):
        return full_square(h, w)
    ys, xs = keypoints[:, 0] * h, keypoints[:, 1] * w
    cy, cx = ys[list(HIPS)].mean(), xs[list(HIPS)].mean()
    torso = list(TORSO)
    body = scores > MIN_SCORE
    half = max(
        np.abs(ys[torso] - cy).max() * TORSO_EXPANSION,
        np.abs(xs[torso] - cx).max() * TORSO_EXPANSION,
        np.abs(ys[body] - cy).max() * BODY_EXPANSION,
        np.abs(xs[body] - cx).max() * BODY_EXPANSION,
    )
    half = min(half, max(cx, w - cx, cy, h - cy))
    if half > max(h, w) / 2:
        return full_square(h, w)
    return ((cy - half) / h, (cx - half) / w, (cy + half) / h, (cx + half) / w)


def crop_and_resize(image, crop, size):
    h, w = image.shape[:2]
    y0, x0, y1, x1 = int(crop[0] * h), int(crop[1] * w), int(crop[2] * h), int(crop[3] * w)
    inside = image[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
    padded = cv2.copyMakeBorder(
        inside, max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w), cv2.BORDER_CONSTANT, value=0
    )
    return cv2.resize(padded, (size, size))


class MoveNet:
    def __init__(self, model_path, threads=2):
        self.interpreter = Interpreter(model_path=model_path, num_threads=threads)
        self.interpreter.allocate_tensors()
        details = self.interpreter.get_input_details()[0]
        self.input_index = details["index"]
        self.size = int(details["shape"][1])
        self.output_index = self.interpreter.get_output_details()[0]["index"]
        self.crop = None

    def detect(self, rgb):
        h, w = rgb.shape[:2]
        if self.crop is None:
            self.crop = full_square(h, w)
        model_input = crop_and_resize(rgb, self.crop, self.size).astype(np.uint8)
        self.interpreter.set_tensor(self.input_index, model_input[np.newaxis])
        self.interpreter.invoke()
        keypoints = self.interpreter.get_tensor(self.output_index)[0, 0].copy()
        y0, x0, y1, x1 = self.crop
        keypoints[:, 0] = y0 + (y1 - y0) * keypoints[:, 0]
        keypoints[:, 1] = x0 + (x1 - x0) * keypoints[:, 1]
        self.crop = next_crop(keypoints, h, w)
        return np.stack([keypoints[:, 1] * w, keypoints[:, 0] * h, keypoints[:, 2]], axis=1)  # (x, y, score) px


model_dir = os.environ["EDGEPOSE_MODEL_DIR"]  # set by whole_process.py
movenet = MoveNet(os.path.join(model_dir, "movenet_singlepose_lightning_int8.tflite"), threads=2)
people = []
capture = cv2.VideoCapture(sys.argv[1])
while True:
    ok, frame = capture.read()
    if not ok:
        break
    people.append(movenet.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))  # the example converts each frame
print(len(people))
'''

MEDIAPIPE_SCRIPT = '''\
"""mediapipe: legacy MediaPipe Pose, full model (complexity 1), tracking mode; OpenCV decode."""
import sys

import cv2
import mediapipe as mp
import numpy as np

landmarks = []
capture = cv2.VideoCapture(sys.argv[1])
with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        found = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).pose_landmarks
        landmarks.append(None if found is None else np.array([(p.x, p.y, p.visibility) for p in found.landmark]))
print(len(landmarks))
'''

# Stdlib only and started with -I -S: its small RSS is the floor of every child's ru_maxrss (see docstring).
LAUNCHER_SCRIPT = """\
import json, os, sys, time
W = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
for line in sys.stdin:
    job = json.loads(line)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, job["stdout"], W, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, job["stderr"], W, 0o644),
    ]
    t0 = time.perf_counter()
    try:
        pid = os.posix_spawn(job["argv"][0], job["argv"], job["env"], file_actions=actions)
    except OSError as e:
        print(json.dumps({"wall_s": 0.0, "rc": -1, "maxrss_kib": 0, "spawn_error": str(e)}), flush=True)
        continue
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    print(json.dumps({"wall_s": wall, "rc": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss}),
          flush=True)
"""


@dataclass
class Sample:
    wall_s: float
    rss_mb: float


@dataclass
class Case:
    """One whole-process command; `check` reads what it wrote and returns an error, or None when it is right."""

    name: str
    argv: list[str]
    stdout: str
    stderr: str
    check: Callable[[], str | None] | None = None
    samples: list[Sample] = field(default_factory=list)
    failed: bool = False


class Launcher:
    """The small process that spawns and reaps every measured child, so their peak RSS is theirs alone."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", LAUNCHER_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def run(self, argv: list[str], stdout: str, stderr: str) -> dict:
        job = {"argv": argv, "env": self.env, "stdout": stdout, "stderr": stderr}
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(job) + "\n")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the launcher process died")
        return json.loads(line)

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait()


def _tail(path: str, chars: int = 2000) -> str:
    try:
        return Path(path).read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def run_case(launcher: Launcher, case: Case, phase: str, errors: list[dict]) -> None:
    """Run `case` once; record a sample, or an error (printed with the child's stderr tail)."""
    r = launcher.run(case.argv, case.stdout, case.stderr)
    error = None
    if r["rc"] != 0:
        error = r.get("spawn_error") or f"exit status {r['rc']}; stderr tail:\n{_tail(case.stderr)}"
    elif case.check is not None:
        error = case.check()
    if error is not None:
        case.failed = True
        errors.append({"case": case.name, "phase": phase, "command": shlex.join(case.argv), "error": error})
        print(f"FAILED {case.name} ({phase}): {shlex.join(case.argv)}\n{error}", file=sys.stderr)
        return
    if phase != "warm-up":
        case.samples.append(Sample(r["wall_s"], r["maxrss_kib"] / 1024.0))


def run_interleaved(launcher: Launcher, cases: list[Case], rounds: int, errors: list[dict], what: str) -> None:
    """One unrecorded warm-up run of each case, then `rounds` rounds with the case order rotated each round."""
    for case in cases:
        run_case(launcher, case, "warm-up", errors)
    live = [c for c in cases if not c.failed]  # one that fails its warm-up would only fail again
    for r in range(rounds):
        k = r % len(live) if live else 0
        for case in live[k:] + live[:k]:
            run_case(launcher, case, f"round {r + 1}", errors)
        print(f"  {what}: round {r + 1}/{rounds} done", file=sys.stderr)


def count_lines_printed(path: str) -> Callable[[], str | None]:
    """Check for the scripts above, which print the number of frames they processed."""

    def check() -> str | None:
        lines = _tail(path).split()
        if not lines or lines[-1] != str(FRAMES):
            return f"expected it to process {FRAMES} frames, it printed {lines[-1:] or 'nothing'}"
        return None

    return check


def count_json_lines(path: Path) -> Callable[[], str | None]:
    """Check for `edgepose run -o`: one JSON object per frame, nothing missing or torn."""

    def check() -> str | None:
        try:
            lines = path.read_text().splitlines()
        except OSError as e:
            return f"no output: {e}"
        for i, line in enumerate(lines):
            try:
                json.loads(line)
            except ValueError:
                return f"{path}: line {i + 1} is not JSON: {line[:120]!r}"
        if len(lines) != FRAMES:
            return f"{path}: {len(lines)} JSON lines, expected {FRAMES}"
        return None

    return check


def letterbox(frame, width: int, height: int):
    import cv2
    import numpy as np

    h, w = frame.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = round(w * scale), round(h * scale)
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - nh) // 2, (width - nw) // 2
    canvas[top : top + nh, left : left + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
    return canvas


def count_frames(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def build_clip(source: Path, workdir: Path) -> tuple[Path, dict]:
    """The 300-frame 640x480 clip (cached in `workdir`) and how it was made."""
    import cv2

    clip = workdir / f"{source.stem}_{WIDTH}x{HEIGHT}_{FRAMES}.mp4"
    sidecar = clip.with_suffix(".json")
    st = source.stat()
    want = {"source": str(source), "source_bytes": st.st_size, "recipe": CLIP_RECIPE}
    if clip.exists() and sidecar.exists():
        made = json.loads(sidecar.read_text())
        if {k: made.get(k) for k in want} == want and count_frames(clip) == FRAMES:
            return clip, made

    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise SystemExit(f"cannot decode {source}")
    src_h, src_w = frames[0].shape[:2]
    boxed = [letterbox(f, WIDTH, HEIGHT) for f in frames]
    cycle = boxed + boxed[-2:0:-1] if len(boxed) > 1 else boxed  # common.pingpong: no jump from last to first
    tmp = clip.with_name(clip.stem + ".partial.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (WIDTH, HEIGHT))
    for i in range(FRAMES):
        writer.write(cycle[i % len(cycle)])
    writer.release()
    if count_frames(tmp) != FRAMES:
        raise SystemExit(f"writing {tmp} with OpenCV's mp4v gave {count_frames(tmp)} frames, not {FRAMES}")
    tmp.replace(clip)
    made = {
        **want,
        "clip": str(clip),
        "frames": FRAMES,
        "size": f"{WIDTH}x{HEIGHT}",
        "fps": fps,
        "codec": "mp4v (cv2.VideoWriter)",
        "recipe_text": (
            f"{len(frames)} frames {src_w}x{src_h} of {source.name}, each letterboxed (aspect kept, black bars, "
            f"cv2.INTER_AREA) into {WIDTH}x{HEIGHT}, played forward and back (ping-pong, {len(cycle)}-frame cycle) "
            f"to {FRAMES} frames at the source's {fps:g} fps"
        ),
    }
    sidecar.write_text(json.dumps(made, indent=2) + "\n")
    return clip, made


def probe(python: str, code: str) -> tuple[dict | None, str]:
    """Run `code` (which prints one JSON object) with `python`; (that object, "") or (None, why not)."""
    try:
        p = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if p.returncode != 0:
        return None, (p.stderr.strip().splitlines() or [f"exit status {p.returncode}"])[-1]
    return json.loads(p.stdout.strip().splitlines()[-1]), ""


VERSIONS = (
    "import json, sys, importlib.metadata as md\n"
    "out = {'python': sys.version.split()[0]}\n"
    "for d in %r:\n"
    "    try: out[d] = md.version(d)\n"
    "    except md.PackageNotFoundError: pass\n"
    "print(json.dumps(out))"
)


def parse_install(text: str) -> tuple[str, Path]:
    name, sep, venv = text.partition("=")
    if not sep or not name or not venv:
        raise argparse.ArgumentTypeError(f"expected NAME=VENV_DIR, got {text!r}")
    path = Path(venv).expanduser().absolute()  # not resolved: a venv's bin/python is a symlink to keep as is
    for exe in ("python", "edgepose"):
        if not (path / "bin" / exe).exists():
            raise argparse.ArgumentTypeError(f"{path / 'bin' / exe} does not exist")
    return name, path


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def rnd(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 3)


def target(value: float | None, op: str, bound: float, what: str) -> dict:
    if value is None:
        return {"what": what, "target": f"{op} {bound}", "value": None, "pass": None}
    ok = value <= bound if op == "<=" else value >= bound
    return {"what": what, "target": f"{op} {bound}", "value": value, "pass": ok}


def summarize_case(case: Case, per_frame: bool) -> dict:
    walls = [s.wall_s for s in case.samples]
    rss = [s.rss_mb for s in case.samples]
    out: dict = {"command": shlex.join(case.argv), "n": len(walls), "failed": case.failed}
    if per_frame:
        ms = [w * 1000.0 / FRAMES for w in walls]
        out["samples_ms_per_frame"] = [round(x, 3) for x in ms]
        out["median_ms_per_frame"] = rnd(median(ms))
        out["min_ms_per_frame"] = rnd(min(ms) if ms else None)
    else:
        ms = [w * 1000.0 for w in walls]
        out["samples_ms"] = [round(x, 2) for x in ms]
        out["median_ms"] = rnd(median(ms), 2)
    out["samples_wall_s"] = [round(w, 4) for w in walls]
    out["samples_rss_mb"] = [round(x, 1) for x in rss]
    out["median_rss_mb"] = rnd(median(rss), 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--install",
        action="append",
        type=parse_install,
        metavar="NAME=VENV_DIR",
        help="an edgepose install under test (VENV_DIR/bin/edgepose, VENV_DIR/bin/python); repeatable. "
        "Default: current=the venv running this script",
    )
    ap.add_argument("--baseline-python", default=sys.executable, help="python for plain and tf-example")
    ap.add_argument("--mediapipe-python", default=None, help="python with mediapipe (default: try this one)")
    ap.add_argument("--video", type=Path, default=SOURCE_VIDEO, help="source of the clip")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "edgepose_whole_process")
    ap.add_argument("--rounds", type=int, default=3, help="video rounds (the protocol asks for >= 3)")
    ap.add_argument("--startup-rounds", type=int, default=10)
    ap.add_argument(
        "--threads-sweep",
        default="",
        help="comma list of inference thread counts: each install also runs as edgepose[NAME]@tN with --threads N "
        "(how the default thread count was chosen)",
    )
    ap.add_argument("--label", default="ci-x86_64-2core")
    ap.add_argument("--out", default=None, help="results JSON (default benchmarks/results/whole_process_LABEL.json)")
    args = ap.parse_args()
    if args.rounds < 1 or args.startup_rounds < 1:
        ap.error("--rounds and --startup-rounds must be >= 1")

    installs: dict[str, Path] = dict(args.install or [])
    if not installs:
        try:
            installs = dict([parse_install(f"current={sys.prefix}")])
        except argparse.ArgumentTypeError as e:
            ap.error(f"no --install given and the running venv has no edgepose: {e}")
    model_dir = Path(os.environ.get("EDGEPOSE_MODEL_DIR") or SHARED_DATA.parent / "models").absolute()
    if not (model_dir / MODEL_FILE).exists():
        ap.error(f"{model_dir / MODEL_FILE} not found (set EDGEPOSE_MODEL_DIR)")

    work = args.workdir.absolute()
    outdir = work / "out"
    outdir.mkdir(parents=True, exist_ok=True)
    clip, clip_info = build_clip(args.video.absolute(), work)
    print(f"clip: {clip} ({clip_info['recipe_text']})", file=sys.stderr)
    scripts = {"plain": PLAIN_SCRIPT, "tf-example": TF_EXAMPLE_SCRIPT, "mediapipe": MEDIAPIPE_SCRIPT}
    for name, text in scripts.items():
        # named so the script cannot shadow the package it imports (a mediapipe.py would, from sys.path[0])
        (work / f"case_{name.replace('-', '_')}.py").write_text(text)

    baseline_py = str(Path(args.baseline_python).absolute())
    software: dict[str, dict | str] = {}
    got, why = probe(baseline_py, VERSIONS % (("numpy", "opencv-python-headless", "opencv-python", "ai-edge-litert"),))
    if got is None:
        ap.error(f"--baseline-python {baseline_py}: {why}")
    software["baseline"] = {"python_path": baseline_py, **got}
    for name, venv in installs.items():
        got, why = probe(str(venv / "bin" / "python"), VERSIONS % (("edgepose", "numpy", "ai-edge-litert"),))
        software[f"edgepose[{name}]"] = {"venv": str(venv), **(got or {"error": why})}

    mp_py = str(Path(args.mediapipe_python).absolute()) if args.mediapipe_python else sys.executable
    mp_code = "import mediapipe, cv2\n" + VERSIONS % (("mediapipe", "numpy", "opencv-contrib-python"),)
    mp_got, mp_why = probe(mp_py, mp_code)
    mediapipe_status = "installed" if mp_got else f"not installed ({mp_py}: {mp_why})"
    software["mediapipe"] = {"python_path": mp_py, **(mp_got or {"status": mediapipe_status})}

    env = {**os.environ, "EDGEPOSE_MODEL_DIR": str(model_dir)}

    def out(name: str, ext: str) -> str:
        return str(outdir / f"{name.replace('[', '_').replace(']', '')}.{ext}")

    video_cases: list[Case] = []
    for name in ("plain", "tf-example"):
        so = out(name, "stdout")
        argv = [baseline_py, str(work / f"case_{name.replace('-', '_')}.py"), str(clip)]
        video_cases.append(Case(name, argv, so, out(name, "stderr"), count_lines_printed(so)))
    for name, venv in installs.items():
        cname = f"edgepose[{name}]"
        jsonl = Path(out(cname, "jsonl"))
        argv = [str(venv / "bin" / "edgepose"), "run", str(clip), "-o", str(jsonl)]
        video_cases.append(Case(cname, argv, out(cname, "stdout"), out(cname, "stderr"), count_json_lines(jsonl)))
        for n in (int(t) for t in args.threads_sweep.split(",") if t.strip()):
            tname = f"{cname}@t{n}"
            tjsonl = Path(out(tname, "jsonl"))
            targv = [*argv[:-1], str(tjsonl), "--threads", str(n)]
            video_cases.append(Case(tname, targv, out(tname, "stdout"), out(tname, "stderr"), count_json_lines(tjsonl)))
    if mp_got:
        so = out("mediapipe", "stdout")
        argv = [mp_py, str(work / "case_mediapipe.py"), str(clip)]
        video_cases.append(Case("mediapipe", argv, so, out("mediapipe", "stderr"), count_lines_printed(so)))

    startup_cases: list[Case] = []
    for name, venv in installs.items():
        py = str(venv / "bin" / "python")
        for what, argv in (
            ("baseline", [py, "-c", "import numpy, PIL.Image"]),
            ("import", [py, "-c", "import edgepose"]),
            # What a library user's first line costs, for honesty: `import edgepose` alone loads no pipeline.
            ("import-estimator", [py, "-c", "from edgepose import PoseEstimator"]),
            ("help", [str(venv / "bin" / "edgepose"), "--help"]),
        ):
            cname = f"{what}[{name}]"
            startup_cases.append(Case(cname, argv, os.devnull, out(cname, "stderr")))

    errors: list[dict] = []
    launcher = Launcher(env)
    try:
        floor = launcher.run(["/bin/true"], os.devnull, os.devnull)["maxrss_kib"] / 1024.0
        print(f"video: {len(video_cases)} cases x {args.rounds} rounds (+1 warm-up)", file=sys.stderr)
        run_interleaved(launcher, video_cases, args.rounds, errors, "video")
        print(f"start-up: {len(startup_cases)} cases x {args.startup_rounds} rounds (+1 warm-up)", file=sys.stderr)
        run_interleaved(launcher, startup_cases, args.startup_rounds, errors, "start-up")
    finally:
        launcher.close()

    cases = {c.name: summarize_case(c, per_frame=True) for c in video_cases}
    if not mp_got:
        cases["mediapipe"] = {"status": mediapipe_status}
    startup = {c.name: summarize_case(c, per_frame=False) for c in startup_cases}

    def ms(name: str) -> float | None:
        return cases.get(name, {}).get("median_ms_per_frame")

    ratios: dict[str, float | None] = {}
    targets: list[dict] = []
    startup_summary: dict[str, dict] = {}
    for name in installs:
        ep = f"edgepose[{name}]"
        ratios[f"{ep}_over_plain"] = ratio(ms(ep), ms("plain"))
        ratios[f"tf-example_over_{ep}"] = ratio(ms("tf-example"), ms(ep))
        ratios[f"mediapipe_over_{ep}"] = ratio(ms("mediapipe"), ms(ep)) if mp_got else None
        base, imp, hlp = (startup[f"{w}[{name}]"] for w in ("baseline", "import", "help"))
        s = {
            "baseline_ms": base.get("median_ms"),
            "import_edgepose_ms": imp.get("median_ms"),
            "import_estimator_ms": startup[f"import-estimator[{name}]"].get("median_ms"),
            "import_estimator_over_baseline": ratio(
                startup[f"import-estimator[{name}]"].get("median_ms"), base.get("median_ms")
            ),
            "help_ms": hlp.get("median_ms"),
            "import_over_baseline": ratio(imp.get("median_ms"), base.get("median_ms")),
            "help_over_baseline": ratio(hlp.get("median_ms"), base.get("median_ms")),
            "baseline_rss_mb": base.get("median_rss_mb"),
            "import_edgepose_rss_mb": imp.get("median_rss_mb"),
            "help_rss_mb": hlp.get("median_rss_mb"),
        }
        startup_summary[name] = s
        targets += [
            target(ratios[f"{ep}_over_plain"], "<=", 1.05, f"{ep} run / plain"),
            target(ratios[f"tf-example_over_{ep}"], ">=", 1.10, f"tf-example / {ep} run"),
        ]
        peer = target(ratios[f"mediapipe_over_{ep}"], ">=", 4.0, f"mediapipe / {ep} run")
        if not mp_got:
            peer["note"] = "mediapipe not installed"
        targets.append(peer)
        targets += [
            target(s["import_over_baseline"], "<=", 1.6, f"import edgepose / baseline [{name}]"),
            target(s["help_over_baseline"], "<=", 2.5, f"edgepose --help / baseline [{name}]"),
            target(cases[ep].get("median_rss_mb"), "<=", 110.0, f"{ep} run peak RSS MB"),
            target(s["import_edgepose_rss_mb"], "<=", 60.0, f"import edgepose peak RSS MB [{name}]"),
        ]

    result = {
        "benchmark": "whole_process",
        "label": args.label,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "protocol": (
            f"whole processes timed spawn to exit (start-up included), ms/frame = wall / {FRAMES}; "
            f"{args.rounds} video rounds and {args.startup_rounds} start-up rounds, case order rotated per round, "
            "one unrecorded warm-up run of each case; medians. Peak RSS: wait4 ru_maxrss (MiB), children spawned "
            "by a small launcher process so the parent's RSS does not leak into theirs."
        ),
        "meets_issue_protocol": args.rounds >= 3,
        "cpu_count": os.cpu_count(),
        "clip": clip_info,
        "model": str(model_dir / MODEL_FILE),
        "threads": "plain, tf-example: 2; edgepose: its default (min(4, cpu_count)); mediapipe: its default",
        "software": software,
        "rss_floor_mb": round(floor, 1),
        "cases": cases,
        "ratios": ratios,
        "startup": {"per_install": startup_summary, "cases": startup},
        "targets": targets,
        "errors": errors,
        "fingerprint": fingerprint(),
    }
    path = save_result(result, f"whole_process_{args.label}", args.out)
    print_table(result)
    print(f"wrote {path}")
    return 1 if errors else 0


def print_table(result: dict) -> None:
    def f(x: float | None, spec: str = ".2f") -> str:
        return "-" if x is None else format(x, spec)

    print(
        f"\nwhole process, {result['clip']['size']} x {FRAMES} frames ({result['label']}); RSS floor "
        f"{result['rss_floor_mb']} MB"
    )
    print(f"{'case':<22}{'ms/frame':>10}{'min':>9}{'wall s':>9}{'RSS MB':>9}{'n':>4}")
    for name, c in result["cases"].items():
        if "status" in c:
            print(f"{name:<22}{c['status']}")
            continue
        wall = median(c["samples_wall_s"])
        print(
            f"{name:<22}{f(c['median_ms_per_frame']):>10}{f(c['min_ms_per_frame']):>9}{f(wall):>9}"
            f"{f(c['median_rss_mb'], '.1f'):>9}{c['n']:>4}"
        )
    for k, v in result["ratios"].items():
        print(f"  {k:<40}{f(v, '.3f')}")
    print(
        f"{'start-up':<12}{'numpy+PIL':>11}{'import':>9}{'x':>7}{'--help':>9}{'x':>7}{'import RSS':>12}"
        f"{'PoseEstimator':>15}{'x':>7}"
    )
    for name, s in result["startup"]["per_install"].items():
        print(
            f"{name:<12}{f(s['baseline_ms'], '.0f'):>9}ms{f(s['import_edgepose_ms'], '.0f'):>7}ms"
            f"{f(s['import_over_baseline']):>7}{f(s['help_ms'], '.0f'):>7}ms{f(s['help_over_baseline']):>7}"
            f"{f(s['import_edgepose_rss_mb'], '.1f'):>9} MB{f(s['import_estimator_ms'], '.0f'):>13}ms"
            f"{f(s['import_estimator_over_baseline']):>7}"
        )
    for t in result["targets"]:
        verdict = {True: "pass", False: "FAIL", None: "n/a"}[t["pass"]]
        print(f"  {verdict:<5}{t['what']:<44}{f(t['value'], '.3f'):>9}  target {t['target']}")
    for e in result["errors"]:
        print(f"  ERROR {e['case']} ({e['phase']}): {e['error'].splitlines()[0]}")


if __name__ == "__main__":
    sys.exit(main())
