"""Node selection: each cloud's default placement lands on that cloud's plain managed GPU nodes.

The nodes below are written from the clouds' documentation (the source is next to each), never from
kfgen's profiles; the pods are the planned TFJob replica (the accelerator Component's patches
applied with the jsonpatch library, an independent RFC 6902 implementation) and the notebook
profile's KubeSpawner overrides. `lands` is the scheduler's node filter as the Kubernetes docs
define it: nodeSelector, required node affinity, and NoSchedule/NoExecute taints tolerated.
"""

from __future__ import annotations

import json

import jsonpatch
import pytest
from in_memory import plan_of

from kfgen.errors import InputError
from kfgen.yamlio import load_all

# GKE Standard, a node of a node pool created with `--accelerator type=nvidia-tesla-t4,count=1`:
# GKE labels GPU nodes cloud.google.com/gke-accelerator=<accelerator type> and taints them
# nvidia.com/gpu=present:NoSchedule when the cluster also has nodes without GPUs
# (https://cloud.google.com/kubernetes-engine/docs/how-to/gpus); node auto-provisioning creates such
# pools from the same selector (https://cloud.google.com/kubernetes-engine/docs/how-to/node-auto-provisioning).
GKE_T4_NODE = ({"cloud.google.com/gke-accelerator": "nvidia-tesla-t4", "cloud.google.com/gke-nodepool": "gpu",
                "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "n1-standard-8"},
               [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}])
# EKS, a managed node group of g6.xlarge (one NVIDIA L4: https://aws.amazon.com/ec2/instance-types/g6/) on the
# EKS-optimized accelerated AMI: EKS adds only eks.amazonaws.com/ labels (nodegroup, capacityType:
# https://docs.aws.amazon.com/eks/latest/userguide/managed-node-groups.html), the kubelet the well-known
# node.kubernetes.io/instance-type (https://kubernetes.io/docs/reference/labels-annotations-taints/);
# no GPU label and no taint unless the node group is given one.
EKS_L4_NODE = ({"eks.amazonaws.com/capacityType": "ON_DEMAND", "eks.amazonaws.com/nodegroup": "gpu",
                "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "g6.xlarge"}, [])
# EKS with Karpenter: a node Karpenter launched for the same instance type carries its well-known labels
# (https://karpenter.sh/docs/reference/instance-types/: karpenter.k8s.aws/instance-gpu-name: l4).
EKS_KARPENTER_L4_NODE = ({"karpenter.k8s.aws/instance-gpu-count": "1", "karpenter.k8s.aws/instance-gpu-manufacturer": "nvidia",
                          "karpenter.k8s.aws/instance-gpu-name": "l4", "karpenter.sh/nodepool": "gpu", "kubernetes.io/os": "linux",
                          "node.kubernetes.io/instance-type": "g6.xlarge"},
                         [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}])
# AKS, a user node pool of Standard_NC4as_T4_v3: AKS sets kubernetes.azure.com/accelerator=nvidia and
# node.kubernetes.io/instance-type=<VM size> (https://learn.microsoft.com/azure/aks/use-labels); the GPU
# guide taints the pool sku=gpu:NoSchedule (https://learn.microsoft.com/azure/aks/use-nvidia-gpu).
AKS_T4_NODE = ({"kubernetes.azure.com/accelerator": "nvidia", "kubernetes.azure.com/agentpool": "gpu",
                "kubernetes.azure.com/mode": "user", "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "Standard_NC4as_T4_v3"},
               [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}])
# Any cluster running NVIDIA's GPU operator: GPU feature discovery labels nvidia.com/gpu.product
# (https://github.com/NVIDIA/k8s-device-plugin/blob/main/docs/gpu-feature-discovery/README.md); the taint is the site's.
GFD_T4_NODE = ({"kubernetes.io/os": "linux", "nvidia.com/gpu.count": "1", "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": "Tesla-T4"},
               [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}])


def stack(cloud: str, gpu: str, env_extra: str = "", class_extra: str = "") -> str:
    store = "{bucket: artifacts, endpoint: s3.local:9000, credentialsSecret: s3}" if cloud == "kind" else "{bucket: artifacts}"
    return f"""\
apiVersion: kfgen.io/v1alpha1
kind: Stack
metadata: {{name: placement}}
spec:
  gitops: {{repoURL: https://example.com/r.git}}
  components:
    ambassador: {{hostname: ml.example.com}}
    jupyterhub: {{auth: {{type: github, allowedUsers: [alice]}}}}
  environments:
    prod:
      cloud: {cloud}
      artifacts: {store}{env_extra}
      accelerators:
        gpu: {{type: {gpu}{class_extra}}}
  workloads:
    training:
      job: {{image: tensorflow/tensorflow:2.18.0, command: [python, train.py], replicas: {{Worker: 2}}, accelerator: gpu}}
    notebooks:
      gpu: {{displayName: GPU, image: quay.io/jupyter/tensorflow-notebook:cuda-2024-10-07, accelerator: gpu}}
"""


def worker_pod(text: str) -> dict:
    """The TFJob Worker's pod spec with the environment's accelerator Component applied."""
    _, tree = plan_of(text)
    (job,) = load_all(tree["base/training-operator/ml/tfjob-job.yaml"])
    component = _gpu_component(tree)
    labels = job["metadata"]["labels"]
    for patch in load_all(tree[f"{component}/kustomization.yaml"])[0]["patches"]:
        target = patch["target"]
        key, _, value = target.get("labelSelector", "").partition("=")
        if target["kind"] == "TFJob" and labels.get(key) == value:
            job = jsonpatch.apply_patch(job, load_all(tree[f"{component}/{patch['path']}"])[0])
    return job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]


