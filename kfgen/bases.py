"""Every object of each component for one render context (the stack's base, or one environment)."""

from __future__ import annotations

from kfgen.argocd import annotate_for_argocd
from kfgen.components import PACKAGES
from kfgen.context import RenderContext
from kfgen.model import Waiver
from kfgen.objects import Obj, namespace, network_policy, waive
from kfgen.vocabulary import POD_SECURITY_REASON, WORKLOADS_BASE


def component_objects(ctx: RenderContext, components: list[str]) -> dict[str, list[Obj]]:
    """Objects by base name: the workload namespace, then each listed component (install, if kfgen
    installs it, and the workloads it runs)."""
    ns = ctx.workloads.namespace
    # Nothing reaches a workload pod unless a component lets it in (the gateway its models, a job its replicas).
    out: dict[str, list[Obj]] = {WORKLOADS_BASE: [workload_namespace(ctx, components),
                                                  network_policy("default-deny-ingress", ns, {}, ingress=[])]}
    for name, package in PACKAGES.items():
        if name not in components:
            continue
        component = ctx.component(name)
        out[name] = (package.install(component, ctx) if component.install == "kfgen" else []) + package.workloads(ctx)
    annotate_for_argocd(out)
    apply_waivers(ctx.waivers, out)
    return out


def workload_namespace(ctx: RenderContext, components: list[str]) -> Obj:
    """The workload namespace: Pod Security `restricted`, or `baseline` enforced (still audited and
    warned at `restricted`) where a component's operator adds pods that `restricted` refuses."""
    needs = [need for name, package in PACKAGES.items() if name in components and (need := package.workload_pod_security(ctx))]
    if not needs:
        return namespace(ctx.workloads.namespace)
    assert {need.level for need in needs} == {"baseline"}, needs  # a component never asks for less
    return namespace(ctx.workloads.namespace, enforce="baseline", annotations={POD_SECURITY_REASON: "; ".join(n.reason for n in needs)})


def apply_waivers(waivers: tuple[Waiver, ...], objects: dict[str, list[Obj]]) -> set[Waiver]:
    """Annotate the objects the stack's waivers name; returns the waivers that matched."""
    matched = set()
    for waiver in waivers:
        for o in waiver_targets(waiver, objects):
            waive(o, waiver.policy, waiver.reason)
            matched.add(waiver)
    return matched


def waiver_targets(waiver: Waiver, objects: dict[str, list[Obj]]) -> list[Obj]:
    """The objects a waiver names (kind, name and namespace)."""
    return [o for items in objects.values() for o in items
            if (o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) == (waiver.kind, waiver.name, waiver.namespace)]
