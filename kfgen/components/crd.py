"""Building CustomResourceDefinitions: each component package writes its CRDs with these.

Structural schemas cover the fields kfgen renders; below pod templates (and other places where
users add their own fields through patches) unknown fields are preserved, so the API server's
pruning never drops what a user's patch adds.
"""

from __future__ import annotations

from typing import Any

from kfgen.objects import meta

Schema = dict[str, Any]

PRESERVE: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}


def props(properties: dict[str, Schema], required: list[str] | None = None, preserve: bool = False) -> Schema:
    out: Schema = {"type": "object", "properties": dict(sorted(properties.items()))}
    if required:
        out["required"] = required
    if preserve:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def string_map() -> Schema:
    return {"type": "object", "additionalProperties": STRING}


def crd(group: str, kind: str, plural: str, spec: Schema, *, version: str = "v1", scope: str = "Namespaced",
        short_names: list[str] | None = None, categories: list[str] | None = None, status: bool = True,
        status_subresource: bool | None = None, scale: dict | None = None, columns: list[dict] | None = None,
        required: list[str] | None = None, also_served: tuple[str, ...] = (), top_level: dict[str, Schema] | None = None) -> dict:
    """A CRD with a structural schema, stored as `version` (and served, with the same schema and no
    conversion, as each of `also_served`, as upstream's CRD does); `status` puts a status field in the schema, and
    (unless `status_subresource` says otherwise, as upstream's CRD does) the status subresource; `top_level`: more
    fields at the root, beside spec and status."""
    root = props({"apiVersion": STRING, "kind": STRING, "metadata": {"type": "object"}, "spec": spec,
                  **({"status": PRESERVE} if status else {}), **(top_level or {})}, required=required or ["spec"])
    names: dict[str, Any] = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()}
    if short_names:
        names["shortNames"] = short_names
    if categories:
        names["categories"] = categories
    ver: dict[str, Any] = {"name": version, "schema": {"openAPIV3Schema": root}, "served": True, "storage": True}
    if columns:
        ver["additionalPrinterColumns"] = columns
    subresources: dict[str, Any] = {}
    if status if status_subresource is None else status_subresource:
        subresources["status"] = {}
    if scale:
        subresources["scale"] = scale
    if subresources:
        ver["subresources"] = subresources
    versions = [ver] + [{**ver, "name": name, "storage": False} for name in also_served]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": meta(f"{plural}.{group}"),
        "spec": {"group": group, "names": names, "scope": scope, "versions": versions},
    }


AGE = {"jsonPath": ".metadata.creationTimestamp", "name": "Age", "type": "date"}
