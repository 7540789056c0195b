"""kfgen check: is the committed render exactly what a fresh render of the stack gives? It renders
with the real pipeline into a temporary folder and compares every file, showing what differs."""

from __future__ import annotations

import difflib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kfgen import git
from kfgen.errors import InputError
from kfgen.render import default_out, render
from kfgen.vocabulary import PROVENANCE

STACK_FILE = "stack.yaml"


@dataclass(frozen=True)
class Drift:
    path: str  # relative to the output folder
    reason: str  # changed | missing | unexpected
    diff: str = ""  # changed text files: the committed file against the fresh render's


def check(stack_path: Path, out: Path | None = None, *, display: str | None = None, kustomize: str | None = None,
          allow_outside: bool = False) -> tuple[Path, list[Drift]]:
    """(the output folder, files where it differs from a fresh render of the stack)."""
    with tempfile.TemporaryDirectory(prefix="kfgen-check-") as tmp:
        fresh = render(stack_path, Path(tmp) / "out", display=display, kustomize=kustomize, allow_outside=allow_outside)
        out = out or default_out(stack_path, fresh.stack)
        expected, actual = _files(fresh.out), _files(out)
    drift = [Drift(p, "changed", _diff(p, actual[p], expected[p])) for p in sorted(set(expected) & set(actual)) if expected[p] != actual[p]]
    drift += [Drift(p, "missing") for p in sorted(set(expected) - set(actual))]
    drift += [Drift(p, "unexpected") for p in sorted(set(actual) - set(expected))]
    return out, sorted(drift, key=lambda d: d.path)


def _files(root: Path) -> dict[str, bytes]:
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def _diff(path: str, committed: bytes, fresh: bytes) -> str:
    """A unified diff, committed -> fresh. provenance.json only records digests: its diff says nothing new."""
    if path == PROVENANCE:
        return ""
    try:
        a, b = committed.decode("utf-8"), fresh.decode("utf-8")
    except UnicodeDecodeError:
        return f"Binary file {path} differs\n"
    return "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), f"committed/{path}", f"fresh/{path}", n=3))


def discover(cwd: Path) -> list[Path]:
    """The stacks `kfgen check` checks when none is named: ./stack.yaml, else every tracked stack.yaml of
    the repository holding `cwd` (a stack in stacks/acme/ is found from the repository root)."""
    if (cwd / STACK_FILE).is_file():
        return [cwd / STACK_FILE]
    repo = git.toplevel(cwd)
    found = [repo / p for p in git.tracked(repo, STACK_FILE)] if repo else []
    if not found:
        raise InputError(f"{cwd}: no {STACK_FILE} here{' or tracked in ' + str(repo) if repo else ''}; "
                         "name the stack: kfgen check path/to/stack.yaml")
    return [p for p in found if p.is_file()]
