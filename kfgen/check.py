"""kfgen check: is the committed render exactly what a fresh render of the stack gives?

First without rendering (`prove`): the tree's sealed record names the digest of every input (the
stack and every file it reads, kfgen's build, the kustomize version, where the tree sits in its
repository) and of every file it holds; when the inputs hash to what it names and the folder holds
exactly those files with those digests, the tree is what a render would write. Otherwise, or with
`full`, kfgen renders with the real pipeline into a temporary folder and compares every file,
showing what differs."""

from __future__ import annotations

import difflib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kfgen import git
from kfgen.digests import FileDigests, scan
from kfgen.errors import InputError, KfgenError
from kfgen.gitops_settings import gitops
from kfgen.kustomize import find_engine
from kfgen.record import Record, read_record
from kfgen.sources import Sources, read_sources
from kfgen.vocabulary import PROVENANCE

STACK_FILE = "stack.yaml"


@dataclass(frozen=True)
class Drift:
    path: str  # relative to the output folder
    reason: str  # changed | missing | unexpected
    diff: str = ""  # changed text files: the committed file against the fresh render's


def check(stack_path: Path, out: Path | None = None, *, display: str | None = None, kustomize: str | None = None,
          allow_outside: bool = False, full: bool = False) -> tuple[Path, list[Drift]]:
    """(the output folder, files where it differs from a fresh render of the stack). `full`: always render."""
    proof = None if full else prove(stack_path, out, display=display, kustomize=kustomize, allow_outside=allow_outside)
    if proof is not None:
        return proof.out, []
    from kfgen.render import default_out, render

    with tempfile.TemporaryDirectory(prefix="kfgen-check-") as tmp:
        fresh = render(stack_path, Path(tmp) / "out", display=display, kustomize=kustomize, allow_outside=allow_outside)
        out = out or default_out(stack_path, fresh.stack)
        expected, actual = _files(fresh.out), _files(out)
    drift = [Drift(p, "changed", _diff(p, actual[p], expected[p])) for p in sorted(set(expected) & set(actual)) if expected[p] != actual[p]]
    drift += [Drift(p, "missing") for p in sorted(set(expected) - set(actual))]
    drift += [Drift(p, "unexpected") for p in sorted(set(actual) - set(expected))]
    return out, sorted(drift, key=lambda d: d.path)


@dataclass(frozen=True)
class Proof:
    """An output folder proven to be what a render of the stack writes, its record and the stack's sources."""

    out: Path
    record: Record
    sources: Sources


def prove(stack_path: Path, out: Path | None = None, *, display: str | None = None, kustomize: str | None = None,
          allow_outside: bool = False) -> Proof | None:
    """The proof that the output folder is what a render of the stack writes (see the module
    docstring), or None (not proven: render to know)."""
    try:
        sources = read_sources(stack_path, display, allow_outside, schema_checked=False)
        problems: list = []
        settings = gitops(sources.doc, sources.folder_in_repo, lambda *args, **kwargs: problems.append(args))
        if problems:
            return None
        out = out or stack_path.parent / settings.path
        record = read_record(out)
        if record is None or not record.made_by_this_kfgen(find_engine(kustomize).identity):
            return None
        if (record.data.get("stackDigest"), record.data.get("repositoryPath")) != (f"sha256:{sources.digest()}", settings.repo_path):
            return None
        return Proof(out, record, sources) if holds_exactly(out, record) else None
    except KfgenError:
        return None
    except (KeyError, TypeError, AttributeError, ValueError, OSError):  # a stack no render accepted: let the render say why
        return None


def holds_exactly(out: Path, record: Record) -> bool:
    """`out` holds the record and exactly the files it lists, each with its digest (symlinks and other
    entries are never followed: they are not kfgen's files)."""
    found = scan(out)
    files = record.files
    if len(found) != len(files) + 1 or PROVENANCE not in found:
        return False
    digests = FileDigests(out)
    try:
        return all(path in found and digests.holds(path, found[path], expected) for path, expected in files.items())
    finally:
        digests.save()


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
