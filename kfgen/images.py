"""Every image a stack deploys in one environment, after mirror rewrites: for air-gapped mirroring.

Images come from the hydrated objects (every `image` field, in pod specs and in the operators'
configuration, your own manifests and patches included) and from what the operators start on
their own: Argo's executor, Seldon's executor, storage initializer and the prepackaged servers
the models use.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from kfgen.catalog.objects import rewrite_image
from kfgen.catalog.versions import SELDON
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
    found: set[str] = set()
    for obj in objects:
        found.update(_images(obj))
    found.update(_seldon_servers(env))
    return sorted(found)


def _images(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "image" and isinstance(child, str):
                yield child
            elif key == "args" and isinstance(child, list):
                yield from (child[i + 1] for i, a in enumerate(child[:-1]) if a == "--executor-image")
            elif key == "env" and isinstance(child, list):
                yield from (e["value"] for e in child if isinstance(e, dict) and e.get("name", "").endswith("_IMAGE_AND_VERSION"))
            elif key == "data" and isinstance(child, dict):
                for text in child.values():
                    yield from _images(_json_or_none(text))
            else:
                yield from _images(child)
    elif isinstance(value, list):
        for child in value:
            yield from _images(child)


def _json_or_none(text: Any) -> Any:
    if not isinstance(text, str) or not text.lstrip().startswith(("{", "[")):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict) and "TENSORFLOW_SERVER" in data:
        return None  # the catalog of prepackaged servers: only those in use count (below)
    return data


def _seldon_servers(env: Environment) -> set[str]:
    seldon = env.components["seldon-core"]
    if not seldon.enabled or seldon.install != "kfgen":
        return set()
    servers = SELDON[seldon.version]["servers"]
    found = set()
    for model in env.workloads.enabled("serving"):
        if model.server == "CUSTOM" or model.image:
            continue
        image, tag = servers[model.server].get(model.protocol) or next(iter(servers[model.server].values()))
        found.add(rewrite_image(f"{image}:{tag}", seldon.image_registry))
    return found
