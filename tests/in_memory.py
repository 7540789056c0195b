"""Stacks in memory, for the fast plan-level tests: the stack's text goes through the same schema
check, validation and plan as a render, with no file, no kustomize and no subprocess."""

from __future__ import annotations

from pathlib import Path

from kfgen.context import RenderContext
from kfgen.errors import InputError
from kfgen.load import load_bytes
from kfgen.model import Stack
from kfgen.objects import Obj
from kfgen.plan import Tree
from kfgen.schema import schema_problems
from kfgen.sources import Sources, read_profiles
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


def sources_of(text: str, display: str = "stack.yaml") -> Sources:
    """The Sources of a stack that references no other file (InputError as read_sources raises it)."""
    raw = text.encode()
    doc = load_bytes(raw, display)
    problems = schema_problems(doc)
    if problems:
        raise InputError(problems)
    sources = Sources(Path("/in-memory") / display, display, doc, raw)
    sources.profiles, problems = read_profiles([], {})
    if problems:
        raise InputError(problems)
    return sources


def plan_of(text: str) -> tuple[Stack, Tree]:
    """The validated stack and its planned tree, exactly as `kfgen render` makes them before writing."""
    return validate(sources_of(text))


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
