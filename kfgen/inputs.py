"""kfgen inputs: the files a render of the stack reads (and the folder it writes), as paths relative
to the repository root, so CI runs check and diff exactly when one of them changes, wherever they live."""

from __future__ import annotations

from pathlib import Path

from kfgen import git
from kfgen.render import default_out, load_stack
from kfgen.sources import read_sources


def inputs(stack_path: Path, *, with_output: bool = False, display: str | None = None, allow_outside: bool = False) -> list[str]:
    """The stack file, every file and folder it references (folders end in '/': a new file there changes
    the render too), and with `with_output` the rendered tree's folder; repository-relative, sorted."""
    sources = read_sources(stack_path, display, allow_outside)
    repo = sources.repo or sources.stack_dir
    found = {_relative(p, repo) for p in sources.inputs if p.name != ".git"}
    if with_output:
        found.add(_relative(default_out(sources.stack_path, load_stack(stack_path, display, allow_outside)), repo, folder=True))
    return sorted(found)


def _relative(path: Path, repo: Path, folder: bool = False) -> str:
    text = path.relative_to(repo).as_posix() if path.is_relative_to(repo) else path.as_posix()
    return text + "/" if (folder or path.is_dir()) and not text.endswith("/") else text


def changed(stack_path: Path, ref: str, paths: list[str]) -> list[str]:
    """The entries of `paths` (from `inputs`) that changed between `ref` and the work tree."""
    repo = git.toplevel(stack_path.resolve().parent)
    if repo is None:
        return []
    differing = git.changed_since(repo, git.require_commit(repo, ref, "--changed-since"))
    return [p for p in paths if any(f == p or (p.endswith("/") and f.startswith(p)) for f in differing)]
