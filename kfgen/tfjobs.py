"""The stack's TFJobs, as rendered, on this machine: one line each for `tfjob list`, and each
replica's local command and environment for `tfjob run-local` (which kfgen.runlocal runs).

A replica runs locally as its `tensorflow` container would in the cluster: its command and args
(`$(VAR)` expanded as Kubernetes does, `python` meaning the Python kfgen runs on), its literal env,
the TF_CONFIG the operator would inject but with localhost and free ports, in the stack's folder
(so the job's code, e.g. stacks/example/trainer/, is importable). The code's folders are local:
KFGEN_MODEL_DIR, KFGEN_CHECKPOINT_DIR and KFGEN_TENSORBOARD_DIR. A TF_CONFIG (or one of those
variables) in the user's shell never reaches a replica: the operator would not set it.
"""

from __future__ import annotations

import re
import shlex
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


from kfgen.errors import InputError
from kfgen.model import Environment
from kfgen.tfconfig import CONTAINER, REPLICA_TYPES, canonical_type, replica_counts, tensorflow_container, tf_config
from kfgen.vocabulary import CHECKPOINT_DIR_ENV, MODEL_DIR_ENV, REPLICA_ACCELERATOR_PREFIX, STEPS_ENV, TENSORBOARD_DIR_ENV

TF_CONFIG_ENV = "TF_CONFIG"
# Never inherited from the user's shell: the operator sets TF_CONFIG, run-local sets the others.
NOT_INHERITED = (TF_CONFIG_ENV, MODEL_DIR_ENV, CHECKPOINT_DIR_ENV, TENSORBOARD_DIR_ENV, STEPS_ENV)


def parse_replica(text: str, option: str = "--replica") -> tuple[str, int]:
    """`worker:1` -> ('Worker', 1)."""
    kind, _, index = text.partition(":")
    try:
        return canonical_type(kind), int(index)
    except ValueError as exc:
        raise InputError(f"{option} {text!r}: expected TYPE:INDEX, e.g. worker:0 ({exc})") from None


def describe(tfjob: dict, env: Environment) -> str:
    """One line: name, replicas per type, accelerator classes, images (tab-separated)."""
    counts = {t: n for t, n in sorted(replica_counts(tfjob).items(), key=lambda kv: REPLICA_TYPES.index(kv[0]))}
    replicas = " ".join(f"{rtype}={n}" for rtype, n in counts.items())
    labels = (tfjob.get("metadata") or {}).get("labels") or {}
    classes = list(dict.fromkeys(labels[key] for rtype in counts if (key := REPLICA_ACCELERATOR_PREFIX + rtype.lower()) in labels))
    accelerators = []
    for name in classes:
        klass = env.accelerator(name)
        if klass is None:
            accelerators.append(name)
        else:
            hosts = f", {klass.hosts} hosts" if klass.hosts > 1 else ""
            accelerators.append(f"{klass.name} ({klass.profile.name} x{klass.count}{hosts})")
    images = dict.fromkeys(str((tensorflow_container(tfjob, rtype) or {}).get("image", "-")) for rtype in counts)
    return f"{tfjob['metadata']['name']}\t{replicas}\taccelerator={', '.join(accelerators) or 'cpu'}\timage={','.join(images)}"


@dataclass(frozen=True)
class LocalDirs:
    """A local run's folders: the model (KFGEN_MODEL_DIR), and in `work` the checkpoints, TensorBoard
    logs and one log file per replica."""

    work: Path
    model: Path

    @property
    def checkpoints(self) -> Path:
        return self.work / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.work / "tensorboard"

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    def create(self) -> None:
        for folder in (self.model, self.checkpoints, self.tensorboard, self.logs):
            folder.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class LocalReplica:
    """One replica as a local process: argv, working folder, the variables it gets on top of the
    user's environment (`env`) and those it must not inherit (`unset`)."""

    replica_type: str
    index: int
    argv: tuple[str, ...]
    cwd: Path
    env: tuple[tuple[str, str], ...]
    unset: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.replica_type.lower()}-{self.index}"

    def environ(self, base: dict[str, str]) -> dict[str, str]:
        """The process environment: `base` (the user's) without `unset`, plus `env`."""
        return {**{k: v for k, v in base.items() if k not in self.unset}, **dict(self.env)}

    def shell_line(self, base: dict[str, str]) -> str:
        """A line to paste in a shell that starts this replica exactly as run-local does."""
        unset = [f"-u {name}" for name in self.unset if name in base and name not in dict(self.env)]
        assignments = [f"{k}={shlex.quote(v)}" for k, v in self.env]
        return " ".join([f"cd {shlex.quote(str(self.cwd))} &&", "env", *unset, *assignments, *map(shlex.quote, self.argv)])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_replicas(tfjob: dict, stack_dir: Path, dirs: LocalDirs, *, steps: int | None = None,
                   port: Callable[[], int] = free_port, base_env: dict[str, str] | None = None) -> list[LocalReplica]:
    """Every replica of the rendered TFJob, in the operator's type order, each with its localhost TF_CONFIG."""
    counts = replica_counts(tfjob)
    ports = {(t.lower(), i): port() for t, n in counts.items() for i in range(n)}
    host = lambda rtype, index, _port: f"localhost:{ports[(rtype, index)]}"  # noqa: E731
    base_env = base_env or {}
    replicas = []
    for replica_type in [t for t in REPLICA_TYPES if t in counts]:
        container = tensorflow_container(tfjob, replica_type)
        if container is None:
            raise InputError(f"TFJob {tfjob['metadata']['name']}: {replica_type} has no container named {CONTAINER!r}; "
                             "the operator's webhook rejects the job (kfgen lint: KFG008)")
        for index in range(counts[replica_type]):
            env = {e["name"]: str(e["value"]) for e in container.get("env") or [] if "value" in e}
            env.update({MODEL_DIR_ENV: str(dirs.model), CHECKPOINT_DIR_ENV: str(dirs.checkpoints),
                        TENSORBOARD_DIR_ENV: str(dirs.tensorboard), "PYTHONUNBUFFERED": "1"})
            if steps is not None:
                env[STEPS_ENV] = str(steps)
            env.setdefault("TF_CPP_MIN_LOG_LEVEL", base_env.get("TF_CPP_MIN_LOG_LEVEL", "2"))
            config = tf_config(tfjob, replica_type, index, host=host)
            if config is not None:
                env[TF_CONFIG_ENV] = config
            argv = [expand(arg, env) for arg in [*(container.get("command") or []), *(container.get("args") or [])]]
            if not argv:
                raise InputError(f"TFJob {tfjob['metadata']['name']}: the {replica_type} container has no command; "
                                 "run-local cannot know its image's entrypoint")
            if re.fullmatch(r"python(3(\.\d+)?)?", Path(argv[0]).name):
                argv[0] = sys.executable
            replicas.append(LocalReplica(replica_type, index, tuple(argv), stack_dir, tuple(sorted(env.items())), NOT_INHERITED))
    return replicas


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in command and args: defined variables are replaced, `$$` is a
    literal `$`, anything else stays as written."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)
