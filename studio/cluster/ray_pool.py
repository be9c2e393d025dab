"""A pool of Ray actors, each holding a Runner and its model cache, for `engines.batch.drive`.

One actor per GPU (or per `cpus_per_actor` CPUs on a cluster without GPUs) keeps its
models loaded between jobs; a job goes to an idle actor that already holds its model,
else to one that holds nothing another actor holds, else to the first idle one. Results
come back to the driver, which writes and indexes them (or, with `shared_out`, the actor
writes straight into that folder and only the paths come back).

An actor that dies mid-job (killed, out of memory, its node gone) is replaced and the job
runs again on another actor: it wrote nothing (the driver writes), so nothing is written
twice. Cancel (Ctrl+C) kills the actors and raises Cancelled; what finished is recorded.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, WorkerCrashedError

from studio.core.errors import Cancelled, StudioError
from studio.core.settings import Settings
from studio.engines.batch import Job, Outcome

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0
POLL_S = 0.2
#: environment the actors of a cluster started here get (offline, the same Studio home)
LOCAL_ENV = ("STUDIO_HOME", "HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "HF_HOME",
             "TOKENIZERS_PARALLELISM", "STUDIO_HUB_OFFLINE_DEFAULT")


class ClusterError(StudioError):
    """The cluster cannot be reached or used (one sentence)."""


def _reachable(address: str) -> None:
    """Fail within seconds, in one sentence, when nothing listens at host:port."""
    target = address.removeprefix("ray://")
    host, sep, port_text = target.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ClusterError(f"A Ray address is auto, local or HOST:PORT, not {address!r}.")
    try:
        with socket.create_connection((host.strip("[]"), int(port_text)),
                                      timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer within {CONNECT_TIMEOUT_S:g} s"
        raise ClusterError(f"Cannot reach a Ray cluster at {address}: {reason}.") from None


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Ray's C++ client logs every retry on fd 2 before Python logging applies: keep it
    out of the one sentence the user gets (it goes to our log at debug level)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (pytest capture): nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace").strip()
            if text:
                log.debug("ray: %s", text)


@contextlib.contextmanager
def keep_signals() -> Iterator[None]:
    """ray.init installs its own SIGTERM (and SIGINT) handlers in the driver; Studio's stay
    in charge (Ctrl+C and SIGTERM cancel the batch cleanly), during and after Ray."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)


def connect(address: str, *, num_cpus: int | None = None) -> bool:
    """Join (or start, for "local") a Ray cluster; returns whether this call started Ray
    (and so should shut it down). "auto" joins the cluster `ray start` runs here. An
    unreachable address is one sentence within a few seconds."""
    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address == "local":
        with _quiet_stderr(), keep_signals():
            ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                     runtime_env=local_runtime_env(), **quiet)
        return True
    if address != "auto":
        _reachable(address)
        # something answers there: give Ray seconds, not its default 20, to find a GCS
        os.environ.setdefault("RAY_gcs_server_port_wait_time_s", str(int(CONNECT_TIMEOUT_S)))
    try:
        with _quiet_stderr(), keep_signals():
            ray.init(address=address, **quiet)
    except ConnectionError as exc:
        if address == "auto":
            raise ClusterError("No Ray cluster is running on this machine; start one with "
                               "`ray start --head` or use --ray local.") from None
        raise ClusterError(f"Cannot join a Ray cluster at {address}: nothing there answers "
                           f"as Ray ({type(exc).__name__}).") from None
    return True


