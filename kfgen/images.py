"""Every image a stack deploys in one environment, after mirror rewrites: for air-gapped mirroring.

Images come from the hydrated objects (every `image` field, in pod specs and in the operators'
configuration, your own manifests and patches included) and from what the operators start on
their own, which each component package names (Seldon: the prepackaged servers the models use).
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from kfgen.components import PACKAGES
from kfgen.context import RenderContext
from kfgen.model import Environment


def unpinned(image: str) -> str | None:
    """How an image reference fails to pin a version: "untagged", "latest", or None when it pins one."""
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "untagged"
    return "latest" if last.rsplit(":", 1)[1] == "latest" else None


def environment_images(env: Environment, objects: list[dict]) -> list[str]:
    """Sorted, unique image references of one environment, from its hydrated objects."""
    catalogs = {key for p in PACKAGES.values() for key in p.image_catalogs()}
    found: set[str] = set()
    for obj in objects:
        found.update(_images(obj, catalogs))
    ctx = RenderContext("", env.components, env.workloads, env)
    for name, package in PACKAGES.items():
        if env.components[name].installed:
            found.update(package.runtime_images(env.components[name], ctx))
    return sorted(found)


def _images(value: Any, catalogs: set[str]) -> Iterator[str]:
    """Image references in an object; ConfigMap keys in `catalogs` list images an operator may start,
    which count only when in use (the packages' runtime_images)."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "image" and isinstance(child, str):
                yield child
            elif key == "args" and isinstance(child, list):
                yield from (child[i + 1] for i, a in enumerate(child[:-1]) if a == "--executor-image")
            elif key == "env" and isinstance(child, list):
                yield from (e["value"] for e in child if isinstance(e, dict) and e.get("name", "").endswith("_IMAGE_AND_VERSION"))
            elif key == "data" and isinstance(child, dict):
                for name, text in child.items():
                    if name not in catalogs:
                        yield from _images(_json_or_none(text), catalogs)
            else:
                yield from _images(child, catalogs)
    elif isinstance(value, list):
        for child in value:
            yield from _images(child, catalogs)


def _json_or_none(text: Any) -> Any:
    if not isinstance(text, str) or not text.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
