"""A Ray actor pool for `run --ray` and `eval --ray`: one job object per actor, tasks mapped in order.

    with ray_session(address=None, num_cpus=2) as session:
        pool = ActorPool(session, MyJob, (options,), workers=2, threads=1)
        for result in pool.map(tasks):
            ...  # in task order, each task's result exactly once

A job is any picklable class importable on every node: built once per actor (the model loaded once), then
called with one task at a time. Ray is imported only by this module, which the CLI imports only for
`--ray`; nothing else in the SDK needs it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from edgepose.bindings.native_stderr import quiet_native_stderr
from edgepose.errors import EdgeposeError

INSTALL_HINT = "--ray needs Ray: pip install 'edgepose[ray]'"
# The SDK's own settings, passed to every actor so that models resolve the same way on every node.
FORWARDED_ENV = ("EDGEPOSE_MODEL_DIR", "EDGEPOSE_OFFLINE")
# A worker process that dies (killed, out of memory, a native crash) is restarted and its task run again,
# up to this many times; a task that still cannot finish is reported as lost, never silently dropped.
MAX_TASK_RETRIES = 3
# Photos per task: enough that the round trip through Ray (~1 ms) is small next to the work (~30 ms a
# photo), few enough that the last tasks spread over the workers.
DEFAULT_BATCH = 8
# Tasks queued per actor: the next one is already there when the current one ends, hiding the round trip.
DEPTH = 2


def require_ray(local: bool) -> None:
    """Import Ray, or raise EdgeposeError with the install line.

    A local cluster gets token authentication, as Ray 2.5x gives a new local cluster by default, but
    asked for explicitly: Ray then says nothing about it on stderr. It must be set before Ray reads its
    configuration, which it does on import.
    """
    if local:
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    try:
        import ray  # noqa: F401
    except ImportError as e:
        raise EdgeposeError(INSTALL_HINT) from e


class _Discard(io.TextIOBase):
    def write(self, s: str) -> int:
        return len(s)


class _DebugStderr(io.TextIOBase):
    def write(self, s: str) -> int:
        import sys

        return sys.stderr.write(s)


@dataclass(frozen=True)
class RaySession:
    local: bool  # a cluster of our own, started for this run on this machine


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None = None, debug: bool = False) -> Iterator[RaySession]:
    """Start a local Ray cluster (`address` None; `num_cpus` CPUs) or connect to the one at `address`;
    shut it down (or disconnect) on every way out, Ctrl-C included.

    Ray's start-up chatter and its driver-side reports (a worker that died, printed by Ray on *stdout*,
    where the JSON lines go) are kept out of the output: the run reports what matters itself. With
    `debug` they go to stderr.
    """
    require_ray(local=address is None)
    import ray

    if address is not None:
        _probe(address)
    before = signal.getsignal(signal.SIGTERM)
    level = logging.INFO if debug else logging.ERROR
    try:
        # Ctrl-C waits for the start to finish (seconds): a cluster stopped halfway leaves Ray's agent
        # processes running, and crashes the interpreter on its way out.
        with _deferred_interrupt() as interrupted, contextlib.redirect_stdout(_Discard()):
            if address is None:
                ray.init(
                    address="local",
                    num_cpus=num_cpus,
                    include_dashboard=False,
                    log_to_driver=debug,
                    logging_level=level,
                    configure_logging=True,
                )
            else:
                # Ray's C++ client retries a refused connection for ~20 s, a multi-line warning a second on
                # fd 2 (an unauthenticated client against a token cluster, say): the outcome is our line.
                with contextlib.nullcontext() if debug else quiet_native_stderr():
                    ray.init(address=address, log_to_driver=debug, logging_level=level, configure_logging=True)
    except Exception as e:  # a bad address, an unreachable or incompatible cluster, no room in /tmp
        with contextlib.suppress(Exception):
            ray.shutdown()
        what = "cannot start a local Ray cluster" if address is None else f"cannot connect to --ray-address {address}"
        hint = ""
        if address is not None and os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
            # Ray enables token authentication only for clusters it finds itself, never for a given address.
            hint = " (a cluster with token authentication, Ray's default, needs RAY_AUTH_MODE=token and its token)"
        raise EdgeposeError(f"{what}: {_first_line(e)}{hint}") from None
    except SystemExit:
        # SIGTERM while Ray starts: its handler, in place meanwhile, exits. Stop what started, then let the
        # caller's handler (the CLI's removes temporary outputs and says "terminated") have the signal.
        with contextlib.suppress(Exception):
            ray.shutdown()
        if callable(before):
            before(signal.SIGTERM, None)
        raise
    finally:
        # ray.init makes SIGTERM exit at once; the CLI's own handler removes temporary outputs first.
        signal.signal(signal.SIGTERM, before)
    if interrupted:
        ray.shutdown()
        raise KeyboardInterrupt
    # Shutting down flushes the reports Ray held back to deduplicate them: still redirected.
    with contextlib.redirect_stdout(_DebugStderr() if debug else _Discard()):
        try:
            yield RaySession(local=address is None)
        finally:
            ray.shutdown()


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[list[int]]:
    """SIGINT noted (the yielded list gets an item), not raised, until the block ends; only where Python
    runs its handlers (the main thread)."""
    import threading

    noted: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return
    before = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, before)


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Refuse an address where nothing answers: ray.init would retry it for ever, a warning a minute."""
    if address == "auto":
        return  # Ray finds the local cluster's address itself, and says at once when there is none
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise EdgeposeError(f"--ray-address {address}: give HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise EdgeposeError(f"cannot connect to --ray-address {address}: {e.strerror or e}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def cluster_cpus() -> int:
    """CPUs the connected cluster has in all (alive nodes)."""
    import ray

    return int(ray.cluster_resources().get("CPU", 0))


def largest_node_cpus() -> int:
    """The CPUs of the biggest alive node: a worker's threads must fit on one node."""
    import ray

    return max((int(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=0)


def local_cluster_cpus(workers: int | None, threads: int) -> int:
    """CPUs for a local cluster: the cores, or what the workers asked for need (oversubscribing them is the
    user's choice, as --threads above the cores is without --ray)."""
    return max(workers * threads if workers else local_cpus(), threads)


def local_cpus() -> int:
    """The CPUs this process may run on: what a local cluster gets."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def workers_for(cpus: int, workers: int | None, threads: int, node_cpus: int | None = None) -> int:
    """`workers` (default: as many as `cpus` allow at `threads` each), refused when the cluster has too few
    CPUs: Ray would wait for them for ever."""
    if node_cpus is not None and threads > node_cpus:
        raise EdgeposeError(f"--threads {threads}: the biggest node of the Ray cluster has {node_cpus} CPUs")
    if workers is None:
        return max(1, cpus // threads)
    if workers * threads > cpus:
        raise EdgeposeError(
            f"--ray-workers {workers} at --threads {threads} needs {workers * threads} CPUs; the Ray cluster has {cpus}"
        )
    return workers


def task_size(items: int, workers: int, per_task: int | None) -> int:
    """Items per task: `per_task` (--ray-batch) or DEFAULT_BATCH, fewer when that would leave a worker idle."""
    return per_task or max(1, min(DEFAULT_BATCH, -(-items // workers)))


def forwarded_env() -> dict[str, str]:
    return {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}


class EdgeposeWorker:
    """The body of every actor: `factory(*args)` built once, then called with one task at a time.

    A job that cannot start (a model missing on this node) is reported by `ready`, not raised: an actor
    whose constructor raises is dead for good and its error would come back as a multi-line Ray report.
    """

    def __init__(self, factory: Callable[..., Callable[[Any], Any]], args: tuple, cwd: str):
        self.error: str | None = None
        self.job: Callable[[Any], Any] | None = None
        try:
            # Inputs and outputs are named as the user gave them, relative to the driver's directory.
            os.chdir(cwd)
        except OSError as e:
            self.error = f"{cwd}: no such directory on Ray node {socket.gethostname()} ({e.strerror or e}); " + (
                "--ray-address needs inputs and outputs on a file system every node sees at the same path"
            )
            return
        try:
            self.job = factory(*args)
        except EdgeposeError as e:
            self.error = f"on Ray node {socket.gethostname()}: {e}"
        except Exception as e:  # noqa: BLE001 (said in one line by wait_ready; a restart would fail alike)
            self.error = f"on Ray node {socket.gethostname()}: {type(e).__name__}: {_first_line(e)}"

    def ready(self) -> str | None:
        return self.error

    def call(self, task: Any) -> Any:
        if self.job is None:
            raise EdgeposeError(self.error or "the Ray worker did not start")
        return self.job(task)

    def echo(self, value: Any) -> Any:
        """A round trip that does no work: what the pool itself costs per task."""
        return value


@dataclass(frozen=True)
class _Raised:
    error: BaseException


def _signalled(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`call`, with a signal that arrived during Ray's native wait raised as itself: Ray's Cython functions
    report it as a SystemError ("returned a result with an exception set") around the real one."""
    try:
        return call(*args, **kwargs)
    except SystemError as e:
        context = e.__context__
        if isinstance(context, BaseException) and not isinstance(context, Exception):
            raise context from None
        raise


@dataclass(frozen=True)
class TaskLost:
    """A task whose worker died every time it ran it (MAX_TASK_RETRIES + 1 times)."""

    message: str


class ActorPool:
    """`workers` actors of `threads` CPUs each, every one holding `factory(*args)`."""

    def __init__(
        self,
        session: RaySession,
        factory: Callable[..., Callable[[Any], Any]],
        args: tuple,
        workers: int,
        threads: int,
    ):
        import ray

        # A local cluster's workers inherit this process's environment; a runtime_env would also keep them
        # off the worker processes Ray starts ahead (~1 s more to start).
        env = None if session.local else {"env_vars": forwarded_env()}
        remote = ray.remote(
            num_cpus=threads,
            # A killed worker comes back (its model loaded again) for the tasks still to do; finitely, so that
            # a worker crashing as it loads (a native crash, out of memory) ends the run instead of looping.
            max_restarts=MAX_TASK_RETRIES * max(1, workers),
            max_task_retries=MAX_TASK_RETRIES,
            runtime_env=env,
        )(EdgeposeWorker)
        # Inline, not ray.put: a restarting actor needs its constructor's arguments again, and Ray warns
        # (on stderr) about ones in the object store. Jobs keep them small.
        self.actors = [remote.remote(factory, args, os.getcwd()) for _ in range(workers)]
        self.threads = threads

    def wait_ready(self) -> None:
        """Block until every actor has built its job; the first that could not is one EdgeposeError."""
        import ray
        from ray.exceptions import RayActorError

        try:
            errors = ray.get([a.ready.remote() for a in self.actors])
        except RayActorError as e:  # not a job's error (those come back from `ready`): a crash, a bug
            raise EdgeposeError(f"a Ray worker did not start: {_first_line(e)}") from None
        for error in errors:
            if error is not None:
                raise EdgeposeError(error)

    def map(
        self,
        tasks: Sequence[Any],
        on_done: Callable[[int], None] | None = None,
        method: str = "call",
    ) -> Iterator[Any]:
        """Each task's result, in task order, as soon as it and every earlier one are back.

        Tasks go to whichever actor is free (up to DEPTH queued each), so a long video does not hold up
        the photos behind it on the other actors. `on_done(index)` is called as each task comes back, in
        any order (progress). A task's own exception is raised here, as if it ran on this process; a task
        whose worker kept dying comes back as TaskLost. Results back before an earlier one wait here: no
        worker idles behind a long video, at the cost of holding their results (for `run`, JSON lines).
        """
        import ray
        from ray.exceptions import RayActorError, RayError, RayTaskError

        pending: dict[Any, tuple[int, Any]] = {}  # ObjectRef -> (task index, actor)
        load = {id(a): 0 for a in self.actors}
        done: dict[int, Any] = {}
        next_task = next_out = 0
        try:
            while next_out < len(tasks):
                for actor in sorted(self.actors, key=lambda a: load[id(a)]):
                    while next_task < len(tasks) and load[id(actor)] < DEPTH:
                        ref = getattr(actor, method).remote(tasks[next_task])
                        pending[ref] = (next_task, actor)
                        load[id(actor)] += 1
                        next_task += 1
                ready, _ = _signalled(ray.wait, list(pending), num_returns=1)
                for ref in ready:
                    index, actor = pending.pop(ref)
                    load[id(actor)] -= 1
                    try:
                        done[index] = _signalled(ray.get, ref)
                    except RayTaskError as e:  # the task's own error: raised when its turn comes, as locally
                        done[index] = _Raised(e.cause if e.cause is not None else EdgeposeError(_first_line(e)))
                    except RayActorError:
                        done[index] = TaskLost(f"its Ray worker died {MAX_TASK_RETRIES + 1} times running it")
                    except RayError as e:  # the object store full, an object lost: the run cannot go on
                        raise EdgeposeError(f"Ray: {_first_line(e)}") from None
                    if on_done is not None:
                        on_done(index)
                while next_out in done:
                    result = done.pop(next_out)
                    if isinstance(result, _Raised):
                        raise result.error
                    yield result
                    next_out += 1
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)


@contextlib.contextmanager
def worker_pool(
    address: str | None,
    workers: int | None,
    threads: int,
    debug: bool,
    factory: Callable[..., Callable[[Any], Any]],
    args: tuple,
    items: int,
    per_task: int | None,
    split: Callable[[int], list],
) -> Iterator[tuple[ActorPool, list]]:
    """A cluster (local, or at `address`) with a started pool of `factory(*args)` workers, and the tasks:
    `split(size)` with `size` items each (`per_task`, or what keeps every worker busy on `items`). No more
    workers than tasks; each worker's job built (its model loaded) before this yields."""
    with ray_session(address, num_cpus=local_cluster_cpus(workers, threads), debug=debug) as session:
        n = workers_for(cluster_cpus(), workers, threads, largest_node_cpus())
        tasks = split(task_size(items, n, per_task))
        pool = ActorPool(session, factory, args, workers=min(n, len(tasks)), threads=threads)
        pool.wait_ready()
        yield pool, tasks
