"""Accelerator classes: an environment's named choice of profile, count, MIG slice or TPU topology,
resolved against the cloud it runs on and its node-selection strategy. Impossible combinations are
reported with the reason.

Node selection: how pods find the nodes that carry an accelerator.
    managed            the labels the cloud itself puts on its GPU nodes (GKE node pools and node
                       auto-provisioning, EKS managed node groups, AKS node pools)
    karpenter          the labels Karpenter puts on the nodes it provisions (EKS)
    feature-discovery  the labels of the vendor's node feature discovery (NVIDIA's GPU operator), any cloud
Each accelerator profile places itself per strategy (`managed` under the cloud's scheme name).
"""

from __future__ import annotations

import difflib
from math import prod
from typing import Any, Mapping

from kfgen.model import AcceleratorClass, AcceleratorProfile, CloudProfile, frozen

Problems = list[tuple[tuple, str]]
STRATEGIES = ("managed", "karpenter", "feature-discovery")


def offered_strategies(cloud: CloudProfile) -> tuple[str, ...]:
    """The node-selection strategies environments on this cloud can choose."""
    offered = {"gke": ("managed",), "eks": ("managed", "karpenter"), "aks": ("managed",), "onprem": ()}[cloud.scheme]
    return (*offered, "feature-discovery")


def default_strategy(cloud: CloudProfile) -> str:
    """The cloud profile's own choice, else `managed` where the cloud has managed GPU nodes, else feature discovery."""
    return cloud.node_selection or ("feature-discovery" if cloud.scheme == "onprem" else "managed")


def strategy_problem(strategy: str, cloud: CloudProfile) -> str:
    return f"node selection {strategy!r} is not offered on {cloud.name} (it offers: {', '.join(offered_strategies(cloud))})"


def _hardware_key(cloud: CloudProfile) -> str:
    """The placement that says whether a cloud of this scheme has the accelerator at all."""
    return "feature-discovery" if cloud.scheme == "onprem" else cloud.scheme


def placement_key(strategy: str, cloud: CloudProfile) -> str:
    """Where an accelerator profile keeps its placement for a strategy: `managed` is per cloud scheme."""
    return cloud.scheme if strategy == "managed" else strategy


def resolve_class(name: str, spec: dict, cloud: CloudProfile, profiles: dict[str, AcceleratorProfile],
                  strategy: str | None = None) -> tuple[AcceleratorClass | None, Problems]:
    """The class, or None and why not (paths relative to the class's entry). `strategy`: the
    environment's node selection (the class's own `nodeSelection` wins; default: the cloud's)."""
    problems: Problems = []
    profile = profiles.get(spec["type"])
    if profile is None:
        hint = difflib.get_close_matches(spec["type"], list(profiles), n=1, cutoff=0.6)
        known = f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(profiles)})"
        return None, [(("type",), f"no accelerator profile {spec['type']!r}{known}")]
    strategy = spec.get("nodeSelection") or strategy or default_strategy(cloud)
    if strategy not in offered_strategies(cloud):
        return None, [(("nodeSelection",), strategy_problem(strategy, cloud))]
    placement = cloud.placements.get(profile.name)
    if placement is None:
        if _hardware_key(cloud) not in profile.placement:
            return None, [(("type",), _not_offered(profile, cloud))]  # the cloud has no such hardware
        placement = profile.placement.get(placement_key(strategy, cloud))
        if placement is None:
            here = [s for s in offered_strategies(cloud) if placement_key(s, cloud) in profile.placement]
            where = ("nodeSelection",) if "nodeSelection" in spec else ("type",)
            return None, [(where, f"{profile.name} has no {strategy} placement; on {cloud.name} it can be placed by "
                                  f"{', '.join(here)}: set nodeSelection: {here[0]}")]
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
            elif cloud.scheme == "gke" and strategy == "managed" and profile.name not in cloud.placements:
                node_selector["cloud.google.com/gke-gpu-partition-size"] = mig  # GKE's own MIG partitions: single strategy
            else:
                resource = f"nvidia.com/mig-{mig}"  # device plugin's mixed strategy
        if resource is None and "count" in spec:
            problems.append((("count",), f"{profile.name} has no accelerator resource to count"))
        if placement.max_per_node and count > placement.max_per_node:
            problems.append((("count",), f"{count} x {profile.name} per pod, but a {cloud.name} node has at most {placement.max_per_node}"))
    tolerations = list(profile.tolerations)
    managed = profile.placement.get(_hardware_key(cloud))  # the cloud's GPU nodes keep their taints whatever labels select them
    for extra in (*placement.tolerations, *(managed.tolerations if managed else ())):
        if extra not in tolerations:
            tolerations.append(extra)
    variants = profile.image_variants if spec.get("image", "auto") == "auto" else ()
    if problems:
        return None, problems
    return AcceleratorClass(
        name=name, profile=profile, resource=resource, count=count, hosts=hosts,
        node_selector=frozen(dict(sorted(node_selector.items()))), instance_types=placement.instance_types,
        tolerations=frozen([dict(t) for t in tolerations]), image_variants=variants, mig=mig, topology=topology,
        node_selection=None if strategy == default_strategy(cloud) else strategy,
    ), problems


def _not_offered(profile: AcceleratorProfile, cloud: CloudProfile) -> str:
    """Why a cloud cannot offer a profile: where it runs instead."""
    where = [k for k in ("aks", "eks", "gke") if k in profile.placement]
    if "feature-discovery" in profile.placement:
        where.append("onprem")
    kind = "" if cloud.name == cloud.scheme else f", an {cloud.scheme} cluster" if cloud.scheme[0] in "aeio" else f", a {cloud.scheme} cluster"
    return f"{profile.name} is not offered on {cloud.name}{kind} (it runs on {', '.join(where) or 'no cloud'})"


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
