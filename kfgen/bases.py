"""Every object of each component for one view (the stack's base, or one environment)."""

from __future__ import annotations

from typing import Callable

from kfgen.argocd import annotate_for_argocd
from kfgen.catalog import argo, gateway, jupyterhub, seldon, training
from kfgen.catalog.objects import Obj, namespace, waive
from kfgen.catalog.view import View
from kfgen.model import COMPONENTS, Component, Waiver
from kfgen.workloads.pipelines import pipeline_objects
from kfgen.workloads.serving import serving_objects
from kfgen.workloads.training import training_objects

WORKLOADS_BASE = "workloads"  # the workload namespace, shared by every workload kind

_INSTALLERS: dict[str, Callable[[Component, View], list[Obj]]] = {
    "argo-workflows": argo.install,
    "training-operator": training.install,
    "seldon-core": seldon.install,
    "ambassador": gateway.install,
    "jupyterhub": jupyterhub.install,
}
_WORKLOADS: dict[str, Callable[[View], list[Obj]]] = {
    "argo-workflows": pipeline_objects,
    "training-operator": training_objects,
    "seldon-core": serving_objects,
    "jupyterhub": lambda view: jupyterhub.notebook_objects(view.component("jupyterhub"), view),
}


def component_objects(view: View, components: list[str]) -> dict[str, list[Obj]]:
    """Objects by base name: the workload namespace, then each listed component (install, if kfgen
    installs it, and the workloads it runs)."""
    out: dict[str, list[Obj]] = {WORKLOADS_BASE: [namespace(view.workloads.namespace)]}
    for name in COMPONENTS:
        if name not in components:
            continue
        component = view.component(name)
        objects = _INSTALLERS[name](component, view) if component.install == "kfgen" else []
        if name in _WORKLOADS:
            objects += _WORKLOADS[name](view)
        out[name] = objects
    annotate_for_argocd(out)
    apply_waivers(view.waivers, out)
    return out


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