def notebook_pod(text: str) -> dict:
    """The notebook pod's placement as KubeSpawner builds it from the class's overrides."""
    _, tree = plan_of(text)
    component = _gpu_component(tree)
    (ops,) = load_all(tree[f"{component}/patches/notebooks.yaml"])
    override = json.loads(ops[0]["value"])
    pod = {"nodeSelector": override["node_selector"], "tolerations": override.get("tolerations", [])}
    if "node_affinity_required" in override:
        pod["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": override["node_affinity_required"]}}}
    return pod


def _gpu_component(tree: dict) -> str:
    """The folder of the one accelerator Component (the class is named `gpu`)."""
    (folder,) = [p.rsplit("/", 1)[0] for p in tree if p.startswith("components/") and "-gpu-" in p and p.endswith("/kustomization.yaml")]
    return folder


def lands(pod: dict, node: tuple[dict, list]) -> bool:
    """Whether the scheduler's node filter admits `pod` on a node with these labels and taints
    (https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/, .../taint-and-toleration/)."""
    labels, taints = node
    if any(labels.get(k) != v for k, v in (pod.get("nodeSelector") or {}).items()):
        return False
    terms = pod.get("affinity", {}).get("nodeAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution", {}).get("nodeSelectorTerms")
    if terms is not None and not any(all(_matches(e, labels) for e in t.get("matchExpressions", [])) for t in terms):
        return False
    return all(any(_tolerates(t, taint) for t in pod.get("tolerations") or []) for taint in taints
               if taint["effect"] in ("NoSchedule", "NoExecute"))


def _matches(expression: dict, labels: dict) -> bool:
    key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    raise AssertionError(f"operator {operator} not modelled")


def _tolerates(toleration: dict, taint: dict) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint["effect"]:
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint["key"]
    return toleration.get("key") == taint["key"] and toleration.get("value", "") == taint.get("value", "")


@pytest.mark.parametrize("cloud, gpu, node", [
    ("gke", "nvidia-t4", GKE_T4_NODE),
    ("eks", "nvidia-l4", EKS_L4_NODE),
    ("aks", "nvidia-t4", AKS_T4_NODE),
    ("kind", "nvidia-t4", GFD_T4_NODE),
])
def test_default_placement_lands_on_the_clouds_plain_gpu_nodes(cloud, gpu, node):
    text = stack(cloud, gpu)
    assert lands(worker_pod(text), node)
    assert lands(notebook_pod(text), node)


def test_the_karpenter_labels_never_land_on_a_managed_node_group():
    karpenter = stack("eks", "nvidia-l4", env_extra="\n      nodeSelection: karpenter")
    assert lands(worker_pod(karpenter), EKS_KARPENTER_L4_NODE)
    assert not lands(worker_pod(karpenter), EKS_L4_NODE)  # the bug of issue 17: Pending forever without Karpenter
    assert lands(worker_pod(stack("eks", "nvidia-l4")), EKS_KARPENTER_L4_NODE)  # the default lands on both


def test_a_cpu_pod_never_lands_on_another_accelerator():
    assert not lands(worker_pod(stack("gke", "nvidia-l4")), GKE_T4_NODE)
    assert not lands(worker_pod(stack("eks", "nvidia-t4")), EKS_L4_NODE)  # g4dn is T4, not L4


@pytest.mark.parametrize("cloud, node", [("gke", GKE_T4_NODE), ("aks", AKS_T4_NODE)])
def test_feature_discovery_on_a_cloud_follows_the_gpu_operators_labels(cloud, node):
    text = stack(cloud, "nvidia-t4", env_extra="\n      nodeSelection: feature-discovery")
    operator_node = ({**node[0], **GFD_T4_NODE[0]}, node[1])
    assert worker_pod(text)["nodeSelector"] == {"kubernetes.io/os": "linux", "nvidia.com/gpu.product": "Tesla-T4"}
    assert lands(worker_pod(text), operator_node)


def test_a_class_chooses_its_own_node_selection_and_names_its_component():
    text = stack("eks", "nvidia-l4", class_extra=", nodeSelection: karpenter")
    _, tree = plan_of(text)
    assert "components/eks-gpu-nvidia-l4-karpenter/kustomization.yaml" in tree
    assert lands(worker_pod(text), EKS_KARPENTER_L4_NODE)


@pytest.mark.parametrize("env_extra, class_extra, message", [
    ("\n      nodeSelection: karpenter", "",
     "stack.yaml:13:22: spec.environments.prod.nodeSelection: node selection 'karpenter' is not offered on gke "
     "(it offers: managed, feature-discovery)"),
    ("", ", nodeSelection: karpenter",
     "stack.yaml:14:47: spec.environments.prod.accelerators.gpu.nodeSelection: node selection 'karpenter' is not offered on gke "
     "(it offers: managed, feature-discovery)"),
])
def test_a_strategy_the_cloud_does_not_offer_is_refused(env_extra, class_extra, message):
    with pytest.raises(InputError) as info:
        plan_of(stack("gke", "nvidia-t4", env_extra, class_extra))
    assert info.value.lines() == [message]


def test_a_tpu_has_no_feature_discovery_placement():
    text = stack("gke", "tpu-v5e", env_extra="\n      nodeSelection: feature-discovery", class_extra=", topology: 2x2")
    with pytest.raises(InputError) as info:
        plan_of(text)
    assert info.value.lines() == [
        "stack.yaml:15:21: spec.environments.prod.accelerators.gpu.type: tpu-v5e has no feature-discovery placement; on gke it "
        "can be placed by managed: set nodeSelection: managed"]
