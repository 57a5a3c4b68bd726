"""A real OpenSSH server on 127.0.0.1 and a second venv behind it: the "board" of the fleet tests.

sshd is Debian's openssh-server (.ci/run installs it when missing), started on a free port with a host key
and an authorized key made for the test; the board's edgepose is a venv of its own
($EDGEPOSE_TEST_BOARD_VENV, else one built here with this checkout installed into it). A second board
under a hostname of its own runs in a UTS namespace (`unshare --uts`), which needs root, as CI has.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> str:
    """An ed25519 key pair at `path` (+ .pub); returns the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@dataclass
class SshServer:
    folder: Path
    port: int
    host_key: str  # "ssh-ed25519 AAAA..."
    user: str
    process: subprocess.Popen | None = None

    @property
    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_key}\n"

    def log(self) -> str:
        path = self.folder / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def start_sshd(folder: Path, authorized: list[str], hostname: str | None = None) -> SshServer:
    """sshd in the foreground on a free port of 127.0.0.1, accepting only `authorized` public keys.

    hostname: run it in a UTS namespace of its own under this name, so the boards behind two servers
    fingerprint as two devices (the bench's device_id and label come from the hostname)."""
    if not os.path.exists(SSHD):
        raise RuntimeError("sshd not found: install Debian's openssh-server (apt-get install openssh-server)")
    folder.mkdir(parents=True, exist_ok=True)
    host_key = keygen(folder / "host_key")
    (folder / "authorized_keys").write_text("".join(k + "\n" for k in authorized))
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        # The test's temp folders are not root-owned 0755 all the way up, which StrictModes demands.
        "StrictModes no\nPermitRootLogin prohibit-password\nMaxStartups 50\nLogLevel VERBOSE\n"
    )
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation's empty root
    server = SshServer(folder, port, host_key, getpass.getuser())
    log = open(folder / "sshd.log", "w")  # noqa: SIM115 (sshd writes it while the tests run)
    command = [SSHD, "-D", "-e", "-f", str(config)]
    if hostname is not None:
        command = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', hostname, *command]
    server.process = subprocess.Popen(command, stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"sshd exited: {server.log()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"sshd did not listen on {port}: {server.log()}")


def board_edgepose(folder: Path) -> Path:
    """The board's `edgepose`: $EDGEPOSE_TEST_BOARD_VENV's, else a venv built here.

    The built venv gets this checkout installed (not editable: a board runs an installed package) and sees
    this venv's dependencies through a .pth line (only the build backend comes from the package index).
    """
    given = os.environ.get("EDGEPOSE_TEST_BOARD_VENV")
    if given:
        exe = Path(given).resolve() / "bin" / "edgepose"
        if not exe.is_file():
            raise RuntimeError(f"EDGEPOSE_TEST_BOARD_VENV={given} has no bin/edgepose")
        return exe
    venv = folder / "board-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", str(REPO)],
        check=True,
        capture_output=True,
    )
    return venv / "bin" / "edgepose"
