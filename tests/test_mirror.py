"""One registry mirror for every image: spec.images (mirror and per-registry rewrites), and how a
component's imageRegistry combines with it. Plan-level: the planned tree, no kustomize (the
end-to-end `kfgen images` test is in test_cli.py)."""

from __future__ import annotations

import json

import pytest
from in_memory import plan_of

from kfgen.errors import InputError
from kfgen.mirror import Mirror
from kfgen.yamlio import load_all

IMAGES = """\
  images:
    mirror: registry.acme.example/mirror
    rewrites:
      docker.io: registry.acme.example/dockerhub
      quay.io: registry.acme.example/quay
      ghcr.io/acme: registry.acme.example/acme
"""


def stack(images: str = IMAGES, components: str = "", overrides: str = "") -> str:
    return f"""\
apiVersion: kfgen.io/v1alpha1
kind: Stack
metadata: {{name: mirrored}}
spec:
  gitops: {{repoURL: https://example.com/r.git}}
{images}  components:
    ambassador: {{hostname: ml.example.com}}
    jupyterhub: {{auth: {{type: github, allowedUsers: [alice]}}}}
{components}  environments:
    prod:
      cloud: gke
      artifacts: {{bucket: artifacts}}
      accelerators: {{gpu: {{type: nvidia-l4}}}}
{overrides}  workloads:
    training:
      job: {{image: tensorflow/tensorflow:2.18.0, command: [python, train.py], replicas: {{Worker: 1}}, accelerator: gpu}}
    serving:
      model: {{modelUri: gs://models/m}}
      custom: {{server: CUSTOM, image: ghcr.io/acme/scorer:1.2.0}}
    pipelines:
      p:
        image: python:3.11-slim
        steps: {{prep: {{command: [prep]}}, train: {{command: [train], image: nvcr.io/nvidia/tensorflow:24.01-tf2-py3, inputs: [prep]}}}}
    notebooks:
      cpu: {{displayName: CPU, image: quay.io/jupyter/scipy-notebook:2024-10-07}}
"""


@pytest.mark.parametrize("image, expected", [
    ("python:3.11-slim", "registry.acme.example/dockerhub/library/python:3.11-slim"),  # Docker Hub's short names are docker.io/library/...
    ("tensorflow/tensorflow:2.18.0", "registry.acme.example/dockerhub/tensorflow/tensorflow:2.18.0"),
    ("docker.io/seldonio/seldon-core-executor:1.17.1", "registry.acme.example/dockerhub/seldonio/seldon-core-executor:1.17.1"),
    ("quay.io/argoproj/argoexec:v3.6.19", "registry.acme.example/quay/argoproj/argoexec:v3.6.19"),
    ("ghcr.io/acme/scorer:1.2.0", "registry.acme.example/acme/scorer:1.2.0"),  # a longer prefix than a registry
    ("ghcr.io/other/tool:1.0", "registry.acme.example/mirror/ghcr.io/other/tool:1.0"),  # the mirror keeps the registry host
    ("registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.4.4",
     "registry.acme.example/mirror/registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.4.4"),
    ("localhost:5000/x@sha256:" + "a" * 64, "registry.acme.example/mirror/localhost:5000/x@sha256:" + "a" * 64),
    ("registry.acme.example/quay/argoproj/argoexec:v3.6.19", "registry.acme.example/quay/argoproj/argoexec:v3.6.19"),  # already mirrored
])
def test_the_stacks_rules(image, expected):
    mirror = Mirror.of_stack({"mirror": "registry.acme.example/mirror",
                              "rewrites": {"docker.io": "registry.acme.example/dockerhub", "quay.io": "registry.acme.example/quay",
                                           "ghcr.io/acme": "registry.acme.example/acme"}})
    assert mirror.rewrite(image) == expected


def test_a_components_image_registry_wins_for_its_own_images():
    mirror = Mirror.of_stack({"mirror": "registry.acme.example/mirror"}).for_component("registry.acme.example/argo")
    assert mirror.rewrite("quay.io/argoproj/argoexec:v3.6.19") == "registry.acme.example/argo/argoproj/argoexec:v3.6.19"


def images_of(tree: dict) -> set[str]:
    """Every image the planned tree names (pod specs, the hub's profiles, Seldon's and Argo's configuration)."""
    found: set[str] = set()

    def walk(value):
        if isinstance(value, dict):
            for key, child in value.items():
                if key == "image" and isinstance(child, str):
                    found.add(child)
                elif key == "value" and isinstance(child, str) and "/" in child and ":" in child and " " not in child:
                    found.add(child)  # EXECUTOR_CONTAINER_IMAGE_AND_VERSION
                elif key == "args" and isinstance(child, list) and "--executor-image" in child:
                    found.add(child[child.index("--executor-image") + 1])
                elif key == "data" and isinstance(child, dict):
                    for text in child.values():
                        if text.lstrip().startswith(("{", "[")):
                            walk(json.loads(text))
                else:
                    walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    for path, text in tree.items():
        if path.endswith(".yaml") and not path.endswith("kustomization.yaml"):
            for doc in load_all(text):
                walk(doc)
    return found


