"""The only module that runs git."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from kfgen.errors import InputError, ToolError


def _run(cwd: Path, *args: str, accept: tuple[int, ...] = (0,), stdin: bytes | None = None) -> tuple[int, bytes]:
    """(exit code, stdout) of a git command; a ToolError for any exit code not in `accept`."""
    if not cwd.is_dir():
        raise InputError(f"{cwd}: no such folder")
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=120, input=stdin)
    except FileNotFoundError:
        raise ToolError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise ToolError(f"git {' '.join(args)}: no answer after 120s") from None
    if done.returncode not in accept:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise ToolError(f"git {' '.join(args[:2])} failed: {message[-1] if message else f'exit code {done.returncode}'}")
    return done.returncode, done.stdout


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes:
    return _run(cwd, *args, stdin=stdin)[1]


def toplevel(path: Path) -> Path | None:
    """The root of the git work tree holding `path`, or None when it is in none."""
    code, out = _run(path, "rev-parse", "--show-toplevel", accept=(0, 128))
    return Path(out.decode().strip()) if code == 0 else None


def commit_of(repo: Path, ref: str) -> str | None:
    """The commit a ref (branch, tag, commit, origin/x...) names, or None when it names none here."""
    if ref.startswith("-"):
        return None
    code, out = _run(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", accept=(0, 1, 128))
    return out.decode().strip() if code == 0 else None


def require_commit(repo: Path, ref: str, flag: str) -> str:
    """The commit of a ref the user named with `flag`, or an input error naming it and the fix."""
    commit = commit_of(repo, ref)
    if commit is None:
        raise InputError(f"{flag} {ref}: names no commit in {repo}; fetch it first (git fetch origin; in GitHub Actions, "
                         "actions/checkout with fetch-depth: 0) or name an existing branch, tag or commit")
    return commit


def object_type(repo: Path, commit: str, path: str) -> str | None:
    """'tree', 'blob' or None: what `path` (repository-relative) is at `commit`."""
    code, out = _run(repo, "cat-file", "-t", f"{commit}:{path}", accept=(0, 128))
    return out.decode().strip() if code == 0 else None


def is_ancestor(repo: Path, older: str, newer: str) -> bool:
    code, _ = _run(repo, "merge-base", "--is-ancestor", older, newer, accept=(0, 1))
    return code == 0


def subject(repo: Path, commit: str) -> str:
    """The first line of a commit's message."""
    return _git(repo, "log", "-1", "--format=%s", commit).decode(errors="replace").strip()


def checked_out_branches(repo: Path) -> set[str]:
    """Branches checked out in any work tree of the repository (moving one would desynchronize it)."""
    out = _git(repo, "worktree", "list", "--porcelain").decode(errors="replace")
    return {line.removeprefix("branch refs/heads/") for line in out.splitlines() if line.startswith("branch refs/heads/")}


def move_branch(repo: Path, branch: str, commit: str, expected: str | None, reason: str) -> None:
    """Point `branch` at `commit`, only if it still points at `expected` (None: it must not exist yet)."""
    _git(repo, "update-ref", "-m", reason, f"refs/heads/{branch}", commit, expected or "0" * 40)


def tracked(repo: Path, name: str) -> list[str]:
    """Repository-relative paths of tracked files called `name`, at any depth."""
    out = _git(repo, "ls-files", "-z", "--full-name", "--", f":(top,glob)**/{name}")
    return sorted(p for p in out.decode().split("\0") if p)


def changed_since(repo: Path, ref: str) -> list[str]:
    """Repository-relative paths that differ between `ref` and the work tree, untracked files included."""
    changed = _git(repo, "diff", "--name-only", "-z", "--no-renames", ref, "--").decode().split("\0")
    untracked = _git(repo, "ls-files", "-z", "--others", "--exclude-standard", "--full-name", ":(top)").decode().split("\0")
    return sorted({p for p in changed + untracked if p})


def read_blobs(repo: Path, commit: str, paths: list[str]) -> dict[str, bytes]:
    """{path: bytes} of the repository-relative files at `commit` that are files there (one git process for all)."""
    if not paths:
        return {}
    requests = [f"{commit}:{p}" for p in paths]
    if any("\n" in r for r in requests):
        raise InputError("a path with a line break cannot be read from git")
    out = _git(repo, "cat-file", "--batch", stdin="".join(f"{r}\n" for r in requests).encode())
    found, at = {}, 0
    for path in paths:
        end = out.index(b"\n", at)
        header = out[at:end].split(b" ")
        at = end + 1
        if header[-1] in (b"missing", b"ambiguous"):  # "<request> missing": nothing follows
            continue
        size = int(header[2])  # "<id> <type> <size>", then the content
        if header[1] == b"blob":
            found[path] = out[at:at + size]
        at += size + 1
    return found


def _archive(repo: Path, ref: str, pathspecs: list[str]) -> tarfile.TarFile:
    data = _git(repo, "archive", "--format=tar", ref, "--", *pathspecs)
    return tarfile.open(fileobj=io.BytesIO(data))


def extract(repo: Path, ref: str, target: Path, exclude: list[str]) -> None:
    """The repository's files at `ref` (minus `exclude`, repo-relative) into `target`. Symlinks that
    leave the copy (absolute ones, or ones climbing out) are left out: nothing outside the repository is
    read through them (a stack that references one then finds no such file)."""
    pathspecs = ["."] + [f":(exclude){p}" for p in exclude]  # relative to `repo`, the work tree's root

    def inside(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        try:
            return tarfile.data_filter(member, dest)
        except tarfile.FilterError:
            return None

    with _archive(repo, ref, pathspecs) as archive:
        archive.extractall(target, filter=inside)


def files_at(repo: Path, ref: str, path: str) -> dict[str, bytes]:
    """{path relative to `path`: bytes} of the regular files under the repository-relative folder `path` at `ref`
    ({} when there is no such folder). Symlinks are skipped: their targets are not this tree's."""
    if object_type(repo, ref, path) != "tree":
        return {}
    found = {}
    with _archive(repo, ref, [path]) as archive:  # `repo` is the work tree's root: `path` is relative to it
        for member in archive.getmembers():
            if member.isfile():
                handle = archive.extractfile(member)
                if handle is not None:
                    found[member.name.removeprefix(path.rstrip("/") + "/")] = handle.read()
    return found
