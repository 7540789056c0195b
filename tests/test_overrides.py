"""Per-environment overrides: extraResources and patches an environment adds, and null to unset an
inherited value. Plan-level (the end-to-end render of both is in test_render.py)."""

from __future__ import annotations

import pytest
from in_memory import plan_of

from kfgen.errors import InputError
from kfgen.yamlio import load_all

STORAGE_CLASS = """\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast-ssd}
provisioner: pd.csi.storage.gke.io
parameters: {type: pd-ssd}
"""
HUB_PATCH = """\
- {op: replace, path: /spec/replicas, value: 1}
"""


def stack(dev: str = "", prod: str = "", components: str = "") -> str:
    return f"""\
apiVersion: kfgen.io/v1alpha1
kind: Stack
metadata: {{name: envs}}
spec:
  gitops: {{repoURL: https://example.com/r.git}}
  components:
    ambassador: {{hostname: ml.example.com, tlsSecret: ml-tls}}
    jupyterhub: {{auth: {{type: github, allowedUsers: [alice]}}}}
{components}  environments:
    dev:
      cloud: kind
      artifacts: {{bucket: artifacts, endpoint: minio:9000, credentialsSecret: minio}}
{dev}    prod:
      cloud: gke
      artifacts: {{bucket: artifacts}}
{prod}  workloads:
    serving:
      model: {{modelUri: s3://models/m, credentialsSecret: model-store}}
"""


def gke_only_storage_class() -> tuple[str, dict]:
    prod = "      overrides:\n        components:\n          ambassador: {extraResources: [gke/storageclass.yaml]}\n"
    grant = ("  gitops:\n    repoURL: https://example.com/r.git\n"
             "    project: {clusterResources: [{group: storage.k8s.io, kind: StorageClass, name: fast-ssd}]}\n")
    return stack(prod=prod).replace("  gitops: {repoURL: https://example.com/r.git}\n", grant), {"gke/storageclass.yaml": STORAGE_CLASS}


def test_an_environments_own_extra_resources_land_in_that_environment_only():
    text, files = gke_only_storage_class()
    _, tree = plan_of(text, files)
    assert tree["envs/prod/extra/ambassador/gke/storageclass.yaml"] == STORAGE_CLASS  # your file as it is
    assert load_all(tree["envs/prod/extra/ambassador/kustomization.yaml"])[0] == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "labels": [{"includeSelectors": False, "pairs": {"app.kubernetes.io/managed-by": "kfgen", "app.kubernetes.io/part-of": "envs",
                                                          "kfgen.io/component": "ambassador"}}],
        "resources": ["gke/storageclass.yaml"]}
    assert "extra/ambassador" in load_all(tree["envs/prod/kustomization.yaml"])[0]["resources"]
    assert not [p for p in tree if p.startswith(("envs/dev/extra/", "base/ambassador/extra/"))]
    assert "extra/ambassador" not in load_all(tree["envs/dev/kustomization.yaml"])[0]["resources"]
    # Argo CD's project for prod may create this StorageClass; dev's may not
    assert "fast-ssd" in tree["argocd/prod/projects/components.yaml"] and "fast-ssd" not in tree["argocd/dev/projects/components.yaml"]


def test_an_environments_own_cluster_scoped_extra_needs_the_projects_grant():
    text, files = gke_only_storage_class()
    text = text.replace("    project: {clusterResources: [{group: storage.k8s.io, kind: StorageClass, name: fast-ssd}]}\n", "")
    with pytest.raises(InputError) as info:
        plan_of(text, files)
    assert info.value.lines() == [
        "stack.yaml:19:41: spec.environments.prod.overrides.components.ambassador.extraResources[0]: gke/storageclass.yaml: StorageClass "
        "fast-ssd has no namespace, so it is cluster-scoped: grant it in spec.gitops.project.clusterResources ({group: 'storage.k8s.io', "
        "kind: StorageClass, name: fast-ssd}) or give it metadata.namespace"]


def test_an_environments_own_patches_apply_after_its_changes_to_its_component_only():
    prod = ("      overrides:\n        components:\n          jupyterhub:\n"
            "            patches: [{path: patches/hub.yaml, target: {kind: Deployment, name: hub}}]\n")
    _, tree = plan_of(stack(prod=prod), {"patches/hub.yaml": HUB_PATCH})
    component = load_all(tree["envs/prod/overrides/kustomization.yaml"])[0]
    assert component["patches"][-1] == {"path": "yours/jupyterhub/patches/hub.yaml",
                                        "target": {"kind": "Deployment", "labelSelector": "kfgen.io/component=jupyterhub", "name": "hub"}}
    assert tree["envs/prod/overrides/yours/jupyterhub/patches/hub.yaml"] == HUB_PATCH
    assert not [p for p in tree if "/yours/" in p and not p.startswith("envs/prod/")]


@pytest.mark.parametrize("dev, message", [
    ("      overrides: {components: {ambassador: {extraResources: [gke/storageclass.yaml]}}}\n",
     "stack.yaml:13:62: spec.environments.dev.overrides.components.ambassador.extraResources[0]: 'gke/storageclass.yaml' is already "
     "in spec.components.ambassador.extraResources, which every environment has"),
    ("      overrides: {components: {ambassador: {namespace: gateway}}}\n",
     "stack.yaml:13:45: spec.environments.dev.overrides.components.ambassador.namespace: namespace cannot be overridden per environment; "
     "set it in spec.components.ambassador"),
])
def test_what_an_environment_cannot_add(dev, message):
    text = stack(dev=dev).replace("ml.example.com, tlsSecret: ml-tls}", "ml.example.com, tlsSecret: ml-tls, extraResources: [gke/storageclass.yaml]}")
    with pytest.raises(InputError) as info:
        plan_of(text, {"gke/storageclass.yaml": STORAGE_CLASS})
    assert info.value.lines() == [message]


def test_null_unsets_an_inherited_value():
    prod = "      overrides: {workloads: {serving: {model: {credentialsSecret: null}}}, components: {ambassador: {tlsSecret: null}}}\n"
    stack_, tree = plan_of(stack(prod=prod))
    dev, prod_env = stack_.environments
    assert dev.workloads.serving[0].credentials_secret == "model-store"
    assert prod_env.workloads.serving[0].credentials_secret is None  # workload identity reads the bucket there
    assert prod_env.components["ambassador"].settings.tls_secret is None
    patch = load_all(tree["envs/prod/overrides/patches/seldondeployment-ml-model.yaml"])[0]
    assert {"op": "remove", "path": "/spec/predictors/0/graph/envSecretRefName"} in patch


@pytest.mark.parametrize("override, message", [
    ("{components: {ambassador: {hostname: null}}}",
     "stack.yaml:16:55: spec.environments.prod.overrides.components.ambassador.hostname: expected a string, got null "
     "(null unsets only optional fields without a default)"),
    ("{workloads: {serving: {model: {replicas: null}}}}",
     "stack.yaml:16:59: spec.environments.prod.overrides.workloads.serving.model.replicas: expected an integer, got null "
     "(null unsets only optional fields without a default)"),
])
def test_null_elsewhere_is_an_error_with_its_place(override, message):
    with pytest.raises(InputError) as info:
        plan_of(stack(prod=f"      overrides: {override}\n"))
    assert info.value.lines() == [message]
