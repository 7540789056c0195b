"""When kustomize refuses to build an environment, find the entry of the stack that caused it.

kustomize names neither the patch file nor the stack when a patch does not apply ("replace
operation does not apply: doc is missing path: ..."), and its folders are a render's staging
folders. So, only after a build failed, the planned tree is written again into a scratch folder and
built with the user's patches added one at a time: the first one whose build fails is the one to
fix, reported at its entry in the stack (exit 2). A failure no patch explains stays an outside
tool's (exit 3), named by the environment's folder in the output tree, not the scratch one.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from kfgen.errors import InputError, Problem, ToolError
from kfgen.kustomize import BuildError, Engine
from kfgen.load import Document
from kfgen.model import Stack
from kfgen.plan import safe_path
from kfgen.sources import normalized
from kfgen.vocabulary import BASES, ENVIRONMENTS, KUSTOMIZATION, OWN_PATCHES
from kfgen.writer import write_tree
from kfgen.yamlio import dump, load_all

KfgenErrorLike = InputError | ToolError


def explain_build_failure(failure: BuildError, stack: Stack, tree: dict[str, str], engine: Engine, doc: Document,
                          staging: Path) -> KfgenErrorLike:
    """The error to report for a failed build: the user's patch that kustomize cannot apply, located
    in the stack, or the tool's failure with kfgen's own folder names."""
    scratch = Path(tempfile.mkdtemp(prefix="kfgen-check-"))
    try:
        write_tree(scratch, tree)
        for folder, count, entries in _patch_lists(stack, tree):
            for n in range(1, count + 1):
                detail = _fails(engine, scratch, folder, tree, n)
                if detail is not None:
                    patch = entries[n - 1]
                    where = patch.written_at or ()
                    message = f"kustomize cannot apply this patch ({patch.path}): {_clean(detail, scratch, staging)}"
                    return InputError(doc.problem(where, message))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    duplicate = _duplicate_extra(failure.detail, doc)
    if duplicate is not None:
        return InputError(duplicate)
    relative = _clean(str(failure.folder), staging, staging).lstrip("/") or str(failure.folder)
    return ToolError(f"kustomize build {relative} failed: {_clean(failure.detail, staging, staging)}")


def _duplicate_extra(detail: str, doc: Document) -> Problem | None:
    """An extraResources file that holds an object the environment already has (kustomize: "may not add
    resource with an already registered id"), at its entry in the stack."""
    found = re.search(r"merging resources from '([^']+)': may not add resource with an already registered id: ([^']+)'", detail)
    if not found:
        return None
    file, ident = found[1].removeprefix("extra/"), found[2]
    spec = doc.data.get("spec") or {}
    entries: list[tuple[tuple, dict]] = [(("spec", "components", n), c) for n, c in (spec.get("components") or {}).items()]
    entries += [(("spec", "environments", e, "overrides", "components", n), c) for e, env in (spec.get("environments") or {}).items()
                for n, c in ((env.get("overrides") or {}).get("components") or {}).items()]
    for path, component in entries:
        for i, ref in enumerate((component or {}).get("extraResources") or ()):
            safe = safe_path(normalized(ref))
            if file == safe or file.startswith(safe.rstrip("/") + "/"):
                return doc.problem(path + ("extraResources", i), f"{ref!r} holds {ident}, which this environment already has (kfgen renders "
                                                                 "it, or another of your files does); give yours another name, or change "
                                                                 "kfgen's with a patch")
    return None


def _patch_lists(stack: Stack, tree: dict[str, str]) -> list[tuple[str, int, list]]:
    """(kustomization folder, how many of its patches are the user's, those patches) for every base
    with the stack's patches and every environment with its own, in the order kustomize meets them."""
    lists = []
    for name, component in stack.components.items():
        if component.patches and f"{BASES}/{name}/{KUSTOMIZATION}" in tree:
            lists.append((f"{BASES}/{name}", len(component.patches), list(component.patches)))
    for env in stack.environments:
        stacks_own = {n: [(p.path, p.target) for p in stack.components[n].patches] for n in env.components}
        own = [p for n, c in env.components.items() if c.enabled for p in c.patches if (p.path, p.target) not in stacks_own[n]]
        if own:
            lists.append((f"{ENVIRONMENTS}/{env.name}", len(own), own))
    return lists


def _fails(engine: Engine, scratch: Path, folder: str, tree: dict[str, str], n: int) -> str | None:
    """kustomize's message when `folder` is built with only the first `n` of the user's patches, else None."""
    if folder.startswith(BASES + "/"):
        path = f"{folder}/{KUSTOMIZATION}"
        kustomization = load_all(tree[path])[0]
        kustomization["patches"] = kustomization["patches"][:n]  # the user's come first, kfgen's waiver patches after
    else:
        path = f"{folder}/overrides/{KUSTOMIZATION}"
        kustomization = load_all(tree[path])[0]
        kfgens = [p for p in kustomization["patches"] if not p["path"].startswith(OWN_PATCHES)]
        users = [p for p in kustomization["patches"] if p["path"].startswith(OWN_PATCHES)]
        kustomization["patches"] = kfgens + users[:n]
    (scratch / path).write_text(dump(kustomization))
    try:
        engine.build(scratch / folder)
    except BuildError as exc:
        return exc.detail
    finally:
        (scratch / path).write_text(tree[path])
    return None


def _clean(text: str, *folders: Path) -> str:
    """`text` without the scratch or staging folders' paths (they mean nothing to the user)."""
    for folder in folders:
        text = re.sub(re.escape(str(folder)) + r"/?", "", text)
    return text
