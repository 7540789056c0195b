"""Accelerator classes: an environment's named choice of profile, count, MIG slice or TPU topology,
resolved against the cloud it runs on. Impossible combinations are reported with the reason."""

from __future__ import annotations

import difflib
from math import prod
from typing import Any, Mapping

from kfgen.model import AcceleratorClass, AcceleratorProfile, CloudProfile, frozen

Problems = list[tuple[tuple, str]]


def resolve_class(name: str, spec: dict, cloud: CloudProfile,
                  profiles: dict[str, AcceleratorProfile]) -> tuple[AcceleratorClass | None, Problems]:
    """The class, or None and why not (paths relative to the class's entry)."""
    problems: Problems = []
    profile = profiles.get(spec["type"])
    if profile is None:
        hint = difflib.get_close_matches(spec["type"], list(profiles), n=1, cutoff=0.6)
        known = f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(profiles)})"
        return None, [(("type",), f"no accelerator profile {spec['type']!r}{known}")]
    placement = cloud.placements.get(profile.name) or profile.placement.get(cloud.scheme)
    if placement is None:
        offered = sorted(s for s in profile.placement)
        return None, [(("type",), f"{profile.name} is not offered on {cloud.name} "
                                  f"(it runs on {', '.join(offered) or 'no cloud'} node-label schemes; {cloud.name} uses {cloud.scheme})")]
    count = spec.get("count", 1)
    resource = profile.resource
    node_selector = dict(placement.node_selector)
    hosts, topology, mig = 1, spec.get("topology"), spec.get("mig")
    if profile.tpu:
        count, hosts = _tpu_shape(profile, spec, problems)
        if topology:
            node_selector["cloud.google.com/gke-tpu-topology"] = topology
    else:
        for key in ("topology", "machineType"):
            if key in spec:
                problems.append(((key,), f"{key} applies to TPUs only; {profile.name} is not a TPU"))
        if mig:
            if mig not in profile.mig_profiles:
                options = ", ".join(profile.mig_profiles) or "none (this GPU has no MIG)"
                problems.append((("mig",), f"{mig!r} is not a MIG profile of {profile.name} (it has: {options})"))
            elif cloud.scheme == "gke":
                node_selector["cloud.google.com/gke-gpu-partition-size"] = mig  # GKE: single strategy
            else:
                resource = f"nvidia.com/mig-{mig}"  # device plugin's mixed strategy
        if resource is None and "count" in spec:
            problems.append((("count",), f"{profile.name} has no accelerator resource to count"))
        if placement.max_per_node and count > placement.max_per_node:
            problems.append((("count",), f"{count} x {profile.name} per pod, but a {cloud.name} node has at most {placement.max_per_node}"))
    tolerations = list(profile.tolerations) + [t for t in placement.tolerations if t not in profile.tolerations]
    variants = profile.image_variants if spec.get("image", "auto") == "auto" else ()
    if problems:
        return None, problems
    return AcceleratorClass(
        name=name, profile=profile, resource=resource, count=count, hosts=hosts,
        node_selector=frozen(dict(sorted(node_selector.items()))), instance_types=placement.instance_types,
        tolerations=frozen([dict(t) for t in tolerations]), image_variants=variants, mig=mig, topology=topology,
    ), problems


def _tpu_shape(profile: AcceleratorProfile, spec: dict, problems: Problems) -> tuple[int, int]:
    """(chips per pod, hosts) of a TPU slice."""
    tpu: Mapping[str, Any] = profile.tpu or {}
    topology = spec.get("topology")
    machine = spec.get("machineType", tpu["defaultMachineType"])
    if "count" in spec:
        problems.append((("count",), "TPU pods take all the chips of their host; set topology (and machineType) instead of count"))
    if machine not in tpu["machineTypes"]:
        problems.append((("machineType",), f"{machine!r} is not a {profile.name} machine type (known: {', '.join(tpu['machineTypes'])})"))
        return 1, 1
    per_host = tpu["machineTypes"][machine]
    if not topology:
        problems.append(((), f"{profile.name} needs a topology (one of: {', '.join(tpu['topologies'])})"))
        return per_host, 1
    if topology not in tpu["topologies"]:
        problems.append((("topology",), f"{topology!r} is not a {profile.name} topology (known: {', '.join(tpu['topologies'])})"))
        return per_host, 1
    chips = prod(int(n) for n in topology.split("x"))
    if chips < per_host or chips % per_host:
        problems.append((("topology",), f"topology {topology} has {chips} chips, which {machine} hosts ({per_host} chips each) cannot form"))
        return per_host, 1
    return per_host, chips // per_host


def image_variant(image: str, klass: AcceleratorClass | None) -> str:
    """The accelerator's variant of an image (tensorflow/tensorflow:2.16.1 -> 2.16.1-gpu), else the image."""
    if klass is None or "@" in image:
        return image
    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag:
        return image
    for rule_repository, suffix in klass.image_variants:
        matches = repository == rule_repository or repository.endswith("/" + rule_repository)  # also behind a mirror
        if matches and not tag.endswith(suffix):
            return f"{repository}:{tag}{suffix}"
    return image
