"""`edgepose bench --host`: the same bench on a fleet of boards over SSH, every board at once.

asyncssh, not Fabric/paramiko: one asyncio loop drives every board's connection, copy and remote run
concurrently without a thread per board, a cancelled task closes its connection (Ctrl-C stops every
remote run at once), and it reads known_hosts as OpenSSH writes it (hashed names, `[host]:port`,
`@revoked`, `@cert-authority`).

For each board: connect (host key checked against known_hosts; a new one trusted only with
--accept-new-host-key, a changed one always refused), check `REMOTE_CMD --version` against this edgepose,
copy the model files (and --input / --exercises-file) the board lacks, by SHA-256, into a folder of its own,
run `REMOTE_CMD bench ... --json - --no-db` there and hand back the board's document, fingerprinted by the
board itself. The remote run is wrapped so that it dies when the connection does: OpenSSH ignores the
SSH "signal" request, and a closed channel alone would leave the bench running. Every remote command runs
under `sh -c`, whatever the user's login shell (csh and fish do not read POSIX redirections).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import socket
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepose.assets.registry import BUNDLED_DIR, resolve_model, sha256_of
from edgepose.bench.db import check_document
from edgepose.bench.device_info import package_version
from edgepose.errors import EdgeposeError
from edgepose.image import is_image_file
from edgepose.io.video import is_video_file

if TYPE_CHECKING:
    from edgepose.bench.runner import BenchOptions

DEFAULT_REMOTE_DIR = ".cache/edgepose/fleet"  # relative to the board's home, where SFTP and the shell start
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
# Read with the user's file when no --known-hosts is given, as ssh does: keys a fleet's configuration
# management puts there are trusted, and a board listed there with another key is a mismatch, not new.
GLOBAL_KNOWN_HOSTS = Path("/etc/ssh/ssh_known_hosts")
# A remote bench prints its document at the end: nothing comes for minutes, so a board that vanished (pulled
# plug, Wi-Fi gone) is noticed by SSH keepalives, not by a time limit on the run.
_KEEPALIVE_S = 15
_KEEPALIVE_MISSES = 4
# Runs "$@" with stdin closed and kills it when the SSH channel's stdin ends: the connection closed (Ctrl-C
# here, a dropped link). In a session of its own (setsid) so that the whole process group goes, the python
# behind a wrapper script (`uv run`, `conda run`) included. Plain sh: dash and bash run it the same way.
_WATCHDOG = (
    "exec 3<&0; "
    'if command -v setsid >/dev/null 2>&1; then setsid "$@" </dev/null 3<&- & else "$@" </dev/null 3<&- & fi; '
    "p=$!; { cat <&3 >/dev/null 2>&1; kill -TERM -$p 2>/dev/null || kill -TERM $p 2>/dev/null; } & w=$!; "
    "exec 3<&-; wait $p; s=$?; kill $w 2>/dev/null; exit $s"
)
_HOST = re.compile(
    r"^(?:(?P<user>[^@\s]+)@)?(?:\[(?P<v6>[0-9A-Fa-f:.%\w]+)\]|(?P<name>[^@:\s\[\]]+))(?::(?P<port>\d+))?$"
)


@dataclass(frozen=True)
class Host:
    spec: str  # as given, for messages
    host: str
    port: int | None  # None: the port ~/.ssh/config (or 22) gives
    user: str | None


def parse_host(text: str) -> Host:
    """`user@board`, `board:2222`, `user@[fe80::1]:22`; raises EdgeposeError (one line) otherwise."""
    m = _HOST.match(text.strip())
    port = int(m["port"]) if m and m["port"] else None
    if not m or (port is not None and not 0 < port < 65536):
        raise EdgeposeError(f"--host {text!r}: expected [user@]host[:port]")
    return Host(spec=text.strip(), host=m["v6"] or m["name"], port=port, user=m["user"])


@dataclass
class FleetOptions:
    hosts: list[Host]
    identity: Path | None = None  # the private key to log in with; else ~/.ssh/config, the agent, default keys
    remote_cmd: str = "edgepose"
    remote_dir: str = DEFAULT_REMOTE_DIR
    known_hosts: Path | None = None  # None: ~/.ssh/known_hosts, with /etc/ssh/ssh_known_hosts read too
    accept_new_host_key: bool = False
    connect_timeout_s: float = 15.0


@dataclass
class HostOutcome:
    host: Host
    document: dict | None = None  # the board's run document; None when the host failed
    error: str | None = None  # one line, without the host
    exit_status: int = 0  # the remote bench's: 1 when some configurations failed there
    remote_lines: list[str] = field(default_factory=list)  # the board's own error/warning/note lines
    copied: list[str] = field(default_factory=list)  # file names sent to the board


@dataclass(frozen=True)
class _File:
    """A local file the remote bench needs, and where it goes on the board."""

    local: Path
    sha256: str
    remote: str  # relative to the board's home (or absolute, with an absolute --remote-dir)
    bundled: bool  # inside the package: the board's edgepose (same version, checked) has it already


@dataclass
class _Plan:
    files: list[_File]
    args: list[str]  # `bench` and its options, as the board runs it
    models_dir: str


def plan(opts: BenchOptions, fleet: FleetOptions, exercises_file: Path | None = None) -> _Plan:
    """The remote command and the files it needs; every local problem (an unknown model, a missing --input)
    is raised here, before any board is contacted."""
    base = remote_folder(fleet.remote_dir)
    models_dir = f"{base}/models"
    files: list[_File] = []
    args = ["bench"]
    for name in opts.models:
        resolved = resolve_model(name)
        digest = sha256_of(resolved.path)
        pinned = resolved.spec and (resolved.spec.sha256 or resolved.spec.sha256_prefix or "")
        if resolved.spec is not None and digest.startswith(pinned or "\0"):
            # A registry model goes by name into the board's model folder (EDGEPOSE_MODEL_DIR), where the
            # board's registry checks its pinned hash: results carry the same model name on every board.
            remote = f"{models_dir}/{resolved.spec.filename}"
            bundled = (BUNDLED_DIR / resolved.spec.filename).is_file()
            args += ["--model", resolved.spec.name]
        else:
            remote = f"{base}/{digest}/{resolved.path.name}"  # by content: two files of one name never clash
            bundled = False
            args += ["--model", remote]
        files.append(_File(resolved.path, digest, remote, bundled))
    for option, path in (("--input", opts.input), ("--exercises-file", exercises_file)):
        if path is None:
            continue
        if path.is_dir():
            raise EdgeposeError(f"{path}: {option} is a directory; give one file")
        if not path.is_file():
            raise EdgeposeError(f"{path}: no such file")
        if option == "--input" and not (is_image_file(path) or is_video_file(path)):
            raise EdgeposeError(f"{path}: --input must be an image or a video file")  # as a local bench says
        digest = sha256_of(path)
        remote = f"{base}/{digest}/{path.name}"
        files.append(_File(path, digest, remote, False))
        args += [option, remote]
    for backend in opts.backends:
        args += ["--backend", backend]
    for threads in opts.threads:
        if threads is not None:
            args += ["--threads", str(threads)]
    if opts.runs is not None:
        args += ["--runs", str(opts.runs)]
    if opts.duration_s is not None:
        args += ["--duration", repr(opts.duration_s)]
    args += ["--warmup", str(opts.warmup), "--mode", opts.mode]
    if opts.stills:
        args.append("--stills")
    if opts.exercise is not None:
        args += ["--exercise", opts.exercise]
    args += ["--json", "-", "--no-db"]
    return _Plan(_unique(files), args, models_dir)


def remote_folder(text: str) -> str:
    """--remote-dir as the remote commands use it: relative to the board's home (`~/x` is `x`) or absolute."""
    base = text.strip()
    if base.startswith("~/"):
        base = base[2:]
    base = base.rstrip("/")
    if base in ("", ".", "~") or base.startswith("-") or "\n" in base:
        raise EdgeposeError(f"--remote-dir {text!r}: give a folder of its own, e.g. .cache/edgepose/fleet")
    return base


