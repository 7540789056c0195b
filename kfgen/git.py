"""The only module that runs git."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from kfgen.errors import ToolError


def _git(cwd: Path, *args: str, binary: bool = False) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=120)
    except FileNotFoundError:
        raise ToolError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise ToolError(f"git {' '.join(args)}: no answer after 120s") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise ToolError(f"git {' '.join(args[:2])} failed: {message[-1] if message else f'exit code {done.returncode}'}")
    return done.stdout


def toplevel(path: Path) -> Path:
    """The root of the git work tree holding `path`."""
    return Path(_git(path, "rev-parse", "--show-toplevel").decode().strip())


def resolve(repo: Path, ref: str) -> str:
    """The commit a ref names (a ToolError when it names none)."""
    return _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()


def extract(repo: Path, ref: str, target: Path, exclude: list[str]) -> None:
    """The repository's files at `ref` (minus `exclude`, repo-relative) into `target`."""
    pathspecs = ["."] + [f":(exclude){p}" for p in exclude]
    data = _git(repo, "archive", "--format=tar", ref, "--", *pathspecs)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(target, filter="data")
