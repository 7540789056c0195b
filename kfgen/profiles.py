"""Cloud and accelerator profiles: data from overlays/ (and the user's folders) as frozen models."""

from __future__ import annotations

import json
from functools import cache

from kfgen.accelerators import default_strategy, placement_key
from kfgen.errors import Problem
from kfgen.jsonschemas import Schema
from kfgen.load import Document
from kfgen.model import AcceleratorProfile, CloudProfile, Placement, frozen
from kfgen.schema import explain_error
from kfgen.shipped import shipped_dir

_SCHEMA_FILES = {"clouds": "cloud-profile.schema.json", "accelerators": "accelerator-profile.schema.json"}


@cache
def _validator(kind: str) -> Schema:
    return Schema(json.loads((shipped_dir("schemas") / _SCHEMA_FILES[kind]).read_text()))


def profile_problems(doc: Document, kind: str) -> list[Problem]:
    """Schema problems of one profile file, located in that file."""
    problems: list[Problem] = []
    renamed = kind == "accelerators" and isinstance(doc.data, dict) and "onprem" in (doc.data.get("placement") or {})
    for error in _validator(kind).iter_errors(doc.data):
        problems.extend(p for p in explain_error(doc, error) if not (renamed and p.path == "placement.onprem"))
    if renamed:
        problems.append(doc.problem(("placement", "onprem"), "the `onprem` placement is now `feature-discovery` (the labels of NVIDIA's "
                                                             "GPU feature discovery, on any cluster that runs it): rename the key", key=True))
    return problems


def _placement(data: dict) -> Placement:
    return Placement(
        max_per_node=data.get("maxPerNode"),
        node_selector=frozen(dict(data.get("nodeSelector") or {})),
        instance_types=tuple(data.get("instanceTypes") or ()),
        tolerations=frozen(list(data.get("tolerations") or [])),
    )


def accelerator_profile(doc: Document) -> AcceleratorProfile:
    """An AcceleratorProfile from a schema-valid document."""
    d = doc.data
    return AcceleratorProfile(
        name=d["name"],
        description=d.get("description", d["name"]),
        resource=d.get("resource"),
        shared_memory=bool(d.get("sharedMemory", False)),
        tolerations=frozen(list(d.get("tolerations") or [])),
        image_variants=tuple((v["repository"], v["tagSuffix"]) for v in d.get("imageVariants") or []),
        mig_profiles=tuple((d.get("mig") or {}).get("profiles") or ()),
        tpu=frozen(d["tpu"]) if d.get("tpu") else None,
        placement=frozen({scheme: _placement(p) for scheme, p in d["placement"].items()}),
        source=doc.file,
    )


def cloud_profile(doc: Document) -> CloudProfile:
    """A CloudProfile from a schema-valid document."""
    d = doc.data
    identity = d.get("identity") or {}
    return CloudProfile(
        name=d["name"],
        description=d.get("description", d["name"]),
        scheme=d["scheme"],
        storage_class=d.get("storageClass"),
        storage_classes=frozen(list(d.get("storageClasses") or [])),
        identity_annotation=identity.get("serviceAccountAnnotation"),
        identity_pod_labels=frozen(dict(identity.get("podLabels") or {})),
        identity_format=identity.get("format"),
        identity_example=identity.get("example"),
        load_balancer=frozen(dict(d.get("loadBalancer") or {})),
        service_type=d.get("serviceType", "LoadBalancer"),
        artifacts=d.get("artifacts"),
        placements=frozen({name: _placement(p) for name, p in (d.get("accelerators") or {}).items()}),
        source=doc.file,
        node_selection=d.get("nodeSelection"),
    )


def profile_index(docs: dict[str, list[Document]]) -> tuple[dict[str, CloudProfile], dict[str, AcceleratorProfile]]:
    """Profiles by name; a later document (the user's) replaces an earlier one of the same name."""
    clouds = {p.name: p for p in map(cloud_profile, docs.get("clouds", []))}
    accelerators = {p.name: p for p in map(accelerator_profile, docs.get("accelerators", []))}
    return dict(sorted(clouds.items())), dict(sorted(accelerators.items()))


def support_matrix(clouds: dict[str, CloudProfile], accelerators: dict[str, AcceleratorProfile]) -> str:
    """A markdown table: accelerator profiles by cloud (with its default node selection), with what each pod gets."""
    names = list(clouds)
    lines = ["| accelerator | resource | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for accelerator in accelerators.values():
        cells = []
        for cloud in clouds.values():
            placement = cloud.placements.get(accelerator.name) or accelerator.placement.get(placement_key(default_strategy(cloud), cloud))
            if placement is None:
                cells.append("-")
            elif accelerator.tpu:
                cells.append("slices: " + ", ".join(accelerator.tpu["topologies"]))
            else:
                cells.append(f"up to {placement.max_per_node}/pod" if placement.max_per_node else "yes")
        extra = f" (MIG: {', '.join(accelerator.mig_profiles)})" if accelerator.mig_profiles else ""
        lines.append(f"| {accelerator.name}{extra} | {accelerator.resource or 'none'} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
