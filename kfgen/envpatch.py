"""An environment's overlay as the exact difference between its objects and the base's.

kfgen renders every object twice, once for the base and once for the environment (overrides and
environment values applied), and turns each difference into a JSON 6902 patch of leaf-level
operations, so a patch never replaces more than it changes. Objects only the environment has are
added as resources; objects it drops are deleted with a `$patch: delete` patch.
"""

from __future__ import annotations

import marshal
from dataclasses import dataclass, field
from typing import Any

from kfgen.objects import Obj

Identity = tuple[str, str, str, str]  # apiVersion, kind, namespace, name


def identity(obj: Obj) -> Identity:
    m = obj.get("metadata") or {}
    return (obj.get("apiVersion", ""), obj.get("kind", ""), m.get("namespace") or "", m.get("name", ""))


@dataclass
class Overlay:
    """What an environment changes: patches by object, objects to add, objects to delete."""

    patches: dict[Identity, list[Obj]] = field(default_factory=dict)
    added: list[tuple[str, Obj]] = field(default_factory=list)  # (base name, object)
    deleted: list[Identity] = field(default_factory=list)


def environment_overlay(base: dict[str, list[Obj]], env: dict[str, list[Obj]]) -> Overlay:
    """The overlay that turns `base` into `env` (both: base name -> objects)."""
    overlay = Overlay()
    base_index = {identity(o): o for objects in base.values() for o in objects}
    env_index: dict[Identity, tuple[str, Obj]] = {}
    for name, objects in env.items():
        for o in objects:
            env_index[identity(o)] = (name, o)
    for ident in sorted(base_index):
        if ident not in env_index:
            overlay.deleted.append(ident)
            continue
        if _identical(base_index[ident], env_index[ident][1]):
            continue
        ops = json_patch(base_index[ident], env_index[ident][1])
        if ops:
            overlay.patches[ident] = ops
    for ident in sorted(env_index):
        if ident not in base_index:
            overlay.added.append(env_index[ident])
    return overlay


def _identical(a: Obj, b: Obj) -> bool:
    """Equal with the same types and key order (json_patch would find nothing): most objects of an
    environment are its base's, and comparing their serializations is 20x cheaper than walking them.
    `a` is a base object, the same for every environment: its serialization is kept."""
    if a != b:
        return False
    try:
        known = _SERIALIZED.get(id(a))
        if known is None or known[0] is not a:
            if len(_SERIALIZED) > 10_000:
                _SERIALIZED.clear()
            known = _SERIALIZED[id(a)] = (a, marshal.dumps(a, 2))
        return known[1] == marshal.dumps(b, 2)  # 1 == 1.0 == True to `==`, not to marshal
    except ValueError:  # a type marshal does not know: let json_patch decide
        return False


_SERIALIZED: dict[int, tuple[Obj, bytes]] = {}  # id -> (base object, its serialization)


def _escape(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def json_patch(old: Any, new: Any, path: str = "") -> list[Obj]:
    """Leaf-level JSON 6902 operations from `old` to `new`, in a stable order."""
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[Obj] = []
        for key in sorted(set(old) | set(new), key=str):
            child = f"{path}/{_escape(key)}"
            if key not in new:
                ops.append({"op": "remove", "path": child})
            elif key not in old:
                ops.append({"op": "add", "path": child, "value": new[key]})
            else:
                ops.extend(json_patch(old[key], new[key], child))
        return ops
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        ops = []
        for i, (a, b) in enumerate(zip(old, new)):
            ops.extend(json_patch(a, b, f"{path}/{i}"))
        return ops
    if old == new and type(old) is type(new):
        return []
    return [{"op": "replace", "path": path, "value": new}]
