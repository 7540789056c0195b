"""`kfgen tfjob run-local`: every replica of a rendered TFJob as a local process, supervised as the
training operator and the kubelet would (kfgen.tfoperator decides; this module runs processes).

Each replica runs in its own session, its output prefixed with its name on stdout and written to
`<work dir>/logs/<type>-<index>.log` (every attempt, each after a marker line). When a replica's
process exits, whatever it started is killed too (a container's processes end with it). The run
ends when the operator would end the job: it succeeds, a replica fails for good, the backoff limit
is reached, or the timeout passes (default: the rendered activeDeadlineSeconds, else none). The
replicas still running are then stopped (SIGTERM, then SIGKILL after 5 s), and so they are on
Ctrl-C or SIGTERM. On a timeout or an interrupt, kfgen says which replicas were still running and
the last line each printed, and which ones the job was waiting for.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from kfgen.errors import InputError
from kfgen.tfjobs import LocalDirs, LocalReplica
from kfgen.tfoperator import RECREATE, RESTART, SUCCEEDED, Decision, JobPolicy, JobState, after_exit, waiting_for

INSTALL_HINT = "tensorflow is not installed: pip install 'kfgen[tensorflow]'"
STOP_GRACE_SECONDS = 5.0
POLL_SECONDS = 0.05


def tensorflow_installed() -> bool:
    """Whether this Python can import tensorflow (found, not imported: that takes seconds)."""
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except ImportError:
        return False


@dataclass
class _Process:
    """One attempt of one replica: the process, the thread copying its output, its last line."""

    replica: LocalReplica
    attempt: int
    process: subprocess.Popen
    reader: threading.Thread | None = None
    last_line: str = ""
    lines: int = 0

    @property
    def name(self) -> str:
        return self.replica.name


@dataclass
class LocalRun:
    """The supervisor of one local run (see the module's docstring)."""

    job: str
    replicas: list[LocalReplica]
    policy: JobPolicy
    dirs: LocalDirs
    out: TextIO
    say: Callable[[str], None]
    only: bool = False  # one replica of the job: its own success or failure ends the run
    state: JobState = field(init=False)
    running: dict[str, _Process] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.state = JobState(self.policy)

    def run(self, timeout: float | None = None) -> int:
        """0 when the job succeeds, 1 when it fails or times out (`timeout` seconds, by default the
        TFJob's activeDeadlineSeconds); every replica is stopped on return, and on Ctrl-C or SIGTERM,
        which propagate after the stop."""
        if timeout is not None:
            reason = f"still running after --timeout {timeout:g}s"
        elif self.policy.active_deadline is not None:
            timeout, reason = float(self.policy.active_deadline), f"active longer than its deadline (activeDeadlineSeconds {self.policy.active_deadline})"
        else:
            reason = ""
        try:
            for replica in self.replicas:
                self._start(replica, 1)
            verdict = self._supervise(time.monotonic() + timeout if timeout is not None else None, reason)
        except Exception:
            self._stop_all()
            raise
        except BaseException:  # Ctrl-C, SIGTERM: say what was running, stop it, then let the CLI exit
            self._diagnose("stopping every replica")
            self._stop_all()
            raise
        self._stop_all()
        return verdict

    def _supervise(self, deadline: float | None, timeout_reason: str) -> int:
        while True:
            for name, proc in list(self.running.items()):
                code = proc.process.poll()
                if code is None:
                    continue
                _kill_group(proc.process, signal.SIGKILL)  # a container's processes end with it
                self._finish_output(proc)
                del self.running[name]
                decision = self._decide(proc, _exit_code(code))
                if decision.verdict:
                    stopped = ", ".join(sorted(self.running)) or "none"
                    self.say(f"kfgen: {self.job} {decision.verdict.lower()}: {decision.reason}; stopping the others ({stopped})")
                    return 0 if decision.verdict == "Succeeded" else 1
            if deadline is not None and time.monotonic() >= deadline:
                self.say(f"kfgen: {self.job} failed: {timeout_reason}")
                self._diagnose("at the timeout")
                return 1
            time.sleep(POLL_SECONDS)

    def _decide(self, proc: _Process, code: int) -> Decision:
        replica = proc.replica
        key = (replica.replica_type, replica.index)
        decision = after_exit(self.state, key, code)
        restart_policy = self.policy.restart[replica.replica_type]
        if decision.replica in (RESTART, RECREATE):
            count = self.state.restarts[key]
            why = f"{count} restart{'s' if count != 1 else ''}" if decision.replica == RESTART else "a retryable exit code"
            if decision.verdict:
                self.say(f"kfgen: {proc.name} exited with {code} (restartPolicy {restart_policy}, {why})")
            else:
                how = "restarting it" if decision.replica == RESTART else "recreating it"
                self.say(f"kfgen: {proc.name} exited with {code}; {how} (restartPolicy {restart_policy}, {why})")
                self._start(replica, proc.attempt + 1, f"exit {code}, restartPolicy {restart_policy}")
        elif decision.replica == SUCCEEDED:
            self.say(f"kfgen: {proc.name} succeeded")
        elif not decision.verdict:
            self.say(f"kfgen: {proc.name} failed with exit code {code}; the job continues without it (enableDynamicWorker)")
        if self.only and not decision.verdict and decision.replica not in (RESTART, RECREATE):
            if decision.replica == SUCCEEDED:
                return Decision(decision.replica, "Succeeded", f"{proc.name} succeeded")
            return Decision(decision.replica, "Failed", f"{proc.name} failed with exit code {code}")
        return decision

    def _start(self, replica: LocalReplica, attempt: int, why: str = "") -> None:
        log = self.dirs.logs / f"{replica.name}.log"
        with log.open("a", encoding="utf-8") as handle:
            if attempt > 1:
                handle.write(f"--- kfgen: attempt {attempt} ({why}) ---\n")
        try:
            process = subprocess.Popen(replica.argv, cwd=replica.cwd, env=replica.environ(dict(os.environ)), stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            raise InputError(f"{replica.name}: cannot start {replica.argv[0]!r}: {exc.strerror}") from None
        proc = _Process(replica, attempt, process)
        proc.reader = threading.Thread(target=self._relay, args=(proc, log), daemon=True)
        proc.reader.start()
        self.running[replica.name] = proc

    def _relay(self, proc: _Process, log: Path) -> None:
        assert proc.process.stdout is not None
        with log.open("a", encoding="utf-8") as handle:
            for raw in proc.process.stdout:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                handle.write(line + "\n")
                handle.flush()
                with self._lock:
                    if line.strip():
                        proc.last_line, proc.lines = line.strip(), proc.lines + 1
                    self.out.write(f"[{proc.name}] {line}\n")
                    self.out.flush()

    def _finish_output(self, proc: _Process) -> None:
        if proc.reader is not None:
            proc.reader.join(timeout=5)

    def _diagnose(self, when: str) -> None:
        """Which replicas are still running, the last line each printed, and what the job waits for."""
        if not self.running:
            return
        states = []
        for name, proc in sorted(self.running.items()):
            last = f"last line: {proc.last_line[:160]!r}" if proc.lines else "no output yet"
            states.append(f"{name} ({last})")
        self.say(f"kfgen: {when}; still running: {', '.join(states)}")
        waiting = [f"{rtype.lower()}-{index}" for rtype, index in waiting_for(self.state) if f"{rtype.lower()}-{index}" in self.running]
        if waiting and not self.only:
            self.say(f"kfgen: the job was waiting for {', '.join(waiting)} to succeed")

    def _stop_all(self) -> None:
        """SIGTERM to every replica's process group, SIGKILL to those still there after the grace
        period (or at once on a second interrupt)."""
        procs = list(self.running.values())
        self.running.clear()
        try:
            for proc in procs:
                _kill_group(proc.process, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for proc in procs:
                try:
                    proc.process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        finally:
            for proc in procs:
                _kill_group(proc.process, signal.SIGKILL)
                proc.process.wait()
                self._finish_output(proc)


def _kill_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _exit_code(returncode: int) -> int:
    """A container's exit code: 128 + N for a process killed by signal N (Popen says -N)."""
    return 128 - returncode if returncode < 0 else returncode
