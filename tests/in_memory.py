"""Stacks in memory, for the fast plan-level tests: the stack's text goes through the same schema
check, validation and plan as a render, with no file, no kustomize and no subprocess."""

from __future__ import annotations

from pathlib import Path

from kfgen.context import RenderContext
from kfgen.errors import InputError
from kfgen.load import Document, load_bytes
from kfgen.model import Stack
from kfgen.objects import Obj
from kfgen.plan import Tree
from kfgen.schema import checked_document
from kfgen.sources import Sources, normalized, read_profiles
from kfgen.validate import validate

MINIMAL = """\
apiVersion: kfgen.io/v1alpha1
kind: Stack
metadata: {{name: parity}}
spec:
  gitops: {{repoURL: https://example.com/platform.git}}
  components:
{components}
  environments:
    dev: {{cloud: kind}}
"""


def sources_of(text: str, display: str = "stack.yaml", files: dict[str, str] | None = None) -> Sources:
    """The Sources of a stack as read_sources(collect=True) makes them; `files`: the text of the files
    it references, by the path written in the stack (read_sources would read them from disk)."""
    raw = text.encode()
    doc = load_bytes(raw, display)
    problems, data = checked_document(doc)
    if data is None:
        raise InputError(problems)
    sources = Sources(Path("/in-memory") / display, display, Document(doc.file, data, doc.values, doc.keys, doc.numbers), raw)
    sources.problems, sources.schema_spots = problems, [p.path for p in problems]
    sources.files = {normalized(path): content.encode() for path, content in (files or {}).items()}
    sources.profiles = read_profiles([], {})[0]
    return sources


def plan_of(text: str, files: dict[str, str] | None = None) -> tuple[Stack, Tree]:
    """The validated stack and its planned tree, exactly as `kfgen render` makes them before writing."""
    return validate(sources_of(text, files=files))


def minimal_stack(components: dict[str, dict] | None = None) -> str:
    """A stack with every component at its defaults, but for the settings given."""
    settings: dict[str, dict] = {"ambassador": {"hostname": "ml.example.com"},
                                 "jupyterhub": {"auth": "{type: github, allowedUsers: [alice]}"}}
    for name, values in (components or {}).items():
        settings[name] = {**settings.get(name, {}), **values}
    lines = [f"    {name}: {{{', '.join(f'{k}: {v}' for k, v in values.items())}}}" for name, values in settings.items()]
    return MINIMAL.format(components="\n".join(lines))


def install_of(name: str, version: str | None = None) -> list[Obj]:
    """A component's install objects at one version, from the pure plan's base context (no environment)."""
    from kfgen.components import PACKAGES

    stack, _ = plan_of(minimal_stack({name: {"version": f'"{version}"'}} if version else None))
    ctx = RenderContext(stack.name, stack.components, stack.workloads)
    return PACKAGES[name].install(stack.components[name], ctx)