def local_runtime_env() -> dict[str, Any]:
    """Actors on this machine import this very copy of Studio and share its home."""
    import studio

    root = str(Path(studio.__file__).resolve().parents[1])
    env = {name: os.environ[name] for name in LOCAL_ENV if name in os.environ}
    paths = [root, *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return {"env_vars": env}


class _Worker:
    """The actor: one Runner, so its model cache lives as long as the actor."""

    def __init__(self, settings: dict[str, Any], shared_out: str | None) -> None:
        from studio.engines.runner import Runner

        self.runner = Runner(Settings.from_dict(settings))
        self.shared_out = shared_out

    def pid(self) -> int:
        return os.getpid()

    def run(self, request: Any) -> dict[str, Any]:
        from studio.core.outputs import SaveError, save_result
        from studio.engines.base import Events
        from studio.engines.runner import failure_message

        t0 = time.perf_counter()
        out: dict[str, Any] = {}
        try:
            result = self.runner.generate(request, Events())
            out["result"] = result
            if self.shared_out:
                try:
                    out["paths"] = [str(p) for p in save_result(result, Path(self.shared_out))]
                except SaveError as exc:  # the complete files stay: the driver indexes them
                    out["paths"] = [str(p) for p in exc.paths]
                    raise
                finally:
                    result.images, result.audio = [], None  # the files hold them now
        except Exception as exc:
            out["error"] = failure_message(exc)
        out["seconds"] = time.perf_counter() - t0
        out["pid"] = os.getpid()
        return out


@dataclass
class _Slot:
    actor: Any
    name: str
    models: set[str] = field(default_factory=set)
    busy: Any = None  # the ObjectRef in flight


class RayPool:
    """Runs jobs on Ray actors; `run` yields outcomes as they finish (any order)."""

    def __init__(self, settings: Settings, *, actors: int | None = None,
                 cpus_per_actor: float = 1.0, gpus_per_actor: float | None = None,
                 shared_out: str | Path | None = None, retries: int = 3) -> None:
        if not ray.is_initialized():
            raise ClusterError("Connect to a Ray cluster first.")
        self.settings = settings
        self.shared_out = str(Path(shared_out).resolve()) if shared_out else None
        resources = ray.cluster_resources()
        gpus = float(resources.get("GPU", 0))
        self.gpus_per_actor = gpus_per_actor if gpus_per_actor is not None else (
            1.0 if gpus >= 1 else 0.0)
        self.cpus_per_actor = cpus_per_actor
        if actors is None:
            if self.gpus_per_actor > 0:
                actors = int(gpus // self.gpus_per_actor)
            else:
                actors = int(float(resources.get("CPU", 1)) // max(cpus_per_actor, 0.01))
        self.n_actors = max(1, int(actors))
        self.retries = retries
        self.slots: list[_Slot] = []
        self._started = 0
        self.deaths = 0

    def _start(self) -> _Slot:
        self._started += 1
        options: dict[str, Any] = {"num_cpus": self.cpus_per_actor,
                                   "num_gpus": self.gpus_per_actor, "max_restarts": 0}
        actor = ray.remote(_Worker).options(**options).remote(self.settings.to_dict(),
                                                              self.shared_out)
        slot = _Slot(actor, f"actor-{self._started}")
        self.slots.append(slot)
        return slot

    def workers(self) -> list[Any]:
        """The live actors' handles (tests kill one to prove nothing is lost)."""
        return [s.actor for s in self.slots]

    @staticmethod
    def _pick(slot: _Slot, pending: collections.deque[Job], others: list[_Slot]) -> Job:
        held = set().union(*(s.models for s in others)) if others else set()
        for job in pending:
            if job.request.model in slot.models:
                break
        else:
            for job in pending:
                if job.request.model not in held:
                    break
            else:
                job = pending[0]
        pending.remove(job)
        return job

    def run(self, jobs: Sequence[Job], cancel: threading.Event) -> Iterator[Outcome]:
        pending = collections.deque(jobs)
        if not pending:
            return
        while len(self.slots) < min(self.n_actors, len(pending)):
            self._start()
        flight: dict[Any, tuple[_Slot, Job]] = {}
        attempts: collections.Counter[str] = collections.Counter()
        try:
            while pending or flight:
                if cancel.is_set():
                    raise Cancelled()
                for slot in self.slots:
                    if slot.busy is None and pending:
                        others = [s for s in self.slots if s is not slot]
                        job = self._pick(slot, pending, others)
                        slot.busy = slot.actor.run.remote(job.request)
                        slot.models.add(job.request.model)
                        flight[slot.busy] = (slot, job)
                if not flight:  # every actor is gone and none could be started
                    while pending:
                        yield Outcome(pending.popleft(), error="No cluster worker is left.")
                    break
                ready, _ = ray.wait(list(flight), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    slot, job = flight.pop(ref)
                    slot.busy = None
                    try:
                        payload = ray.get(ref, timeout=60)
                    except (RayActorError, WorkerCrashedError, GetTimeoutError) as exc:
                        outcome = self._lost(slot, job, exc, attempts, pending)
                        if outcome is not None:
                            yield outcome
                        continue
                    yield self._outcome(job, payload, slot)
        except BaseException:
            self.close()
            raise

    def _lost(self, slot: _Slot, job: Job, exc: BaseException,
              attempts: collections.Counter[str], pending: collections.deque[Job]
              ) -> Outcome | None:
        """An actor died under `job`: replace it and run the job again (or give up)."""
        self.deaths += 1
        log.warning("%s died running %s (%s); retrying", slot.name, job.where,
                    type(exc).__name__)
        self.slots.remove(slot)
        attempts[job.key] += 1
        if self.deaths <= self.retries * self.n_actors:
            self._start()
        if attempts[job.key] > self.retries or not self.slots:
            return Outcome(job, error=f"A cluster worker died {attempts[job.key]} times "
                                      f"running it.")
        pending.appendleft(job)
        return None

    def _outcome(self, job: Job, payload: dict[str, Any], slot: _Slot) -> Outcome:
        seconds = float(payload.get("seconds", 0.0))
        paths = payload.get("paths")
        files = [Path(p) for p in paths] if paths is not None else None
        return Outcome(job, payload.get("result"), files, error=str(payload.get("error") or ""),
                       seconds=seconds, worker=slot.name)

    def close(self) -> None:
        """Kill the actors (their models go with them)."""
        for slot in self.slots:
            try:
                ray.kill(slot.actor)
            except Exception:  # already gone
                log.debug("could not kill %s", slot.name, exc_info=True)
        self.slots.clear()
