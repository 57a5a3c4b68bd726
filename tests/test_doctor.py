"""`edgepose doctor` on this machine, and on faked /proc and /sys of a Raspberry Pi 5 with a Coral USB
Accelerator and of a board with a Coral PCIe card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgepose.bench import device_info
from edgepose.bindings import litert, tflite_rt
from edgepose.cli import app
from edgepose.doctor import SCHEMA, doctor_report
from edgepose.errors import BackendError
from tests.conftest import REQUIRED_MODELS, Cli, cli_env

KEYS = {
    "schema": str, "edgepose": str, "python": str, "executable": str, "os": str, "machine": str,
    "raspberry_pi": bool, "cpu": dict, "numpy": str, "backends": list, "coral": dict, "opencv": dict,
    "picamera2": dict, "video_devices": list, "models": dict, "default_model": dict, "ok": bool, "verdict": str,
}  # fmt: skip


def test_doctor_json_on_this_machine(model_dir, tmp_path):
    r = Cli(cli_env(model_dir, tmp_path))("doctor", "--json", "-")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["schema"] == SCHEMA
    for key, kind in KEYS.items():
        assert isinstance(report[key], kind), key
    assert report["board"] is None or isinstance(report["board"], str)
    assert [b["name"] for b in report["backends"]] == ["litert", "tflite-runtime", "onnxruntime", "edgetpu"]
    litert_row = report["backends"][0]
    assert litert_row["usable"] and litert_row["version"] and litert_row["problem"] is None
    assert all(b["usable"] or b["problem"] for b in report["backends"])  # every "no" says why
    default = report["default_model"]
    assert default["ok"] and default["backend"].startswith("litert") and default["invoke_ms"] > 0
    present = {m["name"]: m for m in report["models"]["present"]}
    assert set(REQUIRED_MODELS) <= set(present) and all(present[n]["sha256_ok"] for n in REQUIRED_MODELS)
    assert report["ok"] and report["verdict"].startswith("ready: movenet-lightning-int8 runs on litert")


def fake_board(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


PI5 = {
    "/proc/device-tree/model": "Raspberry Pi 5 Model B Rev 1.0\x00",
    "/proc/cpuinfo": "processor\t: 0\nBogoMIPS\t: 108.00\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n",
    "/proc/meminfo": "MemTotal:        8245104 kB\n",
    "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "ondemand\n",
    "/sys/class/thermal/thermal_zone0/type": "cpu-thermal\n",
    "/sys/class/thermal/thermal_zone0/temp": "61250\n",
    "/sys/bus/usb/devices/2-1/idVendor": "18d1\n",  # a Coral USB Accelerator, firmware loaded
    "/sys/bus/usb/devices/2-1/idProduct": "9302\n",
    "/sys/bus/usb/devices/1-1/idVendor": "046d\n",  # a keyboard
    "/sys/bus/usb/devices/1-1/idProduct": "c52b\n",
    "/dev/video0": "",
    "/dev/video19": "",
}


def test_doctor_on_a_raspberry_pi_5_with_a_coral_usb(monkeypatch, tmp_path):
    fake_board(tmp_path, PI5)
    monkeypatch.setattr(device_info, "ROOT", tmp_path)
    monkeypatch.setattr(device_info, "_libedgetpu", lambda: False)  # the host has none either way
    report = doctor_report()
    assert report["board"] == "Raspberry Pi 5 Model B Rev 1.0" and report["raspberry_pi"]
    assert report["cpu"]["model"] == "Raspberry Pi 5 Model B Rev 1.0"
    assert report["cpu"]["governor"] == "ondemand" and report["cpu"]["temperature_c"] == 61.2
    assert report["coral"] == {"usb": 1, "pcie": 0}
    assert report["video_devices"] == ["/dev/video0", "/dev/video19"]
    edgetpu = report["backends"][-1]
    assert not edgetpu["usable"] and "libedgetpu is not installed" in edgetpu["problem"]
    assert report["ok"]  # the CPU runs the default model all the same
    result = CliRunner().invoke(app, ["doctor"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "Raspberry Pi 5 Model B" in result.output and "Coral USB 1, PCIe 0" in result.output
    assert "governor ondemand" in result.output and "61.2 °C" in result.output
    # With libedgetpu installed the TPU is ready.
    monkeypatch.setattr(device_info, "_libedgetpu", lambda: True)
    edgetpu = doctor_report()["backends"][-1]
    assert edgetpu["usable"] and edgetpu["devices"] == {"usb": 1, "pcie": 0}


def test_doctor_sees_a_coral_pcie_card_and_libedgetpu_without_a_device(monkeypatch, tmp_path):
    fake_board(tmp_path, {"/dev/apex_0": ""})
    monkeypatch.setattr(device_info, "ROOT", tmp_path)
    monkeypatch.setattr(device_info, "_libedgetpu", lambda: True)
    assert doctor_report()["coral"] == {"usb": 0, "pcie": 1}
    (tmp_path / "dev" / "apex_0").unlink()
    edgetpu = doctor_report()["backends"][-1]
    assert not edgetpu["usable"] and "no Coral USB or PCIe device is attached" in edgetpu["problem"]


def test_doctor_fails_when_nothing_can_run_the_default_model(monkeypatch, tmp_path):
    def missing():
        raise BackendError("LiteRT is not installed: pip install ai-edge-litert")

    def numpy2():
        raise BackendError("tflite-runtime failed to import under numpy 2.4.6; it needs numpy<2")

    monkeypatch.setattr(litert, "interpreter_module", missing)
    monkeypatch.setattr(tflite_rt, "interpreter_module", numpy2)
    report = doctor_report()
    assert not report["ok"] and report["verdict"].startswith("not ready: movenet-lightning-int8 cannot run")
    assert "numpy<2" in report["backends"][1]["problem"]
    out = tmp_path / "doctor.json"
    result = CliRunner().invoke(app, ["doctor", "--json", str(out)], catch_exceptions=False)
    assert result.exit_code == 1 and json.loads(out.read_text())["ok"] is False
    assert "not ready" in result.output


@pytest.mark.parametrize("bad", ["a-file/x.json", "."])
def test_doctor_json_to_a_bad_path_is_one_line(model_dir, tmp_path, bad):
    (tmp_path / "a-file").write_text("")
    r = Cli(cli_env(model_dir, tmp_path))("doctor", "--json", str(tmp_path / bad))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr


def test_doctor_reports_a_runtime_that_breaks_in_its_own_way(monkeypatch):
    # A wheel for another CPU or glibc: not an ImportError, and the package's metadata says it is there.
    def broken():
        raise AttributeError("_ARRAY_API not found")

    monkeypatch.setattr(litert, "interpreter_module", broken)
    monkeypatch.setattr(tflite_rt, "interpreter_module", broken)
    report = doctor_report()
    assert not report["ok"] and "AttributeError: _ARRAY_API not found" in report["default_model"]["problem"]
    row = report["backends"][0]
    assert not row["usable"] and row["problem"].startswith("ai-edge-litert is installed but fails to import")
