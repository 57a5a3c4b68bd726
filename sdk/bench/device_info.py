"""What machine a benchmark ran on, and whether it was hot or throttled while it ran.

Everything is read from /proc, /sys and `vcgencmd` when they exist; a field a platform does not expose
is None, never a guess. On a Raspberry Pi, `vcgencmd get_throttled` is the authority on throttling;
elsewhere the kernel's per-core thermal-throttle counters (x86) are compared before and after.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.metadata
import os
import platform
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Edge TPU USB accelerator: Global Unichip before its firmware is loaded, Google after.
_CORAL_USB_IDS = {("1a6e", "089a"), ("18d1", "9302")}
_BACKEND_PACKAGES = ("ai-edge-litert", "tflite-runtime", "onnxruntime", "opencv-python-headless")
# vcgencmd get_throttled bits: 0-3 = now (under-voltage, ARM frequency capped, throttled, soft temperature
# limit), 16-19 = the same conditions seen since boot.
_THROTTLED_NOW = 0xF
_THROTTLED_SINCE_BOOT = 0xF0000


# The file system the readings come from: "/" on a device; in tests, a folder laid out like a Raspberry Pi
# or a Coral board's /proc and /sys.
ROOT = Path("/")


def _at(path: str | Path) -> Path:
    return ROOT / str(path).lstrip("/")


def _read(path: str | Path) -> str | None:
    try:
        return _at(path).read_text(errors="replace").replace("\x00", "").strip()
    except OSError:
        return None


def _glob(pattern: str) -> list[str]:
    """Paths matching `pattern` (absolute, as on the device) under ROOT, named as on the device."""
    root = str(ROOT).rstrip("/")
    return sorted(p[len(root) :] if root else p for p in glob.glob(str(_at(pattern))))


def _cpu_model() -> str:
    info = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in info.splitlines():
            if line.split(":", 1)[0].strip() == key and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _ram_mb() -> float | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def _coral() -> dict[str, int]:
    usb = 0
    for dev in _glob("/sys/bus/usb/devices/*"):
        ids = (_read(f"{dev}/idVendor"), _read(f"{dev}/idProduct"))
        usb += ids in _CORAL_USB_IDS
    pcie = len(_glob("/dev/apex_*"))
    return {"usb": usb, "pcie": pcie}


def package_version(name: str) -> str | None:
    """The installed version of a distribution (`edgepose`, `ai-edge-litert`, ...), or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def board() -> str | None:
    """The device tree's model ("Raspberry Pi 5 Model B Rev 1.0"), or None off such boards."""
    return _read("/proc/device-tree/model")


def throttled_now(word: str | None) -> bool | None:
    """Whether a `vcgencmd get_throttled` word says the board is throttled at this moment (None: unknown)."""
    try:
        return None if word is None else bool(int(word, 16) & _THROTTLED_NOW)
    except ValueError:
        return None


def _versions() -> dict[str, str]:
    return {name: v for name in _BACKEND_PACKAGES if (v := package_version(name)) is not None}


def _thermal_zones() -> list[dict[str, str]]:
    return [
        {"zone": Path(z).name, "type": _read(f"{z}/type") or "?"} for z in _glob("/sys/class/thermal/thermal_zone*")
    ]


def fingerprint() -> dict:
    """The device as the bench result records it (bench.schema.DEVICE_SCHEMA)."""
    cpu, model = _cpu_model(), board()
    hostname = socket.gethostname()
    cores = os.cpu_count() or 1
    # The id must stay the same across runs and edgepose versions on one board, and differ between two
    # boards of one model left with the default hostname (their serial number or machine-id), so compare
    # can line up each device's history.
    serial = _read("/proc/device-tree/serial-number") or _read("/etc/machine-id") or ""
    device_id = hashlib.sha256("|".join([hostname, model or "", cpu, platform.machine(), str(cores), serial]).encode())
    return {
        "device_id": device_id.hexdigest()[:16],
        "hostname": hostname,
        "os": platform.platform(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": cores,
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores,
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "ram_mb": _ram_mb(),
        "board": model,
        "coral": _coral(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "backends": _versions(),
        "libedgetpu": _libedgetpu(),
        "thermal_zones": _thermal_zones(),
    }


def _libedgetpu() -> bool:
    import ctypes.util

    return ctypes.util.find_library("edgetpu") is not None or bool(_glob("/usr/lib/*/libedgetpu.so.1*"))


@dataclass(frozen=True)
class ThermalState:
    """One reading: the hottest thermal zone, the firmware's throttle word, the kernel's throttle counts."""

    temp_c: float | None
    throttled: str | None  # `vcgencmd get_throttled` as hex, e.g. "0x0"
    throttle_events: int | None  # sum of /sys/devices/system/cpu/cpu*/thermal_throttle/*_throttle_count


def thermal_state() -> ThermalState:
    temps = []
    for z in _glob("/sys/class/thermal/thermal_zone*/temp"):
        raw = _read(z)
        if raw and raw.lstrip("-").isdigit() and int(raw) > 0:
            temps.append(int(raw) / 1000.0)
    counts = [
        int(v)
        for p in _glob("/sys/devices/system/cpu/cpu*/thermal_throttle/*_throttle_count")
        if (v := _read(p)) and v.isdigit()
    ]
    return ThermalState(
        temp_c=round(max(temps), 1) if temps else None,
        throttled=_vcgencmd_throttled(),
        throttle_events=sum(counts) if counts else None,
    )


def _vcgencmd_throttled() -> str | None:
    exe = shutil.which("vcgencmd")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=2).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    # "throttled=0x50005"
    value = out.strip().partition("=")[2]
    return value if value.startswith("0x") else None


def was_throttled(before: ThermalState, after: ThermalState) -> bool:
    """True when the numbers taken between the two readings may be slowed by throttling."""
    if after.throttled is not None:
        now = int(after.throttled, 16)
        earlier = int(before.throttled, 16) if before.throttled is not None else 0
        if now & _THROTTLED_NOW or (now & _THROTTLED_SINCE_BOOT) & ~(earlier & _THROTTLED_SINCE_BOOT):
            return True
    if before.throttle_events is not None and after.throttle_events is not None:
        return after.throttle_events > before.throttle_events
    return False


def thermal_record(before: ThermalState, readings: list[ThermalState]) -> dict:
    """The `thermal` object of a bench result (bench.schema.THERMAL_SCHEMA), from the reading before the
    timing and those taken after each timed block: an episode of throttling in the middle of a run that
    is over by its end is still caught."""
    temps = [r.temp_c for r in (before, *readings) if r.temp_c is not None]
    after = readings[-1] if readings else before
    return {
        "before_c": before.temp_c,
        "after_c": after.temp_c,
        "max_c": max(temps) if temps else None,
        "throttled_before": before.throttled,
        "throttled_after": after.throttled,
        "throttled": any(was_throttled(before, r) for r in readings),
    }
