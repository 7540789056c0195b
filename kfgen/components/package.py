"""What a component package is: the one small protocol every component of the platform follows.

A package owns everything about its component: its settings (a frozen dataclass whose defaults
come from its `settings.schema.json`, the one source), the rules its settings must follow, its
install per supported release, the workloads it runs, the images it starts at run time, what its
accelerator Components patch, and every deliberate difference from upstream's install.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from kfgen.objects import Obj
from kfgen.risks import TakenRisk

Fail = Callable[[tuple, str], None]  # (path relative to the component's entry in the stack, message)


@dataclass(frozen=True)
class Release:
    """One supported upstream version: the images it pins, and where upstream's own install of it
    is kept for the parity tests (a path under ../shared/upstream-installs)."""

    version: str
    images: Mapping[str, str]
    upstream: str


@dataclass(frozen=True)
class Deviation:
    """A deliberate difference from upstream's install: which object (kind/name, `*` for any), which
    field (a dotted path as the parity tests write it, a prefix covers what is below it, `*` for the
    whole object), and why. The parity tests fail on any difference a component does not declare,
    and on a declared one that no supported release has.

    `upstream_name`: kfgen names the object differently (`name` is kfgen's name); `versions`: the
    deviation holds for these releases only (empty: all)."""

    kind: str
    name: str
    field: str
    reason: str
    upstream_name: str | None = None
    versions: tuple[str, ...] = ()

    def holds_for(self, version: str) -> bool:
        return not self.versions or version in self.versions


@dataclass(frozen=True)
class GatewayRoute:
    """A URL prefix a component routes through the gateway: what it serves, and where it is written (under spec)."""

    prefix: str
    what: str
    where: tuple


@dataclass(frozen=True)
class PodSecurityNeed:
    """The Pod Security level that pods an operator writes into the workload namespace need, when
    `restricted` refuses them and the operator gives no way to change that, and why."""

    level: str  # "baseline": never less
    reason: str


@dataclass(frozen=True)
class AcceleratorTarget:
    """Where an accelerator Component patches a workload kind: a kustomize patch target, the JSON
    pointer of the pod spec and of the container that gets the device."""

    group: str
    version: str
    kind: str
    label_selector: str
    pod: str
    container: str
    name: str  # file name of the patch in the Component


class ComponentPackage:
    """Base of every component package; a package sets the class attributes and overrides what it has."""

    name: str  # its key under spec.components
    title: str  # what the README and `kfgen components` call it
    releases: tuple[Release, ...]  # supported versions, the default first
    namespace: str  # default namespace
    runs: str | None = None  # the workload kind under spec.workloads it runs
    app_wave: int = 1  # its Argo CD Application's sync wave
    workload_kinds: tuple[str, ...] = ()  # kinds of the custom resources it runs for workloads (and routes)
    deviations: tuple[Deviation, ...] = ()
    folder: Path  # the package's folder (settings.schema.json lives there)

    # --- settings ---------------------------------------------------------------------------------

    @cached_property
    def settings_schema(self) -> dict:
        """The JSON Schema of this component's own settings (properties beyond the common ones)."""
        return json.loads((self.folder / "settings.schema.json").read_text())

    def settings(self, data: Mapping[str, Any]) -> Any:
        """The component's typed settings from its entry in the stack, defaults from its schema."""
        return None

    def check(self, component: Any, fail: Fail) -> None:
        """Rules across this component's settings that a JSON Schema cannot express."""

    def check_environment(self, component: Any, env: Any, fail: Fail) -> None:
        """Rules that also depend on the environment (its exposure, its cloud); paths are under spec."""

    def routes(self, component: Any, env: Any) -> list[GatewayRoute]:
        """The prefixes this component routes through the gateway in an environment."""
        return []

    def risks(self, component: Any, env: Any) -> list[TakenRisk]:
        """The risks (kfgen.risks) this component takes in an environment, where each switch is written."""
        return []

    # --- rendering --------------------------------------------------------------------------------

    def install(self, component: Any, ctx: Any) -> list[Obj]:
        """The operator's install for the component's version (CRDs, RBAC, Deployments...)."""
        raise NotImplementedError

    def workloads(self, ctx: Any) -> list[Obj]:
        """The custom resources of the stack's workloads this component runs."""
        return []

    def workload_pod_security(self, ctx: Any) -> PodSecurityNeed | None:
        """What the pods this component's operator adds to the workload namespace need of its Pod
        Security level, when `restricted` refuses them; None when they meet it."""
        return None

    def runtime_images(self, component: Any, ctx: Any) -> set[str]:
        """Images the operator starts at run time that appear in no rendered `image` field."""
        return set()

    def image_catalogs(self) -> Iterable[str]:
        """ConfigMap data keys that list images the operator may start (only those in use count)."""
        return ()

    def accelerator_targets(self) -> tuple[AcceleratorTarget, ...]:
        """Workload kinds of this component that accelerator Components patch."""
        return ()

    def accelerator_additions(self, klass: Any) -> dict[str, Any]:
        """Extra files an accelerator Component adds for this component: {patch file: (target, ops)}."""
        return {}

    # --- releases ---------------------------------------------------------------------------------

    @property
    def default_version(self) -> str:
        return self.releases[0].version

    def release(self, version: str) -> Release:
        return next(r for r in self.releases if r.version == version)

    def images(self, version: str) -> Mapping[str, str]:
        return self.release(version).images


def with_defaults(data: Mapping[str, Any] | None, schema: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with every default its schema declares filled in, nested objects included (an absent
    object is made from its defaults only when it has no required keys, i.e. when it could be empty)."""
    out = dict(data or {})
    for key, prop in (schema.get("properties") or {}).items():
        if key not in out and "default" in prop:
            out[key] = prop["default"]
        kind = prop.get("type")
        is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)  # nullable objects are ["object", "null"]
        if is_object and "properties" in prop and (key in out or (_has_defaults(prop) and not prop.get("required"))):
            out[key] = with_defaults(out.get(key), prop)
    return out


def _has_defaults(schema: Mapping[str, Any]) -> bool:
    return any("default" in p or _has_defaults(p) for p in (schema.get("properties") or {}).values())


@dataclass(frozen=True)
class NoSettings:
    """A component with no settings of its own."""

    extra: Mapping[str, Any] = field(default_factory=dict)
