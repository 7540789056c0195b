"""The stack's training jobs on this machine: list them, show a replica's TF_CONFIG, run one locally.

`run-local` starts every replica of a job as a local process, each with the TF_CONFIG it would
get in the cluster but with localhost and free ports, in the stack's folder (so the job's code,
e.g. stacks/example/trainer/, is importable) and with `python` meaning this Python. Logs are
prefixed with the replica's name. Success follows the operator's default policy: the job succeeds
when its Chief (or Master) exits 0, or, without one, when every Worker does; the replicas still
running (parameter servers, the evaluator) are then stopped. It fails as soon as a replica fails
or the timeout passes, and the others are stopped. TensorFlow's C++ logging is quieted
(TF_CPP_MIN_LOG_LEVEL=2) unless you set it.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from kfgen.accelerators import image_variant
from kfgen.components.training_operator.tfjobs import MODEL_DIR_ENV, tfjob
from kfgen.context import RenderContext
from kfgen.errors import InputError, MissingExtraError
from kfgen.model import Stack, TrainingJob
from kfgen.tfconfig import REPLICA_TYPES, canonical_type, replica_counts, tf_config

STEPS_ENV = "KFGEN_STEPS"
LEADERS = ("Chief", "Master")
INSTALL_HINT = "tensorflow is not installed: pip install 'kfgen[tensorflow]'"


def job_view(stack: Stack, env_name: str | None) -> RenderContext:
    """The stack as an environment sees it, or as written when no environment is named."""
    if env_name is None:
        return RenderContext(stack.name, stack.components, stack.workloads)
    env = next((e for e in stack.environments if e.name == env_name), None)
    if env is None:
        raise InputError(f"no environment {env_name!r} (have: {', '.join(e.name for e in stack.environments)})")
    return RenderContext(stack.name, env.components, env.workloads, env)


def find_job(ctx: RenderContext, name: str) -> TrainingJob:
    jobs = {j.name: j for j in ctx.workloads.enabled("training")}
    if name not in jobs:
        where = f"environment {ctx.env.name!r}" if ctx.env else "the stack"
        raise InputError(f"no training job {name!r} in {where} (have: {', '.join(jobs) or 'none'})")
    return jobs[name]


def describe(job: TrainingJob, ctx: RenderContext) -> str:
    """One line: name first, then replica counts and the accelerator."""
    replicas = " ".join(f"{t}={n}" for t, n in job.replicas)
    klass = ctx.accelerator(job.accelerator)
    if klass:
        accelerator = f"{klass.name} ({klass.profile.name} x{klass.count}{f', {klass.hosts} hosts' if klass.hosts > 1 else ''})"
    else:
        accelerator = job.accelerator or "cpu"
    image = image_variant(job.image, klass) if job.image_variant else job.image
    return f"{job.name}\t{replicas}\taccelerator={accelerator}\timage={image}"


def parse_replica(text: str) -> tuple[str, int]:
    """`worker:1` -> ('Worker', 1)."""
    kind, _, index = text.partition(":")
    try:
        return canonical_type(kind), int(index)
    except ValueError as exc:
        raise InputError(f"--replica {text!r}: expected TYPE:INDEX, e.g. worker:0 ({exc})") from None


@dataclass
class Replica:
    replica_type: str
    index: int
    process: subprocess.Popen

    @property
    def name(self) -> str:
        return f"{self.replica_type.lower()}-{self.index}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_commands(stack_dir: Path, job: TrainingJob, ctx: RenderContext, model_dir: Path, steps: int | None) -> list[tuple[str, int, list[str], dict]]:
    """(type, index, argv, environment) of every replica, with localhost TF_CONFIG."""
    obj = tfjob(job, ctx)
    counts = replica_counts(obj)
    ports = {(t.lower(), i): _free_port() for t, n in counts.items() for i in range(n)}
    host = lambda rtype, index, _port: f"localhost:{ports[(rtype, index)]}"  # noqa: E731
    commands = []
    for replica_type in [t for t in REPLICA_TYPES if t in counts]:
        spec = obj["spec"]["tfReplicaSpecs"][replica_type]["template"]["spec"]
        container = next(c for c in spec["containers"] if c["name"] == "tensorflow")
        argv = [*container.get("command", []), *container.get("args", [])]
        if not argv:
            raise InputError(f"training job {job.name!r} has no command to run locally")
        if Path(argv[0]).name in ("python", "python3"):
            argv[0] = sys.executable
        for index in range(counts[replica_type]):
            env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
            env[MODEL_DIR_ENV] = str(model_dir)
            env["PYTHONUNBUFFERED"] = "1"
            env.setdefault("TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
            if steps is not None:
                env[STEPS_ENV] = str(steps)
            config = tf_config(obj, replica_type, index, host=host)
            if config is not None:
                env["TF_CONFIG"] = config
            commands.append((replica_type, index, argv, env))
    return commands


def tensorflow_installed() -> bool:
    """Whether this Python can import tensorflow (found, not imported: that takes seconds)."""
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except ImportError:
        return False


def run_local(stack_dir: Path, job: TrainingJob, ctx: RenderContext, *, model_dir: Path | None = None, steps: int | None = None,
              timeout: float = 900, out: TextIO = sys.stdout, say: Callable[[str], None] | None = None) -> int:
    """Run every replica; 0 when the job succeeds, 1 when a replica fails or time runs out."""
    if not tensorflow_installed():
        raise MissingExtraError(INSTALL_HINT)
    say = say or (lambda line: print(line, file=sys.stderr))
    model_dir = (model_dir or Path(tempfile.mkdtemp(prefix=f"kfgen-{job.name}-"))).resolve()
    lock = threading.Lock()
    replicas: list[Replica] = []
    readers = []
    for replica_type, index, argv, env in local_commands(stack_dir, job, ctx, model_dir, steps):
        process = subprocess.Popen(argv, cwd=stack_dir, env={**os.environ, **env}, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        replica = Replica(replica_type, index, process)
        replicas.append(replica)
        reader = threading.Thread(target=_relay, args=(replica, out, lock), daemon=True)
        reader.start()
        readers.append(reader)
    say(f"kfgen: running {job.name} locally: {', '.join(r.name for r in replicas)}; model dir {model_dir}")
    result = _wait(replicas, timeout, say)
    _stop([r for r in replicas if r.process.poll() is None])
    for reader in readers:
        reader.join(timeout=5)
    say(f"kfgen: {job.name} {'succeeded' if result == 0 else 'failed'}; model dir {model_dir}")
    return result


def _relay(replica: Replica, out: TextIO, lock: threading.Lock) -> None:
    for line in replica.process.stdout or ():
        with lock:
            out.write(f"[{replica.name}] {line}")
            out.flush()


def _wait(replicas: list[Replica], timeout: float, say: Callable[[str], None]) -> int:
    deadline = time.monotonic() + timeout
    required = ([r for r in replicas if r.replica_type in LEADERS] or [r for r in replicas if r.replica_type == "Worker"]
                or replicas)
    while True:
        for replica in replicas:
            code = replica.process.poll()
            if code not in (None, 0):
                say(f"kfgen: {replica.name} exited with {code}; stopping the others")
                return 1
        if all(r.process.poll() == 0 for r in required):
            return 0
        if time.monotonic() > deadline:
            say(f"kfgen: timeout after {timeout:.0f}s; stopping every replica")
            return 1
        time.sleep(0.1)


def _stop(replicas: list[Replica], grace: float = 5) -> None:
    for replica in replicas:
        _signal(replica, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for replica in replicas:
        try:
            replica.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal(replica, signal.SIGKILL)
            replica.process.wait()


def _signal(replica: Replica, sig: int) -> None:
    try:
        os.killpg(replica.process.pid, sig)
    except ProcessLookupError:
        pass