def _unique(files: list[_File]) -> list[_File]:
    return list({f.remote: f for f in files}.values())


def run_fleet(
    opts: BenchOptions,
    fleet: FleetOptions,
    exercises_file: Path | None = None,
    on_done: Callable[[HostOutcome], None] | None = None,
    debug: bool = False,
) -> list[HostOutcome]:
    """Bench every host at once; `on_done(outcome)` as each one finishes. Raises EdgeposeError for what is
    wrong on this side (a model, --identity); a host's own failure is its outcome's `error`."""
    the_plan = plan(opts, fleet, exercises_file)
    asyncssh = _import_asyncssh()
    client_keys = None
    if fleet.identity is not None:
        try:
            client_keys = [asyncssh.read_private_key(str(fleet.identity))]
        except (OSError, asyncssh.KeyImportError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise EdgeposeError(f"--identity {fleet.identity}: {why}") from None
    version = package_version("edgepose") or "unknown"
    if fleet.known_hosts is None:
        known_hosts, also = DEFAULT_KNOWN_HOSTS.expanduser(), [GLOBAL_KNOWN_HOSTS]
    else:
        known_hosts, also = fleet.known_hosts.expanduser(), []

    async def main() -> list[HostOutcome]:
        async def one(host: Host) -> HostOutcome:
            outcome = HostOutcome(host)
            try:
                keys = _HostKeys(known_hosts, also, fleet.accept_new_host_key)
                await _bench_host(asyncssh, host, fleet, the_plan, client_keys, keys, version, outcome)
            except _HostFailed as e:
                outcome.error = str(e)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 (any one board's failure stays that board's line)
                if debug:
                    traceback.print_exc()
                outcome.error = _describe(asyncssh, e, host, fleet)
            if on_done is not None:
                on_done(outcome)
            return outcome

        return list(await asyncio.gather(*(one(h) for h in fleet.hosts)))

    # asyncio.run cancels the tasks on Ctrl-C: each closes its connection, which stops its remote run.
    return asyncio.run(main())


def _import_asyncssh():
    try:
        import asyncssh
    except ImportError:
        raise EdgeposeError("--host needs asyncssh: pip install 'edgepose[fleet]'") from None
    return asyncssh


class _HostFailed(Exception):
    """One board's failure, already worded."""


class _HostKeys:
    """known_hosts as OpenSSH uses it: a listed key is trusted; a host with no entry is trusted on first use
    only when asked (and then recorded); a host whose listed key differs is refused."""

    def __init__(self, path: Path, also: list[Path], accept_new: bool):
        self.path = path  # read, and written when a key is trusted on first use
        self.also = also  # read only
        self.accept_new = accept_new
        self.offered: Any = None
        self.seen_as: tuple[str, int] = ("", 22)  # the name and port the key was offered for (after ~/.ssh/config)
        self.mismatch = False
        self.revoked = False
        self.accepted = False

    def known(self, asyncssh) -> Any:
        texts = []
        for path in (self.path, *self.also):
            try:
                texts.append(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
            except (OSError, UnicodeDecodeError) as e:
                if path in self.also:
                    continue  # the system's file, unreadable to this user: ssh skips it too
                raise _HostFailed(f"cannot read known_hosts {path}: {getattr(e, 'strerror', None) or e}") from None
        try:
            return asyncssh.import_known_hosts("\n".join(texts))
        except (ValueError, asyncssh.KeyImportError) as e:
            raise _HostFailed(f"{self.path} is not readable as known_hosts: {e}") from None

    def client(self, asyncssh, known) -> type:
        keys = self

        class _Client(asyncssh.SSHClient):
            def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
                # Called only for a key known_hosts does not list for this host.
                keys.offered, keys.seen_as = key, (host, port)
                listed = known.match(host, addr, port)
                # match() drops the `[host]:port` lookup's revoked keys when it falls back to the port-less
                # one; the port's own lookup is asked separately so that a revoked key is never trusted.
                exact = known._match(host, addr, port) if hasattr(known, "_match") else listed
                if key in set(listed[2]) | set(exact[2]):
                    keys.revoked = True
                    return False
                if listed[0] or listed[1] or exact[0] or exact[1]:  # other keys or a CA listed: the key changed
                    keys.mismatch = True
                    return False
                keys.accepted = keys.accept_new
                return keys.accept_new

        return _Client

    def record(self) -> None:
        """Append the key trusted on first use, as `ssh` with HashKnownHosts off writes it."""
        host, port = self.seen_as
        name = host if port in (None, 22) else f"[{host}]:{port}"
        algorithm, blob = self.offered.export_public_key("openssh").decode().split()[:2]
        line = f"{name} {algorithm} {blob}\n"
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        if line in text.splitlines(keepends=True):
            return  # two --host entries for one board, both trusted on first use
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(("\n" if text and not text.endswith("\n") else "") + line)
        except OSError as e:
            raise _HostFailed(f"cannot record the host key in {self.path}: {e.strerror or e}") from None

    def fingerprint(self) -> str:
        return self.offered.get_fingerprint("sha256") if self.offered is not None else "?"

    def entry(self) -> str:
        host, port = self.seen_as
        return host if port in (None, 22) else f"[{host}]:{port}"


async def _bench_host(
    asyncssh,
    host: Host,
    fleet: FleetOptions,
    the_plan: _Plan,
    client_keys,
    keys: _HostKeys,
    version: str,
    outcome: HostOutcome,
) -> None:
    known = keys.known(asyncssh)
    connect: dict[str, Any] = {
        "known_hosts": known,
        "client_factory": keys.client(asyncssh, known),
        "connect_timeout": fleet.connect_timeout_s,
        "keepalive_interval": _KEEPALIVE_S,
        "keepalive_count_max": _KEEPALIVE_MISSES,
    }
    if host.port is not None:
        connect["port"] = host.port
    if host.user is not None:
        connect["username"] = host.user
    if client_keys is not None:
        connect["client_keys"] = client_keys
        connect["agent_path"] = None  # like `ssh -i KEY -o IdentitiesOnly=yes`: the key given, nothing else
    try:
        conn = await asyncssh.connect(host.host, **connect)
    except asyncssh.HostKeyNotVerifiable as e:
        where = keys.path
        if keys.revoked:
            raise _HostFailed(f"host key {keys.fingerprint()} is marked @revoked in known_hosts: refused") from None
        if keys.mismatch:
            raise _HostFailed(
                f"HOST KEY MISMATCH: the board offered {keys.fingerprint()}, which known_hosts does not list for "
                f"it: refused (if the board was reinstalled, check and run: ssh-keygen -f {where} -R "
                f"'{keys.entry()}')"
            ) from None
        if keys.offered is None:  # refused by asyncssh itself: a revoked key or a host certificate it rejects
            raise _HostFailed(f"host key refused: {e.reason}") from None
        raise _HostFailed(
            f"host key {keys.fingerprint()} is not in {where}: check it on the board "
            "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and pass --accept-new-host-key to trust it"
        ) from None
    except (asyncio.TimeoutError, TimeoutError):
        raise _HostFailed(f"no answer within {fleet.connect_timeout_s:g} s") from None
    except socket.gaierror as e:
        raise _HostFailed(f"unknown host {host.host!r} ({e.strerror})") from None
    except OSError as e:  # asyncio words ECONNREFUSED as "Connect call failed (addr)": say the errno's name
        port = f" port {host.port}" if host.port else ""
        raise _HostFailed(f"cannot connect{port}: {os.strerror(e.errno) if e.errno else e}") from None
    async with conn:
        if keys.accepted:
            keys.record()
        await _check_version(asyncssh, conn, fleet.remote_cmd, version, fleet.connect_timeout_s)
        await _send_files(conn, the_plan.files, outcome)
        outcome.document = await _run_bench(conn, fleet.remote_cmd, the_plan, outcome)


def _sh(command: str) -> str:
    """`command` run by sh on the board, whatever its user's login shell."""
    return "sh -c " + shlex.quote(command)


async def _check_version(asyncssh, conn, remote_cmd: str, version: str, timeout_s: float) -> None:
    # A Python start on a Pi 4's SD card can take seconds: a wider limit than the connection's.
    limit = max(60.0, 4 * timeout_s)
    try:
        done = await conn.run(_sh(f"{remote_cmd} --version"), check=False, timeout=limit)
    except asyncssh.TimeoutError:
        raise _HostFailed(f"'{remote_cmd} --version' did not answer within {limit:g} s") from None
    out = (done.stdout or "").strip()
    if done.exit_status == 127 or (done.exit_status and "not found" in (done.stderr or "")):
        raise _HostFailed(
            f"{remote_cmd!r} not found on the board: install edgepose there (pip install edgepose=={version}) "
            "or give --remote-cmd PATH (e.g. ~/venv/bin/edgepose)"
        )
    words = out.split()
    if done.exit_status or len(words) != 2 or words[0] != "edgepose":
        last = _last_line(done.stderr) or out[:80]
        raise _HostFailed(f"'{remote_cmd} --version' failed (exit {done.exit_status}): {last}")
    if words[1] != version:
        raise _HostFailed(
            f"the board has edgepose {words[1]}, this machine {version}: results would not compare; "
            f"install the same version on the board (pip install edgepose=={version})"
        )


async def _send_files(conn, files: Sequence[_File], outcome: HostOutcome) -> None:
    """Copy what the board lacks, by SHA-256: streamed into a temporary name, renamed only when all of it
    arrived (a dropped link ends `cat` as a normal end of input would), then checked.

    Through `cat` on an exec channel rather than SFTP: boards running dropbear or a BusyBox image often have
    no sftp-server, and every one has a shell."""
    wanted = [f for f in files if not f.bundled]
    if not wanted:
        return
    have = await _remote_hashes(conn, [f.remote for f in wanted])
    missing = [f for f in wanted if have.get(f.remote) != f.sha256]
    for f in missing:
        folder, tmp = f.remote.rsplit("/", 1)[0], f"{f.remote}.part-{uuid.uuid4().hex[:12]}"
        q = shlex.quote
        size = f.local.stat().st_size
        command = (
            f'mkdir -p -- {q(folder)} && cat > {q(tmp)} && [ "$(wc -c < {q(tmp)})" -eq {size} ] '
            f"&& mv -f -- {q(tmp)} {q(f.remote)} || {{ rm -f -- {q(tmp)}; exit 1; }}"
        )
        done = await conn.run(_sh(command), stdin=str(f.local), encoding=None, check=False)
        if done.exit_status:
            why = _last_line((done.stderr or b"").decode(errors="replace"))
            raise _HostFailed(f"cannot copy {f.local.name} to {f.remote} on the board: {why or 'failed'}")
        outcome.copied.append(f.local.name)
    have = await _remote_hashes(conn, [f.remote for f in missing]) if missing else {}
    for f in missing:
        if have.get(f.remote) != f.sha256:
            raise _HostFailed(f"copied {f.local.name} but its SHA-256 on the board differs: disk full or failing?")


async def _remote_hashes(conn, paths: Sequence[str]) -> dict[str, str]:
    """SHA-256 of each remote file that exists (coreutils' or BusyBox's sha256sum). Each file is read from
    stdin, so names with a backslash or a newline (which sha256sum escapes in its listing) are no problem."""
    script = "; ".join(
        f"h=$(sha256sum < {shlex.quote(p)} 2>/dev/null) && echo {i} ${{h%% *}}" for i, p in enumerate(paths)
    )
    done = await conn.run(_sh(script), check=False)
    found = {}
    for line in (done.stdout or "").splitlines():
        index, _, digest = line.partition(" ")
        if index.isdigit() and int(index) < len(paths) and len(digest) == 64:
            found[paths[int(index)]] = digest
    return found


async def _run_bench(conn, remote_cmd: str, the_plan: _Plan, outcome: HostOutcome) -> dict:
    env = f'EDGEPOSE_MODEL_DIR="$HOME"/{shlex.quote(the_plan.models_dir)}'
    if the_plan.models_dir.startswith("/"):
        env = f"EDGEPOSE_MODEL_DIR={shlex.quote(the_plan.models_dir)}"
    inner = f"{env} exec {remote_cmd} " + " ".join(shlex.quote(a) for a in the_plan.args)
    command = "sh -c " + shlex.quote(_WATCHDOG) + " edgepose sh -c " + shlex.quote(inner)
    process = await conn.create_process(command)
    done = await process.wait(check=False)
    outcome.remote_lines = [line for line in (done.stderr or "").splitlines() if line.startswith("edgepose: ")]
    outcome.exit_status = done.exit_status or 0
    document = None
    with contextlib.suppress(json.JSONDecodeError):
        document = json.loads(done.stdout or "")
    if not isinstance(document, dict) or not document.get("results"):
        if done.exit_signal:
            raise _HostFailed(f"remote bench killed by signal {done.exit_signal[0]}")
        raise _HostFailed(f"remote bench failed (exit {done.exit_status}): {_last_error(done.stderr) or 'no result'}")
    try:
        check_document(document)  # what the DB will store: refused here, as this board's failure
    except EdgeposeError as e:
        raise _HostFailed(f"the board's result is not a bench document: {e}") from None
    return document


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _last_error(text: str | None) -> str:
    errors = [line for line in (text or "").splitlines() if line.startswith("edgepose: error: ")]
    if errors:
        return errors[-1].removeprefix("edgepose: error: ")
    return _last_line(text)


def _describe(asyncssh, e: BaseException, host: Host, fleet: FleetOptions) -> str:
    """One line for what went wrong on a board after connecting (connecting has its own lines)."""
    if isinstance(e, asyncssh.PermissionDenied):
        how = f"key {fleet.identity}" if fleet.identity else "your SSH agent and default keys"
        return f"authentication refused (user {host.user or 'from ~/.ssh/config or yours'}, {how})"
    if isinstance(e, asyncssh.ConnectionLost):
        return f"connection lost: {e.reason or 'the board stopped answering'}"
    if isinstance(e, (asyncssh.DisconnectError, asyncssh.ChannelOpenError)):
        return f"SSH: {e.reason}"
    if isinstance(e, asyncssh.ProcessError):
        return f"remote command failed (exit {e.exit_status}): {_last_line(e.stderr)}"
    if isinstance(e, OSError):
        return f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}"
    return f"{type(e).__name__}: {e}"
