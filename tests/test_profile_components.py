"""Cloud and accelerator Components: every cloud x accelerator profile in overlays/, rendered with
the real kustomize, checked pod by pod against facts from the reference (not from the profiles)."""

from __future__ import annotations

import pytest
from conftest import ROOT, copy_stack

from kfgen.render import render
from kfgen.yamlio import load_all

pytestmark = pytest.mark.kustomize  # end to end: renders with the real kustomize

CLOUDS = ["gke", "eks", "aks", "kind"]

# (cloud, accelerator) -> node labels the pods must select. Absent: the cloud does not offer it.
SELECTORS = {
    ("gke", "nvidia-t4"): {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"},
    ("gke", "nvidia-l4"): {"cloud.google.com/gke-accelerator": "nvidia-l4"},
    ("gke", "nvidia-a100-40gb"): {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"},
    ("gke", "nvidia-a100-80gb"): {"cloud.google.com/gke-accelerator": "nvidia-a100-80gb"},
    ("gke", "nvidia-h100-80gb"): {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"},
    ("gke", "tpu-v4"): {"cloud.google.com/gke-tpu-accelerator": "tpu-v4-podslice", "cloud.google.com/gke-tpu-topology": "2x2x1"},
    ("gke", "tpu-v5e"): {"cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice", "cloud.google.com/gke-tpu-topology": "2x2"},
    ("gke", "tpu-v5p"): {"cloud.google.com/gke-tpu-accelerator": "tpu-v5p-slice", "cloud.google.com/gke-tpu-topology": "2x2x1"},
    ("gke", "tpu-v6e"): {"cloud.google.com/gke-tpu-accelerator": "tpu-v6e-slice", "cloud.google.com/gke-tpu-topology": "2x2"},
    # EKS managed node groups carry no GPU label: pods select the instance types (INSTANCE_TYPES)
    **{("eks", a): {} for a in ("nvidia-t4", "nvidia-l4", "nvidia-a100-40gb", "nvidia-a100-80gb", "nvidia-h100-80gb",
                                "aws-inferentia2", "aws-trainium")},
    ("aks", "nvidia-t4"): {"kubernetes.azure.com/accelerator": "nvidia"},
    ("aks", "nvidia-a100-40gb"): {"kubernetes.azure.com/accelerator": "nvidia"},
    ("aks", "nvidia-a100-80gb"): {"kubernetes.azure.com/accelerator": "nvidia"},
    ("aks", "nvidia-h100-80gb"): {"kubernetes.azure.com/accelerator": "nvidia"},
    ("kind", "nvidia-t4"): {"nvidia.com/gpu.product": "Tesla-T4"},
    ("kind", "nvidia-l4"): {"nvidia.com/gpu.product": "NVIDIA-L4"},
    ("kind", "nvidia-a100-40gb"): {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"},
    ("kind", "nvidia-a100-80gb"): {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
    ("kind", "nvidia-h100-80gb"): {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
    ("kind", "amd-mi300x"): {"amd.com/gpu.product-name": "AMD_Instinct_MI300X_OAM"},
    **{(cloud, "cpu"): {} for cloud in CLOUDS},
}
# (cloud, accelerator) -> an instance type the pods' node affinity must allow (AWS and Azure instance type pages)
INSTANCE_TYPES = {
    ("eks", "nvidia-t4"): "g4dn.xlarge", ("eks", "nvidia-l4"): "g6.xlarge", ("eks", "nvidia-a100-40gb"): "p4d.24xlarge",
    ("eks", "nvidia-a100-80gb"): "p4de.24xlarge", ("eks", "nvidia-h100-80gb"): "p5.48xlarge", ("eks", "aws-inferentia2"): "inf2.xlarge",
    ("eks", "aws-trainium"): "trn1.32xlarge", ("aks", "nvidia-t4"): "Standard_NC4as_T4_v3", ("aks", "nvidia-a100-40gb"): "Standard_ND96asr_v4",
    ("aks", "nvidia-a100-80gb"): "Standard_NC24ads_A100_v4", ("aks", "nvidia-h100-80gb"): "Standard_NC40ads_H100_v5",
}
RESOURCES = {"nvidia": ("nvidia.com/gpu", "1"), "tpu-v4": ("google.com/tpu", "4"), "tpu-v5e": ("google.com/tpu", "4"),
             "tpu-v5p": ("google.com/tpu", "4"), "tpu-v6e": ("google.com/tpu", "4"), "aws": ("aws.amazon.com/neuron", "1"),
             "amd": ("amd.com/gpu", "1"), "cpu": (None, None)}
TAINT_KEYS = {"nvidia": "nvidia.com/gpu", "tpu": "google.com/tpu", "aws": "aws.amazon.com/neuron", "amd": "amd.com/gpu"}
SINGLE_HOST = {"tpu-v4": "2x2x1", "tpu-v5e": "2x2", "tpu-v5p": "2x2x1", "tpu-v6e": "2x2"}
ACCELERATORS = sorted(p.stem for p in (ROOT / "overlays" / "accelerators").glob("*.yaml"))


def matrix_stack(cloud: str) -> str:
    envs = []
    for accelerator in ACCELERATORS:
        if (cloud, accelerator) not in SELECTORS:
            continue
        topology = f", topology: {SINGLE_HOST[accelerator]}" if accelerator in SINGLE_HOST else ""
        store = ", endpoint: s3.local:9000, credentialsSecret: s3" if cloud == "kind" else ""  # no workload identity on kind
        envs.append(f"    {accelerator}:\n      cloud: {cloud}\n      artifacts: {{bucket: artifacts{store}}}\n"
                    f"      accelerators:\n        acc: {{type: {accelerator}{topology}}}\n")
    return f"""\
apiVersion: kfgen.io/v1alpha1
kind: Stack
metadata: {{name: matrix}}
spec:
  gitops: {{repoURL: https://example.com/r.git}}
  components:
    ambassador: {{hostname: ml.example.com}}
    jupyterhub: {{auth: {{type: github, allowedUsers: [alice]}}}}
  environments:
{''.join(envs)}  workloads:
    training:
      job:
        image: tensorflow/tensorflow:2.18.0
        command: [python, train.py]
        replicas: {{Chief: 1, PS: 1}}
        accelerator: acc
    serving:
      model: {{modelUri: gs://models/m, accelerator: acc}}
    pipelines:
      p:
        image: python:3.11-slim
        steps:
          prep: {{command: [prep]}}
          train: {{command: [train], inputs: [prep], accelerator: acc}}
    notebooks:
      accelerated: {{displayName: Accelerated, image: quay.io/jupyter/scipy-notebook:2024-10-07, accelerator: acc}}
"""


def accelerated_pods(objs: list[dict]) -> list[tuple[str, dict, dict]]:
    """(where, pod spec, main container) of every pod that asked for the accelerator."""
    pods = []
    for o in objs:
        if o["kind"] == "TFJob":
            for rtype, replica in o["spec"]["tfReplicaSpecs"].items():
                spec = replica["template"]["spec"]
                pods.append((f"TFJob/{rtype}", spec, spec["containers"][0]))
        elif o["kind"] == "SeldonDeployment":
            spec = o["spec"]["predictors"][0]["componentSpecs"][0]["spec"]
            pods.append(("SeldonDeployment", spec, spec["containers"][0]))
        elif o["kind"] == "WorkflowTemplate" and o["metadata"]["name"] == "p-train":
            template = o["spec"]["templates"][0]
            pods.append(("WorkflowTemplate", template, template["container"]))
    return pods


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_accelerator_profile_on_every_cloud(tmp_path, cloud):
    stack = tmp_path / "stack.yaml"
    stack.write_text(matrix_stack(cloud))
    result = render(stack, tmp_path / "out")
    assert sorted(result.objects) == sorted(a for a in ACCELERATORS if (cloud, a) in SELECTORS)
    for accelerator in result.objects:
        folder = tmp_path / "out" / "rendered" / accelerator
        objs = [o for f in sorted(folder.rglob("*.yaml")) for o in load_all(f.read_text())]
        family = accelerator.split("-")[0] if not accelerator.startswith("tpu") else accelerator
        resource, count = RESOURCES.get(family) or RESOURCES[accelerator.split("-")[0]]
        taint = TAINT_KEYS.get(accelerator.split("-")[0])
        for where, pod, main in accelerated_pods(objs):
            if where == "TFJob/PS":  # parameter servers stay on CPU
                assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"} and "tolerations" not in pod
                assert not set(main["resources"]["limits"]) - {"cpu", "memory"}
                continue
            assert pod["nodeSelector"] == {"kubernetes.io/os": "linux", **SELECTORS[(cloud, accelerator)]}, (accelerator, where)
            keys = {t["key"] for t in pod.get("tolerations", [])}
            if taint:
                assert {"key": taint, "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"], (accelerator, where)
            if cloud == "aks" and accelerator.startswith("nvidia"):
                assert {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"} in pod["tolerations"]
            if (cloud, accelerator) in INSTANCE_TYPES:
                terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                assert terms[0]["matchExpressions"][0]["key"] == "node.kubernetes.io/instance-type"
                assert INSTANCE_TYPES[(cloud, accelerator)] in terms[0]["matchExpressions"][0]["values"], (accelerator, where)
            else:
                assert "affinity" not in pod, (accelerator, where)
            if resource:
                assert main["resources"]["limits"][resource] == main["resources"]["requests"][resource] == count, (accelerator, where)
            else:
                assert not keys and not set(main["resources"]["limits"]) - {"cpu", "memory"}
        # never the operators
        for o in objs:
            if o["kind"] == "Deployment":
                assert "tolerations" not in o["spec"]["template"]["spec"], o["metadata"]["name"]
        # notebooks: the hub gets the class's KubeSpawner overrides
        hub = next(o for o in objs if o["metadata"]["name"] == "hub-config")
        assert '"node_selector"' in hub["data"]["accelerator.acc.json"]


def test_nvidia_training_gets_the_gpu_image_and_shared_memory(tmp_path):
    stack = tmp_path / "stack.yaml"
    stack.write_text(matrix_stack("gke"))
    render(stack, tmp_path / "out")
    (job,) = load_all((tmp_path / "out/rendered/nvidia-l4/training-operator/ml/tfjob-job.yaml").read_text())
    chief, ps = (job["spec"]["tfReplicaSpecs"][t]["template"]["spec"] for t in ("Chief", "PS"))
    assert chief["containers"][0]["image"] == "tensorflow/tensorflow:2.18.0-gpu"
    assert ps["containers"][0]["image"] == "tensorflow/tensorflow:2.18.0"
    assert {"emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}, "name": "dshm"} in chief["volumes"]
    assert {"mountPath": "/dev/shm", "name": "dshm"} in chief["containers"][0]["volumeMounts"]
    assert all(v["name"] != "dshm" for v in ps["volumes"])


@pytest.mark.parametrize("cloud, expected", [
    ("gke", {"iam.gke.io/gcp-service-account": "ml-workloads@p-12345.iam.gserviceaccount.com"}),
    ("eks", {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/ml"}),
    ("aks", {"azure.workload.identity/client-id": "6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f"}),
])
def test_workload_identity_per_cloud(tmp_path, cloud, expected):
    identity = next(iter(expected.values()))
    stack = tmp_path / "stack.yaml"
    text = matrix_stack(cloud)
    env = next(a for a in ACCELERATORS if (cloud, a) in SELECTORS)
    text = text.replace(f"    {env}:\n      cloud: {cloud}\n", f"    {env}:\n      cloud: {cloud}\n      identity: {{default: '{identity}'}}\n")
    stack.write_text(text)
    render(stack, tmp_path / "out")
    folder = tmp_path / "out" / "rendered" / env
    (sa,) = load_all((folder / "training-operator/ml/serviceaccount-ml-training.yaml").read_text())
    assert sa["metadata"]["annotations"] == expected
    (job,) = load_all((folder / "training-operator/ml/tfjob-job.yaml").read_text())
    labels = job["spec"]["tfReplicaSpecs"]["Chief"]["template"]["metadata"]["labels"]
    assert ("azure.workload.identity/use" in labels) == (cloud == "aks")
    (cm,) = load_all((folder / "argo-workflows/argo/configmap-workflow-controller-configmap.yaml").read_text())
    provider = {"gke": "gcs", "eks": "s3", "aks": "azure"}[cloud]
    assert provider in load_all(cm["data"]["artifactRepository"])[0]


def test_eks_renders_its_gp3_storage_class_and_uses_it(tmp_path):
    stack = tmp_path / "stack.yaml"
    stack.write_text(matrix_stack("eks"))
    render(stack, tmp_path / "out")
    folder = tmp_path / "out/rendered/nvidia-l4"
    (sc,) = load_all((folder / "cluster/cluster/storageclass-gp3.yaml").read_text())
    assert (sc["provisioner"], sc["parameters"]["type"], sc["volumeBindingMode"]) == ("ebs.csi.aws.com", "gp3", "WaitForFirstConsumer")
    (pvc,) = load_all((folder / "jupyterhub/jupyterhub/persistentvolumeclaim-hub-db-dir.yaml").read_text())
    assert pvc["spec"]["storageClassName"] == "gp3"


def test_a_user_profile_works_end_to_end(kfgen, tmp_path):
    stack = copy_stack("example", tmp_path)
    profiles = stack.parent / "site"
    (profiles / "clouds").mkdir(parents=True)
    (profiles / "accelerators").mkdir()
    (profiles / "clouds" / "dc1.yaml").write_text("""\
apiVersion: kfgen.io/v1alpha1
kind: CloudProfile
name: dc1
scheme: onprem
storageClass: local-nvme
artifacts: s3
accelerators:
  nvidia-l4:
    nodeSelector: {dc1.example/gpu: l4}
    tolerations: [{key: dc1.example/gpu-only, operator: Exists, effect: NoSchedule}]
""")
    (profiles / "accelerators" / "fpga-x.yaml").write_text("""\
apiVersion: kfgen.io/v1alpha1
kind: AcceleratorProfile
name: fpga-x
resource: example.com/fpga
tolerations: [{key: example.com/fpga, operator: Exists, effect: NoSchedule}]
placement:
  feature-discovery: {maxPerNode: 2, nodeSelector: {example.com/fpga: "x"}}
""")
    text = stack.read_text().replace("spec:\n  kubernetesVersion", "spec:\n  profiles: [site]\n  kubernetesVersion", 1)
    text = text.replace("    dev:\n      cloud: kind\n", "    dev:\n      cloud: dc1\n      accelerators:\n        gpu: {type: nvidia-l4}\n"
                        "        fpga: {type: fpga-x, count: 2}\n")
    text = text.replace("              accelerator: null        # dev has no GPUs: train on CPU\n", "              accelerator: fpga\n")
    stack.write_text(text)
    run = kfgen("render", stack, "--out", tmp_path / "out")
    assert run.code == 0, run.err
    folder = tmp_path / "out/rendered/dev"
    (job,) = load_all((folder / "training-operator/ml/tfjob-iris.yaml").read_text())
    worker = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert worker["nodeSelector"] == {"example.com/fpga": "x", "kubernetes.io/os": "linux"}
    assert worker["containers"][0]["resources"]["limits"]["example.com/fpga"] == "2"
    (sdep,) = load_all((folder / "seldon-core/ml/seldondeployment-iris.yaml").read_text())
    assert sdep["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu") is None
    (pvc,) = load_all((folder / "jupyterhub/jupyterhub/persistentvolumeclaim-hub-db-dir.yaml").read_text())
    assert pvc["spec"]["storageClassName"] == "local-nvme"
    # the site's own placement of nvidia-l4 replaces GPU feature discovery's labels
    (notebook_patch,) = load_all((tmp_path / "out/components/dc1-gpu-nvidia-l4/patches/tfjob-worker.yaml").read_text())
    assert notebook_patch[0]["value"] == {"dc1.example/gpu": "l4", "kubernetes.io/os": "linux"}


def test_a_broken_user_profile_is_located_in_its_own_file(kfgen, tmp_path):
    stack = copy_stack("example", tmp_path)
    (stack.parent / "site" / "clouds").mkdir(parents=True)
    (stack.parent / "site" / "clouds" / "dc1.yaml").write_text("apiVersion: kfgen.io/v1alpha1\nkind: CloudProfile\nname: dc1\nscheme: bare-metal\n")
    stack.write_text(stack.read_text().replace("spec:\n  kubernetesVersion", "spec:\n  profiles: [site]\n  kubernetesVersion", 1))
    run = kfgen("validate", stack)
    assert (run.code, run.err) == (2, "site/clouds/dc1.yaml:4:9: scheme: 'bare-metal' is not one of: gke, eks, aks, onprem\n")
