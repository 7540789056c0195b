"""The layered tree, in memory: {relative path: text}. Pure: no files, no subprocesses, no clock.

    base/<name>/                  a kustomize base per component (and `workloads`, the workload namespace)
    components/<cloud>/           kind: Component per cloud used
    components/<cloud>-<class>/   kind: Component per accelerator class used
    envs/<env>/kustomization.yaml bases + the environment's overrides Component + cloud and accelerator Components
    envs/<env>/overrides/         kind: Component: the exact difference of this environment (JSON 6902 patches),
                                  then the patches the environment adds (yours/<component>/)
    envs/<env>/extra/<component>/ the extraResources only this environment adds (a kustomization of their own)
    argocd/                       Argo CD objects
    provenance.json               written by the render, last (kfgen.record): it lists the hydrated files too
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import MutableMapping

from kfgen.argocd import argocd_objects, extra_sync_options, grant_problems
from kfgen.bases import apply_waivers, component_objects, waiver_targets
from kfgen.components import COMPONENTS
from kfgen.context import RenderContext
from kfgen.envpatch import Identity, environment_overlay
from kfgen.errors import InputError, Problem
from kfgen.layout import assign_paths, object_path, split_api_version
from kfgen.mirror import Mirror, repository
from kfgen.model import Environment, Patch, Stack, frozen, thawed
from kfgen.objects import Obj
from kfgen.profile_components import accelerator_component, cloud_component
from kfgen.vocabulary import (COMPONENT_LABEL, KUSTOMIZATION_API, KUSTOMIZE_COMPONENT_API, MANAGED_BY, OWN_PATCHES, PART_OF, SYNC_OPTIONS,
                              WORKLOADS_BASE)
from kfgen.yamlio import dump, load_all

Tree = dict[str, str]


@dataclass
class Inventory:
    bases: list[str] = field(default_factory=list)
    cluster_objects: dict[str, set[tuple[str, str, str]]] = field(default_factory=dict)  # per base: (group, kind, name)
    namespaces: set[str] = field(default_factory=set)


def used_components(stack: Stack) -> list[str]:
    """Components enabled in at least one environment: each gets a base."""
    return [name for name in COMPONENTS if any(env.components[name].enabled for env in stack.environments)]


def env_components(env: Environment) -> list[str]:
    return [name for name in COMPONENTS if env.components[name].enabled]


def common_labels(stack: Stack, base: str) -> dict[str, str]:
    return {MANAGED_BY: "kfgen", PART_OF: stack.name, COMPONENT_LABEL: base}


def plan(stack: Stack, memo: MutableMapping[str, dict] | None = None) -> Tree:
    """Every file of the output tree except rendered/ (which kustomize produces from it). `memo`: each
    environment's plan (EnvironmentPlan.as_data) by the digest of what it reads (environment_keys):
    found there, it is not planned again; planned, it is added."""
    tree: Tree = {}
    base_ctx = RenderContext(stack.name, stack.components, stack.workloads, waivers=stack.waivers)
    bases = component_objects(base_ctx, used_components(stack))
    extra_entries = {name: _extra_entries(stack, name) for name in bases}
    extras = {name: [o for _, _, o in entries] for name, entries in extra_entries.items()}
    for name, objects in bases.items():
        tree.update(_base(stack, name, objects, extras[name]))
    profile_components: dict[str, dict] = {}
    inventory: dict[str, Inventory] = {}
    matched = {w for w in stack.waivers if waiver_targets(w, bases) or waiver_targets(w, extras)}
    granted = [(f"spec.components.{n}.extraResources[{i}]", source, o) for n, entries in sorted(extra_entries.items())
               for i, source, o in entries]
    keys = environment_keys(stack) if memo is not None else {}
    for env in stack.environments:
        key = keys.get(env.name)
        if memo is not None and key is not None and key in memo:
            own = EnvironmentPlan.from_data(memo[key])
        else:
            own = plan_environment(stack, env, bases)
            if memo is not None and key is not None:
                memo[key] = own.as_data()
        matched |= {stack.waivers[i] for i in own.waivers}  # objects only this environment has
        names = [WORKLOADS_BASE, *env_components(env)]
        own_entries = {n: entries for n in env_components(env) if (entries := _extra_entries(stack, n, env))}
        own_extras = {n: [o for _, _, o in entries] for n, entries in own_entries.items()}
        matched |= {w for w in stack.waivers if waiver_targets(w, own_extras)}
        extra_bases = []
        for name in sorted(own_extras):
            tree.update(_env_extras(stack, env, name, own_extras[name]))
            extra_bases.append(f"extra/{name}")
            granted += [(f"spec.environments.{env.name}.overrides.components.{name}.extraResources[{i}]", source, o)
                        for i, source, o in own_entries[name]]
        tree.update({f"envs/{env.name}/overrides/{path}": text for path, text in own.overrides.items()})
        components = ["overrides"] if own.overrides else []
        env_profile_components = [m for m in [cloud_component(env.cloud), *(accelerator_component(env.cloud, k) for k in env.accelerators)] if m]
        for component in env_profile_components:
            if profile_components.setdefault(component.name, component.files) != component.files:
                raise AssertionError(f"two different Components named {component.name}")  # a bug: names must say what differs
            components.append(f"../../components/{component.name}")
        extra_placements = {n: _placements(extras.get(n, []) + own_extras.get(n, [])) for n in own.placements}
        inventory[env.name] = _inventory(own.placements, extra_placements, env_profile_components)
        kustomization = {"apiVersion": KUSTOMIZATION_API, "kind": "Kustomization",
                         "resources": [f"../../base/{n}" for n in names] + extra_bases}
        if components:
            kustomization["components"] = components
        tree[f"envs/{env.name}/kustomization.yaml"] = dump(kustomization)
    unmatched = [w for w in stack.waivers if w not in matched]
    problems = [Problem(*w.written_at, "spec.waivers", f"the {w.policy} waiver names no rendered object "
                        f"({w.kind} {w.namespace + '/' if w.namespace else ''}{w.name})") for w in unmatched]
    declared = {c.namespace for c in stack.components.values() if c.enabled} | {stack.workloads.namespace}
    problems += grant_problems(stack, granted, declared)
    if problems:
        raise InputError(problems)
    for name, files in sorted(profile_components.items()):
        for path, content in files.items():
            tree[f"components/{name}/{path}"] = content if isinstance(content, str) else dump(content)
    for path, content in argocd_objects(stack, inventory).items():
        tree[path] = content if isinstance(content, str) else dump(content)
    return dict(sorted(tree.items()))


Placement = tuple[str, str, str, str]  # an object's namespace ("" when cluster-scoped), API group, kind and name


@dataclass(frozen=True)
class EnvironmentPlan:
    """What planning one environment's own objects gives (the costly part of a plan: every component's
    objects for it, and their difference from the bases), as plain data a memo can keep."""

    overrides: dict[str, str]  # its overrides Component: path under envs/<env>/overrides/ -> text (empty: no difference)
    placements: dict[str, list[Placement]]  # per base it uses: where each of its objects goes (for its Argo CD objects)
    waivers: list[int]  # indexes in stack.waivers of the waivers its objects match

    def as_data(self) -> dict:
        return {"overrides": self.overrides, "placements": {n: [list(p) for p in ps] for n, ps in self.placements.items()},
                "waivers": self.waivers}

    @classmethod
    def from_data(cls, data: dict) -> EnvironmentPlan:
        return cls(data["overrides"], {n: [tuple(p) for p in ps] for n, ps in data["placements"].items()}, data["waivers"])


def plan_environment(stack: Stack, env: Environment, bases: dict[str, list[Obj]]) -> EnvironmentPlan:
    """Plan one environment's objects against the stack's bases."""
    env_ctx = RenderContext(stack.name, env.components, env.workloads, env, stack.waivers)
    env_bases = component_objects(env_ctx, env_components(env))
    waivers = [i for i, w in enumerate(stack.waivers) if waiver_targets(w, env_bases)]
    names = [WORKLOADS_BASE, *env_components(env)]
    overrides = _overrides(stack, {n: bases[n] for n in names}, env_bases, _own_patches(stack, env))
    return EnvironmentPlan(overrides, {n: _placements(objects) for n, objects in env_bases.items()}, waivers)


def environment_keys(stack: Stack) -> dict[str, str]:
    """Per environment, a digest of everything its EnvironmentPlan reads: the environment itself and the
    stack less its environments (and less where things are written: a line added above moves no
    object), and which components have a base. The model is frozen plain data whose repr spells every
    value, so equal reprs are equal inputs; an environment whose repr would not (an object shown by
    its address) gets no key and is planned every time."""
    shared = replace(stack, environments=(), digest="", written_at=frozen({}),
                     waivers=tuple(replace(w, written_at=("", 1, 1)) for w in stack.waivers))
    common = hashlib.sha256(repr((shared, used_components(stack))).encode())
    keys = {}
    for env in stack.environments:
        text = repr(env)
        if " at 0x" not in text:
            h = common.copy()
            h.update(text.encode())
            keys[env.name] = h.hexdigest()
    return keys


def _placements(objects: list[Obj]) -> list[Placement]:
    placed = []
    for o in objects:
        m = o.get("metadata") or {}
        group = split_api_version(str(o.get("apiVersion", "")))[0]
        placed.append((str(m.get("namespace") or ""), group, str(o.get("kind", "")), str(m.get("name", ""))))
    return placed


def _inventory(env_bases: dict[str, list[Placement]], extra: dict[str, list[Placement]], profile_components: list) -> Inventory:
    """What an environment's render holds, for its Argo CD objects: bases (Applications),
    cluster-scoped objects per base (the AppProject's whitelist) and namespaces (its destinations)."""
    found = Inventory()
    with_profile_objects = {n: placed + extra[n] for n, placed in env_bases.items()}
    for component in profile_components:
        for path, content in component.files.items():
            if isinstance(content, dict) and content.get("kind") not in ("Component", None) and not path.startswith("patches/"):
                with_profile_objects.setdefault(content["metadata"]["labels"][COMPONENT_LABEL], []).extend(_placements([content]))
    for name, placed in with_profile_objects.items():
        found.bases.append(name)
        cluster = found.cluster_objects.setdefault(name, set())
        for namespace, group, kind, object_name in placed:
            if namespace:
                found.namespaces.add(namespace)
            else:
                cluster.add((group, kind, object_name))
    return found


def _extra_annotations(stack: Stack, extras: list[Obj]) -> list[Obj]:
    """Strategic merge patches that put the stack's waivers, and Argo CD's Prune=false and Delete=false
    on CRDs and Namespaces, on the user's own manifests (their files are copied as they are; kfgen never
    rewrites them)."""
    patches = []
    for obj in extras:
        waived = copy.deepcopy(obj)
        sync_options = extra_sync_options(obj)
        if not apply_waivers(stack.waivers, {"extra": [waived]}) and sync_options is None:
            continue
        m = waived["metadata"]
        if sync_options:
            m["annotations"] = dict(sorted({**(m.get("annotations") or {}), SYNC_OPTIONS: sync_options}.items()))
        patches.append({"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                        "metadata": {"annotations": m["annotations"], "name": m["name"], **({"namespace": m["namespace"]} if m.get("namespace") else {})}})
    return patches


def _extra_files(stack: Stack, name: str, env: Environment | None = None) -> list[tuple[int, str, str]]:
    """(index of the extraResources entry, path as referenced, text) of a component's extraResources,
    folders expanded: the stack's, or with `env` the ones only that environment adds (indexes in its list)."""
    component = stack.components.get(name)
    if component is None:
        return []
    refs = list(enumerate(component.extra_resources))
    if env is not None:
        refs = list(enumerate(r for r in env.components[name].extra_resources if r not in component.extra_resources))
    return [(i, source, content.decode("utf-8")) for i, ref in refs
            for source, content in sorted(stack.files.items()) if source == ref or source.startswith(ref.rstrip("/") + "/")]


def _extra_entries(stack: Stack, name: str, env: Environment | None = None) -> list[tuple[int, str, Obj]]:
    """(index of the extraResources entry, file, object) of every object in a component's extraResources."""
    return [(i, source, d) for i, source, text in _extra_files(stack, name, env) for d in load_all(text) if isinstance(d, dict)]


def _env_extras(stack: Stack, env: Environment, name: str, objects: list[Obj]) -> Tree:
    """envs/<env>/extra/<component>/: the extraResources only this environment adds, as a kustomization of
    their own (your files as they are, labelled like the component's base)."""
    files: Tree = {}
    for _, source, text in _extra_files(stack, name, env):
        files[safe_path(source)] = text
    kustomization: Obj = {"apiVersion": KUSTOMIZATION_API, "kind": "Kustomization",
                          "labels": [{"includeSelectors": False, "pairs": common_labels(stack, name)}], "resources": sorted(files)}
    patches = []
    for i, patch in enumerate(_extra_annotations(stack, objects), 1):
        files[f"annotations-{i}.yaml"] = dump(patch)
        patches.append({"path": f"annotations-{i}.yaml"})
    if patches:
        kustomization["patches"] = patches
    if mirrored := mirrored_images(env.components[name].mirror, objects, []):
        kustomization["images"] = mirrored
    files["kustomization.yaml"] = dump(kustomization)
    return {f"envs/{env.name}/extra/{name}/{path}": text for path, text in files.items()}


def _own_patches(stack: Stack, env: Environment) -> list[tuple[str, Patch]]:
    """(component, patch) of the patches only this environment adds, in the stack's order."""
    own = []
    for name in env_components(env):
        written = [(p.path, p.target) for p in stack.components[name].patches]
        own += [(name, p) for p in env.components[name].patches if (p.path, p.target) not in written]
    return own


def _base(stack: Stack, name: str, objects: list[Obj], extras: list[Obj]) -> Tree:
    files: Tree = {}
    resources = []
    for path, o in assign_paths(objects):
        files[path] = dump(o)
        resources.append(path)
    component = stack.components.get(name)
    patches = []
    for _, source, text in _extra_files(stack, name):
        path = f"extra/{safe_path(source)}"
        files[path] = text
        resources.append(path)
    if component is not None:
        for patch in component.patches:
            path = f"patches/{safe_path(patch.path)}"
            files[path] = stack.files[patch.path].decode("utf-8")
            entry: Obj = {"path": path}
            if patch.target:
                entry["target"] = thawed(patch.target)
            patches.append(entry)
    for i, waiver_patch in enumerate(_extra_annotations(stack, extras), 1):
        path = f"patches/waivers-{i}.yaml"
        files[path] = dump(waiver_patch)
        patches.append({"path": path})
    kustomization: Obj = {
        "apiVersion": KUSTOMIZATION_API, "kind": "Kustomization",
        "labels": [{"includeSelectors": False, "pairs": common_labels(stack, name)}],
        "resources": sorted(resources),
    }
    if patches:
        kustomization["patches"] = patches
    if component is not None and (mirrored := mirrored_images(component.mirror, extras, [stack.files[p.path] for p in component.patches])):
        kustomization["images"] = mirrored
    files["kustomization.yaml"] = dump(kustomization)
    return {f"base/{name}/{path}": text for path, text in files.items()}


def mirrored_images(mirror: Mirror, objects: list[Obj], patch_files: list[bytes]) -> list[Obj]:
    """kustomize `images` entries that send the images of your own manifests and patches through the
    mirror (kfgen copies your files as they are; kustomize rewrites their container images)."""
    if not mirror.active:
        return []
    found: set[str] = set()
    for value in [*objects, *(d for raw in patch_files for d in load_all(raw.decode("utf-8")))]:
        found.update(_image_fields(value))
    entries = {}
    for image in sorted(found):
        name, new_name = repository(image), repository(mirror.rewrite(image))
        if new_name != name:
            entries[name] = {"name": name, "newName": new_name}
    return [entries[n] for n in sorted(entries)]


def _image_fields(value: object) -> set[str]:
    """Every `image: <string>` in a manifest or patch (JSON 6902 operations included)."""
    found: set[str] = set()
    if isinstance(value, dict):
        if isinstance(value.get("path"), str) and value["path"].endswith("/image") and isinstance(value.get("value"), str):
            found.add(value["value"])
        for key, child in value.items():
            if key == "image" and isinstance(child, str):
                found.add(child)
            else:
                found |= _image_fields(child)
    elif isinstance(value, list):
        for child in value:
            found |= _image_fields(child)
    return found


def safe_path(ref: str) -> str:
    """A referenced path as a relative path inside the output (no '..', no leading '/')."""
    parts = [("__" if p == ".." else p) for p in PurePosixPath(ref).parts if p not in ("/", ".")]
    return "/".join(parts)


def _overrides(stack: Stack, base: dict[str, list[Obj]], env: dict[str, list[Obj]], own: list[tuple[str, Patch]]) -> Tree:
    """The environment's overrides Component (empty tree when the environment changes nothing): the
    difference of its objects, then the patches it adds (each kept to its component's objects)."""
    overlay = environment_overlay(base, env)
    files: Tree = {}
    patches, resources = [], []
    for ident, ops in overlay.patches.items():
        path = f"patches/{_patch_name(ident)}"
        files[path] = dump(ops)
        patches.append({"path": path, "target": _target(ident)})
    for ident in overlay.deleted:
        path = f"patches/delete-{_patch_name(ident)}"
        api, kind, ns, name = ident
        files[path] = dump({"$patch": "delete", "apiVersion": api, "kind": kind,
                            "metadata": {"name": name, **({"namespace": ns} if ns else {})}})
        patches.append({"path": path})
    for base_name, o in overlay.added:
        o = copy.deepcopy(o)
        o["metadata"].setdefault("labels", {}).update(common_labels(stack, base_name))
        path = f"resources/{object_path(o)}"
        files[path] = dump(o)
        resources.append(path)
    for name, patch in own:
        path = f"{OWN_PATCHES}{name}/{safe_path(patch.path)}"
        files[path] = stack.files[patch.path].decode("utf-8")
        entry: Obj = {"path": path}
        if patch.target:
            target = thawed(patch.target)
            selector = f"{COMPONENT_LABEL}={name}"  # a Component sees every base: keep the patch to its component's objects
            target["labelSelector"] = f"{target['labelSelector']},{selector}" if target.get("labelSelector") else selector
            entry["target"] = target
        patches.append(entry)
    if not files:
        return {}
    component: Obj = {"apiVersion": KUSTOMIZE_COMPONENT_API, "kind": "Component"}
    if resources:
        component["resources"] = sorted(resources)
    if patches:
        component["patches"] = patches
    files["kustomization.yaml"] = dump(component)
    return files


def _patch_name(ident: Identity) -> str:
    _, kind, ns, name = ident
    return f"{kind.lower()}-{ns + '-' if ns else ''}{name}.yaml"


def _target(ident: Identity) -> Obj:
    api, kind, ns, name = ident
    group, version = split_api_version(api)
    target: Obj = {"group": group, "kind": kind, "name": "^" + name.replace(".", "\\.") + "$", "version": version}  # a regular expression
    if ns:
        target["namespace"] = ns
    return target