def test_every_image_of_a_mirrored_stack_is_on_the_mirror():
    _, tree = plan_of(stack())
    images = {i for i in images_of(tree) if "@" in i or ":" in i.rsplit("/", 1)[-1]}
    assert images and all(i.startswith("registry.acme.example/") for i in images), sorted(images)
    for expected in ("registry.acme.example/dockerhub/tensorflow/tensorflow:2.18.0",  # training (the -gpu variant is the overlay's)
                     "registry.acme.example/acme/scorer:1.2.0",  # a CUSTOM model server
                     "registry.acme.example/dockerhub/library/python:3.11-slim",  # pipeline steps
                     "registry.acme.example/mirror/nvcr.io/nvidia/tensorflow:24.01-tf2-py3",
                     "registry.acme.example/quay/jupyter/scipy-notebook:2024-10-07",  # notebooks, in the hub's profiles
                     "registry.acme.example/dockerhub/seldonio/seldon-core-executor:1.17.1",  # what the operators start
                     "registry.acme.example/dockerhub/seldonio/rclone-storage-initializer:1.17.1",
                     "registry.acme.example/quay/argoproj/argoexec:v3.6.19",
                     "registry.acme.example/mirror/registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.4.4"):
        assert expected in images
    servers = json.loads(load_all(tree["base/seldon-core/seldon-system/configmap-seldon-config.yaml"])[0]["data"]["predictor_servers"])
    assert servers["TENSORFLOW_SERVER"]["protocols"]["tensorflow"]["image"] == "registry.acme.example/dockerhub/tensorflow/serving"


def test_an_environments_image_override_goes_through_the_mirror_too():
    overrides = "      overrides: {workloads: {training: {job: {image: 'ghcr.io/globex/tensorflow-tpu:2.18.0'}}}}\n"
    stack_, _ = plan_of(stack(overrides=overrides))
    (job,) = stack_.environments[0].workloads.training
    assert job.image == "registry.acme.example/mirror/ghcr.io/globex/tensorflow-tpu:2.18.0"


def test_every_version_of_a_traffic_split_goes_through_the_mirror():
    text = stack().replace("      custom: {server: CUSTOM, image: ghcr.io/acme/scorer:1.2.0}\n",
                           "      custom:\n        server: CUSTOM\n        image: ghcr.io/acme/scorer:1.2.0\n"
                           "        versions: {stable: {traffic: 90}, canary: {traffic: 10, image: 'ghcr.io/acme/scorer:1.3.0'}}\n")
    stack_, _ = plan_of(text)
    model = next(m for m in stack_.workloads.serving if m.name == "custom")
    assert {v.name: v.image for v in model.versions} == {"stable": "registry.acme.example/acme/scorer:1.2.0",
                                                          "canary": "registry.acme.example/acme/scorer:1.3.0"}


def test_a_components_image_registry_and_its_per_environment_override():
    components = "    argo-workflows: {imageRegistry: registry.acme.example/argo}\n"
    overrides = "      overrides: {components: {argo-workflows: {imageRegistry: null}}}\n"
    stack_, tree = plan_of(stack(components=components, overrides=overrides))
    (controller,) = load_all(tree["base/argo-workflows/argo/deployment-workflow-controller.yaml"])
    assert controller["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.acme.example/argo/argoproj/workflow-controller:v3.6.19"
    patch = load_all(tree["envs/prod/overrides/patches/deployment-argo-workflow-controller.yaml"])[0]
    assert {"op": "replace", "path": "/spec/template/spec/containers/0/image",
            "value": "registry.acme.example/quay/argoproj/workflow-controller:v3.6.19"} in patch  # unset: the stack's rules again


def test_your_own_manifests_and_patches_go_through_the_mirror_with_kustomize_images():
    components = "    training-operator: {extraResources: [extra.yaml], patches: [{path: sidecar.yaml}]}\n"
    files = {
        "extra.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: exporter, namespace: kubeflow}\nspec:\n  template:\n"
                      "    spec:\n      containers: [{name: x, image: 'ghcr.io/acme/exporter:2.0.1'}, {name: y, image: 'busybox:1.36'}]\n",
        "sidecar.yaml": "- {op: add, path: /spec/template/spec/containers/1/image, value: 'quay.io/prometheus/node-exporter:v1.8.2'}\n",
    }
    _, tree = plan_of(stack(components=components), files)
    kustomization = load_all(tree["base/training-operator/kustomization.yaml"])[0]
    assert kustomization["images"] == [
        {"name": "busybox", "newName": "registry.acme.example/dockerhub/library/busybox"},
        {"name": "ghcr.io/acme/exporter", "newName": "registry.acme.example/acme/exporter"},
        {"name": "quay.io/prometheus/node-exporter", "newName": "registry.acme.example/quay/prometheus/node-exporter"},
    ]
    assert tree["base/training-operator/extra/extra.yaml"] == files["extra.yaml"]  # your file as it is


def test_without_a_mirror_nothing_changes():
    _, tree = plan_of(stack(images=""))
    assert "tensorflow/tensorflow:2.18.0" in images_of(tree)
    assert "quay.io/argoproj/argoexec:v3.6.19" in images_of(tree)


def test_a_rewrite_must_name_a_registry():
    with pytest.raises(InputError) as info:
        plan_of(stack(images="  images:\n    rewrites: {dockerhub: registry.acme.example/dockerhub}\n"))
    assert info.value.lines() == ["stack.yaml:7:16: spec.images.rewrites.dockerhub: 'dockerhub' does not start with a registry host; "
                                  "name the registry as image references do (docker.io, quay.io, ghcr.io/acme, ...)"]
