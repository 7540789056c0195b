"""Where each object goes in the output tree: deterministic paths from object identity."""

from __future__ import annotations

from kfgen.objects import Obj


def split_api_version(api_version: str) -> tuple[str, str]:
    """`apps/v1` -> ('apps', 'v1'); `v1` -> ('', 'v1')."""
    group, _, version = api_version.rpartition("/")
    return group, version


def object_path(obj: Obj, with_group: bool = False) -> str:
    """`<namespace>/<kind>-<name>.yaml`, or `cluster/...` for objects without a namespace."""
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind", "object")).lower()
    if with_group:
        group = split_api_version(str(obj.get("apiVersion", "")))[0] or "core"
        kind = f"{kind}.{group}"
    return f"{meta.get('namespace') or 'cluster'}/{kind}-{meta.get('name', 'unnamed')}.yaml"


def assign_paths(objects: list[Obj]) -> list[tuple[str, Obj]]:
    """(path, object) for each object; two kinds of the same name from different API groups get
    the group in their file name, so no object overwrites another."""
    plain = [object_path(o) for o in objects]
    clashes = {p for p in plain if plain.count(p) > 1}
    return [(object_path(o, with_group=p in clashes), o) for p, o in zip(plain, objects)]
