"""Read a stack file and every file it references (extra manifests, patches, profiles) into memory.

This is the input edge: after it, validation and planning are pure functions of these bytes.
Referenced paths are relative to the stack file and must stay inside its repository (the nearest
folder with a .git above the stack file, else the stack's own folder) unless allowed.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kfgen.errors import InputError, Problem
from kfgen.load import MAX_BYTES, Document, load_bytes, load_documents, read_input
from kfgen.profiles import profile_problems
from kfgen.schema import checked_document
from kfgen.shipped import shipped_dir

PROFILE_KINDS = ("clouds", "accelerators")
MAX_TOTAL_BYTES = 32 * 1024 * 1024  # every file a stack references, together
MAX_FOLDER_FILES = 1000  # .yaml files in one referenced folder
JSON6902_OPS = ("add", "remove", "replace", "move", "copy", "test")


@dataclass
class Sources:
    """A stack document and the bytes of everything it references."""

    stack_path: Path
    display: str  # how the stack file is named in messages
    doc: Document
    stack_bytes: bytes
    files: dict[str, bytes] = field(default_factory=dict)  # relative path (as written, expanded) -> bytes
    profiles: dict[str, list[Document]] = field(default_factory=dict)  # clouds/accelerators -> docs, built-ins first
    broken_profiles: set[str] = field(default_factory=set)  # names of the user's profiles that have problems (left out of `profiles`)
    problems: list[Problem] = field(default_factory=list)  # what read_sources(collect=True) found: validation reports them too
    schema_spots: list[str] = field(default_factory=list)  # paths of the schema's problems: the rules do not report them again
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


def read_sources(stack_path: Path, display: str | None = None, allow_outside: bool = False, repo: Path | None = None, *,
                 collect: bool = False, schema_checked: bool = True) -> Sources:
    """Load and schema-check the stack, then read what it references. Raises InputError with every
    problem; with `collect`, keeps going as far as it can and leaves them in `problems` (for
    kfgen.validate, which adds the cross-field rules' problems: every problem of a stack at once).
    `repo` is the repository root when the stack is a copy outside its repository (kfgen diff's base).
    Without `schema_checked`, a stack not known to be valid may fail with any error (kfgen check's proof)."""
    display = display or str(stack_path)
    raw = read_input(stack_path, display)
    doc = load_bytes(raw, display)
    problems, data = checked_document(doc) if schema_checked else ([], doc.data)
    if problems and (data is None or not collect):
        raise InputError(problems)
    doc = Document(doc.file, data, doc.values, doc.keys, doc.numbers)  # wrong values left out, positions kept
    sources = Sources(stack_path.resolve(), display, doc, raw)
    sources.schema_spots = [p.path for p in problems]
    root = repo.resolve() if repo else repo_root(sources.stack_dir)
    sources.repo = root
    sources.inputs += [sources.stack_path, root / ".git"]
    spec = doc.data.get("spec", {})
    entries: list[tuple[tuple, dict]] = [(("spec", "components", name), component)
                                         for name, component in sorted((spec.get("components") or {}).items())]
    for env_name, env in sorted((spec.get("environments") or {}).items()):
        overrides = (env.get("overrides") or {}).get("components") or {}
        for name, component in sorted(overrides.items()):
            entries.append((("spec", "environments", env_name, "overrides", "components", name), component))
    for base, component in entries:  # the stack's extras and patches, then each environment's own
        for i, ref in enumerate((component or {}).get("extraResources") or []):
            problems += _read_manifests(sources, root, allow_outside, ref, base + ("extraResources", i), check=manifest_problems)
        for i, patch in enumerate((component or {}).get("patches") or []):
            problems += _read_manifests(sources, root, allow_outside, patch["path"], base + ("patches", i, "path"), folder_ok=False,
                                        check=patch_problems)
    profile_folders = []
    for i, ref in enumerate(spec.get("profiles") or []):
        folder, problem = _resolve(sources, root, allow_outside, ref, ("spec", "profiles", i))
        if problem:
            problems.append(problem)
        elif not folder.is_dir():
            problems.append(doc.problem(("spec", "profiles", i), f"profile folder {ref!r} not found (relative to the stack file)"))
        else:
            profile_folders.append((ref, folder))
    sources.profiles, profile_problems, sources.broken_profiles = read_profiles(profile_folders, sources.files,
                                                                                None if allow_outside else root.resolve())
    problems += profile_problems
    if problems and not collect:
        raise InputError(problems)
    sources.problems = problems
    return sources


def _resolve(sources: Sources, root: Path, allow_outside: bool, ref: str, path: tuple) -> tuple[Path, Problem | None]:
    target = (sources.stack_dir / ref).resolve()
    sources.inputs.append(target)
    if not allow_outside and not target.is_relative_to(root.resolve()):
        return target, sources.doc.problem(path, f"{ref!r} is outside the stack's repository ({root}); "
                                                 "pass --allow-outside-repo to allow it")
    return target, None


Check = Callable[[bytes, str], list[Problem]]


def _read_manifests(sources: Sources, root: Path, allow_outside: bool, ref: str, path: tuple, folder_ok: bool = True, *,
                    check: Check) -> list[Problem]:
    """Read a referenced file, or every *.yaml under a referenced folder, into sources.files (keys:
    the normalized reference, plus the file's path inside the folder). Only regular files, each and
    all together under a size cap; symlinks only where they stay in the repository; no symlinked
    folders inside a referenced folder."""
    target, problem = _resolve(sources, root, allow_outside, ref, path)
    if problem:
        return [problem]
    key = normalized(ref)
    if target.is_dir() and folder_ok:
        found: list[Path] = []
        for folder, dirs, files in os.walk(target):  # does not follow symlinked folders
            for name in sorted(dirs):
                if (Path(folder) / name).is_symlink():
                    inner = (Path(folder) / name).relative_to(target).as_posix()
                    return [sources.doc.problem(path, f"{ref!r} holds a symlink to a folder ({inner}); reference its target instead")]
            found += [Path(folder) / n for n in files if n.endswith((".yaml", ".yml"))]
        if not found:
            return [sources.doc.problem(path, f"folder {ref!r} holds no .yaml files")]
        if len(found) > MAX_FOLDER_FILES:
            return [sources.doc.problem(path, f"folder {ref!r} holds {len(found)} .yaml files, over the limit of {MAX_FOLDER_FILES}")]
        problems = []
        for file in sorted(found):
            inner = file.relative_to(target).as_posix()
            problems += _read_one(sources, root, allow_outside, file, f"{key}/{inner}", path, f"{ref!r} ({inner})", check)
        return problems
    if not target.exists() and not target.is_symlink():
        what = "file" if not folder_ok else "file or folder"
        return [sources.doc.problem(path, f"{what} {ref!r} not found (relative to the stack file)")]
    return _read_one(sources, root, allow_outside, target, key, path, repr(ref), check)


def _read_one(sources: Sources, root: Path, allow_outside: bool, file: Path, key: str, path: tuple, named: str,
              check: Check) -> list[Problem]:
    real = file.resolve()
    if not allow_outside and not real.is_relative_to(root.resolve()):
        return [sources.doc.problem(path, f"{named} is a symlink that leaves the stack's repository ({root}); "
                                          "pass --allow-outside-repo to allow it")]
    budget = MAX_TOTAL_BYTES - sum(len(b) for b in sources.files.values())
    try:
        data = read_input(file, key, min(MAX_BYTES, budget))
    except InputError as exc:
        message = exc.problems[0].message if isinstance(exc.problems[0], Problem) else str(exc.problems[0])
        if budget < MAX_BYTES and "limit" in message:
            message = f"the files the stack references are over {MAX_TOTAL_BYTES} bytes together"
        return [sources.doc.problem(path, f"{named}: {message}")]
    sources.files[key] = data
    return check(data, str(Path(sources.display).parent / key))


def manifest_problems(raw: bytes, display: str) -> list[Problem]:
    """Your own manifests: YAML kfgen can read (same rules as the stack), each document an object."""
    try:
        documents = load_documents(raw, display)
    except InputError as exc:
        return [p for p in exc.problems if isinstance(p, Problem)]
    problems = []
    for doc in documents:
        data = doc.data
        if not isinstance(data, dict):
            problems.append(doc.problem((), "expected a Kubernetes object (a mapping with apiVersion, kind and metadata.name)"))
            continue
        for key in ("apiVersion", "kind"):
            if not isinstance(data.get(key), str) or not data.get(key):
                problems.append(doc.problem((key,) if key in data else (), f"the object needs {key} (a string)"))
        name = (data.get("metadata") or {}).get("name") if isinstance(data.get("metadata"), dict) else None
        if not isinstance(name, str) or not name:
            problems.append(doc.problem(("metadata", "name") if name is not None else ("metadata",) if "metadata" in data else (),
                                        "the object needs metadata.name (a string)"))
    return problems


def patch_problems(raw: bytes, display: str) -> list[Problem]:
    """A kustomize patch: one document, a JSON 6902 list of operations or a strategic merge mapping."""
    try:
        doc = load_bytes(raw, display)
    except InputError as exc:
        return [p for p in exc.problems if isinstance(p, Problem)]
    if isinstance(doc.data, dict):
        return []
    if not isinstance(doc.data, list):
        return [doc.problem((), "expected a patch: a list of JSON 6902 operations or a strategic merge patch (a mapping)")]
    problems = []
    for i, op in enumerate(doc.data):
        if not isinstance(op, dict) or op.get("op") not in JSON6902_OPS or not isinstance(op.get("path"), str):
            problems.append(doc.problem((i,), f"expected a JSON 6902 operation: op ({', '.join(JSON6902_OPS)}) and path"))
    return problems


def normalized(ref: str) -> str:
    """A reference as kfgen keys it: `./a//b.yaml` and `a/b.yaml` are one file."""
    return posixpath.normpath(ref)


def read_profiles(user_folders: list[tuple[str, Path]], files: dict[str, bytes],
                  inside: Path | None = None) -> tuple[dict[str, list[Document]], list[Problem], set[str]]:
    """Built-in profiles, then the user's (profile files must stay under `inside`, when given); and
    the names of the user's profiles left out for their problems."""
    found: dict[str, list[Document]] = {kind: [] for kind in PROFILE_KINDS}
    problems: list[Problem] = []
    broken: set[str] = set()
    shipped = shipped_dir("overlays")
    for kind in PROFILE_KINDS:
        for file in sorted((shipped / kind).glob("*.yaml")):
            found[kind].append(load_bytes(file.read_bytes(), f"<kfgen>/overlays/{kind}/{file.name}"))
    for ref, folder in user_folders:
        for kind in PROFILE_KINDS:
            for file in sorted((folder / kind).glob("*.y*ml")):
                display = str(Path(ref) / kind / file.name)
                if inside and not file.resolve().is_relative_to(inside):
                    problems.append(Problem(display, 1, 1, "", f"a symlink that leaves the stack's repository ({inside}); "
                                                               "pass --allow-outside-repo to allow it"))
                    continue
                try:
                    files[display] = read_input(file, display)
                    doc = load_bytes(files[display], display)
                except InputError as exc:
                    problems.extend(p for p in exc.problems if isinstance(p, Problem))
                    broken.add(file.stem)  # its name, most likely: environments using it are not reported again
                    continue
                own = profile_problems(doc, kind)
                if own:
                    problems.extend(own)
                    if isinstance(doc.data, dict) and isinstance(doc.data.get("name"), str):
                        broken.add(doc.data["name"])
                    continue
                found[kind].append(doc)
    return found, problems, broken
