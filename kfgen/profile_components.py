"""kustomize Components (kind: Component) from the cloud and accelerator profiles.

A cloud Component carries what every environment on that cloud needs (StorageClasses, the
storage class of kfgen's volumes). An accelerator Component implements one accelerator class on
one cloud: it patches every object labelled for the class (see kfgen.components.pods for the
contract), never the operators. Patches are JSON 6902 with label-selector targets, so they apply
to your own manifests the same way. Which workload kinds are patched, and how, each component
package says (its accelerator_targets and accelerator_additions).
"""

from __future__ import annotations

from dataclasses import dataclass

from kfgen.components import PACKAGES
from kfgen.components.package import AcceleratorTarget
from kfgen.model import AcceleratorClass, CloudProfile, thawed
from kfgen.objects import Obj, meta, obj
from kfgen.vocabulary import (
    ACCELERATOR_LABEL,
    CLUSTER_BASE,
    COMPONENT_LABEL,
    KUSTOMIZE_COMPONENT_API,
    NOTEBOOK_PROFILES_LABEL,
    STORAGE_LABEL,
)

# Your own Deployments, StatefulSets and Jobs opt in with the accelerator label; then each component's workload kinds.
GENERIC_TARGETS = tuple(AcceleratorTarget(group, "v1", kind, ACCELERATOR_LABEL, "/spec/template/spec", "/spec/template/spec/containers/0",
                                          f"{kind.lower()}.yaml")
                        for group, kind in (("apps", "Deployment"), ("apps", "StatefulSet"), ("batch", "Job")))


@dataclass(frozen=True)
class ProfileComponent:
    """One Component: its folder name and files (relative to the folder)."""

    name: str
    files: dict[str, Obj | list | str]


def cloud_component(cloud: CloudProfile) -> ProfileComponent | None:
    """The cloud's Component, or None when the cloud changes nothing."""
    files: dict[str, Obj | list | str] = {}
    resources, patches = [], []
    for sc in cloud.storage_classes:
        body = {k: v for k, v in thawed(sc).items() if k != "name"}
        storage_class = obj("storage.k8s.io/v1", "StorageClass", meta(sc["name"], labels={COMPONENT_LABEL: CLUSTER_BASE}), **body)
        path = f"storageclass-{sc['name']}.yaml"
        files[path] = storage_class
        resources.append(path)
    if cloud.storage_class:
        files["patches/pvc-storage-class.yaml"] = [{"op": "add", "path": "/spec/storageClassName", "value": cloud.storage_class}]
        patches.append({"path": "patches/pvc-storage-class.yaml",
                        "target": {"kind": "PersistentVolumeClaim", "labelSelector": f"{STORAGE_LABEL}=default", "version": "v1"}})
        files["patches/notebook-storage-class.yaml"] = [{"op": "add", "path": "/data/storage-class", "value": cloud.storage_class}]
        patches.append({"path": "patches/notebook-storage-class.yaml",
                        "target": {"kind": "ConfigMap", "labelSelector": f"{NOTEBOOK_PROFILES_LABEL}=true", "version": "v1"}})
    if not files:
        return None
    files["kustomization.yaml"] = _kustomization(resources, patches)
    return ProfileComponent(cloud.name, files)


def accelerator_component(cloud: CloudProfile, klass: AcceleratorClass) -> ProfileComponent:
    """The Component of one accelerator class on one cloud."""
    files: dict[str, Obj | list | str] = {}
    patches = []
    if klass.resource or klass.node_selector or klass.tolerations or klass.instance_types:
        for target in GENERIC_TARGETS + tuple(t for p in PACKAGES.values() for t in p.accelerator_targets()):
            path = f"patches/{target.name}"
            files[path] = pod_ops(klass, target.pod, target.container)
            patches.append({"path": path, "target": {"group": target.group, "kind": target.kind,
                                                     "labelSelector": f"{target.label_selector}={klass.name}", "version": target.version}})
    for package in PACKAGES.values():
        for name, (target, ops) in package.accelerator_additions(klass).items():
            files[f"patches/{name}"] = ops
            patches.append({"path": f"patches/{name}", "target": target})
    files["kustomization.yaml"] = _kustomization([], patches)
    return ProfileComponent(f"{cloud.name}-{klass.slug}", files)


def pod_ops(klass: AcceleratorClass, pod: str, main: str) -> list[Obj]:
    """JSON 6902 operations that put a pod on the class's accelerator."""
    ops: list[Obj] = [{"op": "add", "path": f"{pod}/nodeSelector",
                       "value": {"kubernetes.io/os": "linux", **dict(klass.node_selector)}}]
    if klass.tolerations:
        ops.append({"op": "add", "path": f"{pod}/tolerations", "value": [dict(t) for t in klass.tolerations]})
    if klass.instance_types:
        ops.append({"op": "add", "path": f"{pod}/affinity", "value": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "node.kubernetes.io/instance-type", "operator": "In",
                                                         "values": list(klass.instance_types)}]}]}}}})
    if klass.resource:
        escaped = klass.resource.replace("~", "~0").replace("/", "~1")
        for part in ("limits", "requests"):  # extended resources: requests equal limits
            ops.append({"op": "add", "path": f"{main}/resources/{part}/{escaped}", "value": str(klass.count)})
    return ops


def _kustomization(resources: list[str], patches: list[Obj]) -> Obj:
    out: Obj = {"apiVersion": KUSTOMIZE_COMPONENT_API, "kind": "Component"}
    if resources:
        out["resources"] = sorted(resources)
    if patches:
        out["patches"] = patches
    return out
