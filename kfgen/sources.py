"""Read a stack file and every file it references (extra manifests, patches, profiles) into memory.

This is the input edge: after it, validation and planning are pure functions of these bytes.
Referenced paths are relative to the stack file and must stay inside its repository (the nearest
folder with a .git above the stack file, else the stack's own folder) unless allowed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from kfgen.errors import InputError, Problem
from kfgen.load import Document, load_bytes, read_input
from kfgen.profiles import profile_problems
from kfgen.schema import schema_problems
from kfgen.shipped import shipped_dir

PROFILE_KINDS = ("clouds", "accelerators")


@dataclass
class Sources:
    """A stack document and the bytes of everything it references."""

    stack_path: Path
    doc: Document
    stack_bytes: bytes
    files: dict[str, bytes] = field(default_factory=dict)  # relative path (as written, expanded) -> bytes
    profiles: dict[str, list[Document]] = field(default_factory=dict)  # clouds/accelerators -> docs, built-ins first
    inputs: list[Path] = field(default_factory=list)  # the stack file, every file and folder it references, the .git (resolved)
    repo: Path | None = None  # the repository root (resolved): references stay inside it; Argo CD paths start at it

    @property
    def stack_dir(self) -> Path:
        return self.stack_path.parent

    @property
    def folder_in_repo(self) -> str:
        """The stack's folder relative to the repository root ('' at the root), in git's spelling."""
        folder = self.stack_dir.relative_to(self.repo).as_posix() if self.repo else "."
        return "" if folder == "." else folder

    def digest(self) -> str:
        """sha256 over the stack file and every referenced file, independent of where the stack lives."""
        h = hashlib.sha256(self.stack_bytes)
        for name in sorted(self.files):
            h.update(b"\0" + name.encode() + b"\0" + self.files[name])
        return h.hexdigest()


def repo_root(start: Path) -> Path:
    """The nearest ancestor holding .git, else `start` itself."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def read_sources(stack_path: Path, display: str | None = None, allow_outside: bool = False, repo: Path | None = None) -> Sources:
    """Load and schema-check the stack, then read what it references. Raises InputError with every problem.
    `repo` is the repository root when the stack is a copy outside its repository (kfgen diff's base)."""
    display = display or str(stack_path)
    raw = read_input(stack_path, display)
    doc = load_bytes(raw, display)
    problems = schema_problems(doc)
    if problems:
        raise InputError(problems)
    sources = Sources(stack_path.resolve(), doc, raw)
    root = repo.resolve() if repo else repo_root(sources.stack_dir)
    sources.repo = root
    sources.inputs += [sources.stack_path, root / ".git"]
    spec = doc.data.get("spec", {})
    for name, component in sorted((spec.get("components") or {}).items()):
        base = ("spec", "components", name)
        for i, ref in enumerate(component.get("extraResources") or []):
            problems += _read_manifests(sources, root, allow_outside, ref, base + ("extraResources", i))
        for i, patch in enumerate(component.get("patches") or []):
            problems += _read_manifests(sources, root, allow_outside, patch["path"], base + ("patches", i, "path"), folder_ok=False)
    for env_name, env in sorted((spec.get("environments") or {}).items()):
        overrides = (env.get("overrides") or {}).get("components") or {}
        for name, component in sorted(overrides.items()):
            for key in ("extraResources", "patches", "namespace", "install"):
                if key in component:
                    problems.append(doc.problem(("spec", "environments", env_name, "overrides", "components", name, key),
                                                f"{key} cannot be overridden per environment; set it in spec.components.{name}", key=True))
    profile_folders = []
    for i, ref in enumerate(spec.get("profiles") or []):
        folder, problem = _resolve(sources, root, allow_outside, ref, ("spec", "profiles", i))
        if problem:
            problems.append(problem)
        elif not folder.is_dir():
            problems.append(doc.problem(("spec", "profiles", i), f"profile folder {ref!r} not found (relative to the stack file)"))
        else:
            profile_folders.append((ref, folder))
    sources.profiles, profile_problems = read_profiles(profile_folders, sources.files)
    problems += profile_problems
    if problems:
        raise InputError(problems)
    return sources


def _resolve(sources: Sources, root: Path, allow_outside: bool, ref: str, path: tuple) -> tuple[Path, Problem | None]:
    target = (sources.stack_dir / ref).resolve()
    sources.inputs.append(target)
    if not allow_outside and not target.is_relative_to(root.resolve()):
        return target, sources.doc.problem(path, f"{ref!r} is outside the stack's repository ({root}); "
                                                 "pass --allow-outside-repo to allow it")
    return target, None


def _read_manifests(sources: Sources, root: Path, allow_outside: bool, ref: str, path: tuple, folder_ok: bool = True) -> list[Problem]:
    target, problem = _resolve(sources, root, allow_outside, ref, path)
    if problem:
        return [problem]
    if target.is_dir() and folder_ok:
        found = sorted(p for p in target.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        if not found:
            return [sources.doc.problem(path, f"folder {ref!r} holds no .yaml files")]
        for file in found:
            sources.files[str(Path(ref) / file.relative_to(target))] = file.read_bytes()
        return []
    if not target.is_file():
        what = "file" if not folder_ok else "file or folder"
        return [sources.doc.problem(path, f"{what} {ref!r} not found (relative to the stack file)")]
    sources.files[ref] = target.read_bytes()
    return []


def read_profiles(user_folders: list[tuple[str, Path]], files: dict[str, bytes]) -> tuple[dict[str, list[Document]], list[Problem]]:
    found: dict[str, list[Document]] = {kind: [] for kind in PROFILE_KINDS}
    problems: list[Problem] = []
    shipped = shipped_dir("overlays")
    for kind in PROFILE_KINDS:
        for file in sorted((shipped / kind).glob("*.yaml")):
            found[kind].append(load_bytes(file.read_bytes(), f"<kfgen>/overlays/{kind}/{file.name}"))
    for ref, folder in user_folders:
        for kind in PROFILE_KINDS:
            for file in sorted((folder / kind).glob("*.y*ml")):
                display = str(Path(ref) / kind / file.name)
                files[display] = file.read_bytes()
                try:
                    doc = load_bytes(files[display], display)
                except InputError as exc:
                    problems.extend(p for p in exc.problems if isinstance(p, Problem))
                    continue
                problems.extend(profile_problems(doc, kind))
                found[kind].append(doc)
    return found, problems
