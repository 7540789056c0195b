"""kustomize Components (kind: Component) from the cloud and accelerator profiles.

A cloud Component carries what every environment on that cloud needs (StorageClasses, the
storage class of kfgen's volumes). An accelerator Component implements one accelerator class on
one cloud: it patches every object labelled for the class (see kfgen.workloads for the contract),
never the operators. Patches are JSON 6902 with label-selector targets, so they apply to your
own manifests the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from kfgen.catalog.jupyterhub import PROFILES_LABEL, accelerator_overrides
from kfgen.catalog.objects import Obj, meta, obj
from kfgen.model import AcceleratorClass, CloudProfile, thawed
from kfgen.workloads.pods import ACCELERATOR_LABEL
from kfgen.workloads.training import replica_label

COMPONENT_API = "kustomize.config.k8s.io/v1alpha1"
STORAGE_LABEL = "kfgen.io/storage"
CLUSTER_BASE = "cluster"  # label value of cluster-level objects a cloud Component adds

# Where the pod spec and the accelerated container are, per kind kfgen patches.
POD_PATHS = {
    ("apps", "Deployment"): ("/spec/template/spec", "/spec/template/spec/containers/0"),
    ("apps", "StatefulSet"): ("/spec/template/spec", "/spec/template/spec/containers/0"),
    ("batch", "Job"): ("/spec/template/spec", "/spec/template/spec/containers/0"),
    ("machinelearning.seldon.io", "SeldonDeployment"): ("/spec/predictors/0/componentSpecs/0/spec",
                                                        "/spec/predictors/0/componentSpecs/0/spec/containers/0"),
    ("argoproj.io", "WorkflowTemplate"): ("/spec/templates/0", "/spec/templates/0/container"),
}
VERSIONS = {"apps": "v1", "batch": "v1", "machinelearning.seldon.io": "v1", "argoproj.io": "v1alpha1", "kubeflow.org": "v1"}
TFJOB_ACCELERATED = ("Chief", "Master", "Worker", "Evaluator")


@dataclass(frozen=True)
class Mixin:
    """One Component: its folder name and files (relative to the folder)."""

    name: str
    files: dict[str, Obj | list | str]


def cloud_mixin(cloud: CloudProfile) -> Mixin | None:
    """The cloud's Component, or None when the cloud changes nothing."""
    files: dict[str, Obj | list | str] = {}
    resources, patches = [], []
    for sc in cloud.storage_classes:
        body = {k: v for k, v in thawed(sc).items() if k != "name"}
        storage_class = obj("storage.k8s.io/v1", "StorageClass", meta(sc["name"], labels={"kfgen.io/component": CLUSTER_BASE}), **body)
        path = f"storageclass-{sc['name']}.yaml"
        files[path] = storage_class
        resources.append(path)
    if cloud.storage_class:
        files["patches/pvc-storage-class.yaml"] = [{"op": "add", "path": "/spec/storageClassName", "value": cloud.storage_class}]
        patches.append({"path": "patches/pvc-storage-class.yaml",
                        "target": {"kind": "PersistentVolumeClaim", "labelSelector": f"{STORAGE_LABEL}=default", "version": "v1"}})
        files["patches/notebook-storage-class.yaml"] = [{"op": "add", "path": "/data/storage-class", "value": cloud.storage_class}]
        patches.append({"path": "patches/notebook-storage-class.yaml",
                        "target": {"kind": "ConfigMap", "labelSelector": f"{PROFILES_LABEL}=true", "version": "v1"}})
    if not files:
        return None
    files["kustomization.yaml"] = _kustomization(resources, patches)
    return Mixin(cloud.name, files)


def accelerator_mixin(cloud: CloudProfile, klass: AcceleratorClass) -> Mixin | None:
    """The Component of one accelerator class on one cloud, or None when it changes nothing."""
    files: dict[str, Obj | list | str] = {}
    patches = []
    if klass.resource or klass.node_selector or klass.tolerations or klass.instance_types:
        for (group, kind), (pod, main) in POD_PATHS.items():
            path = f"patches/{kind.lower()}.yaml"
            files[path] = pod_ops(klass, pod, main)
            patches.append({"path": path, "target": {"group": group, "kind": kind, "labelSelector": f"{ACCELERATOR_LABEL}={klass.name}",
                                                     "version": VERSIONS[group]}})
        for replica_type in TFJOB_ACCELERATED:
            pod = f"/spec/tfReplicaSpecs/{replica_type}/template/spec"
            path = f"patches/tfjob-{replica_type.lower()}.yaml"
            files[path] = pod_ops(klass, pod, f"{pod}/containers/0")
            patches.append({"path": path, "target": {"group": "kubeflow.org", "kind": "TFJob",
                                                     "labelSelector": f"{replica_label(replica_type)}={klass.name}", "version": "v1"}})
    files["patches/notebooks.yaml"] = [{"op": "add", "path": f"/data/accelerator.{klass.name}.json", "value": accelerator_overrides(klass)}]
    patches.append({"path": "patches/notebooks.yaml",
                    "target": {"kind": "ConfigMap", "labelSelector": f"{PROFILES_LABEL}=true", "version": "v1"}})
    files["kustomization.yaml"] = _kustomization([], patches)
    return Mixin(f"{cloud.name}-{klass.slug}", files)


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
    out: Obj = {"apiVersion": COMPONENT_API, "kind": "Component"}
    if resources:
        out["resources"] = sorted(resources)
    if patches:
        out["patches"] = patches
    return out
