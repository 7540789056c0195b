"""The Argo CD objects, planned in memory (no kustomize): repository-root paths, protection, revisions,
fleets, the two AppProjects and what they grant, deletion safety. Each checked against Argo CD's real CRDs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import SHARED

from kfgen.errors import InputError
from kfgen.lint import crd_validators, read_crds
from kfgen.sources import read_sources
from kfgen.validate import validate
from kfgen.yamlio import load_all

STACK = """\
apiVersion: kfgen.io/v1alpha1
kind: Stack
metadata:
  name: acme
spec:
  gitops:
    repoURL: https://github.com/acme/platform.git
{gitops}
  components:
    ambassador:
      hostname: ml.example.com
    jupyterhub:
      enabled: false
{components}
  environments:
{environments}
"""


def write_stack(root: Path, environments: str, *, folder: str = "", gitops: str = "", components: str = "") -> Path:
    """A stack in `root/folder`, `root` being a repository root (it holds a .git)."""
    (root / ".git").mkdir(parents=True, exist_ok=True)
    path = root / folder / "stack.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STACK.format(gitops=textwrap.indent(textwrap.dedent(gitops), "    ").rstrip("\n"),
                                 components=textwrap.indent(textwrap.dedent(components), "    ").rstrip("\n"),
                                 environments=textwrap.indent(textwrap.dedent(environments), "    ").rstrip("\n")))
    return path


def planned(path: Path) -> dict[str, dict]:
    """{path: object} of the planned tree's Argo CD files (and anything else asked for, parsed)."""
    _, tree = validate(read_sources(path, "stack.yaml"))
    return {p: yaml.safe_load(text) for p, text in tree.items() if p.startswith("argocd/")}


def problems(path: Path) -> list[str]:
    with pytest.raises(InputError) as info:
        validate(read_sources(path, "stack.yaml"))
    return info.value.lines()


@pytest.fixture(scope="module")
def argocd_crds():
    folder = SHARED / "upstream-crds" / "argo-cd"
    if not folder.is_dir():
        pytest.skip("no ../shared/upstream-crds/argo-cd")
    return crd_validators(read_crds([folder]))


def schema_errors(validators, o: dict) -> list[str]:
    group, _, version = o["apiVersion"].rpartition("/")
    return [e.message for e in validators[(group, version, o["kind"])].iter_errors(o)]


@pytest.mark.parametrize("folder", ["", "stacks/acme"])
def test_every_path_starts_at_the_repository_root(tmp_path, folder, argocd_crds):
    objects = planned(write_stack(tmp_path, "dev: {cloud: kind}", folder=folder))
    prefix = f"{folder}/deploy" if folder else "deploy"
    root = objects["argocd/dev/root.yaml"]
    assert root["spec"]["source"]["path"] == f"{prefix}/argocd/dev/apps"
    paths = {p: o["spec"]["source"]["path"] for p, o in objects.items() if o["kind"] == "Application" and p != "argocd/dev/root.yaml"}
    assert paths == {f"argocd/dev/apps/{b}.yaml": f"{prefix}/rendered/dev/{b}"
                     for b in ("ambassador", "argo-workflows", "seldon-core", "training-operator", "workloads")}
    for o in objects.values():
        assert schema_errors(argocd_crds, o) == []


def test_gitops_path_written_from_the_repository_root_is_refused(tmp_path):
    path = write_stack(tmp_path, "dev: {cloud: kind}", folder="stacks/acme", gitops="path: stacks/acme/deploy")
    assert problems(path) == ["stack.yaml:8:11: spec.gitops.path: is relative to the stack file's folder (stacks/acme): "
                              "'stacks/acme/deploy' renders into stacks/acme/stacks/acme/deploy; write 'deploy'"]


def test_environments_sync_by_hand_unless_the_stack_says_so(tmp_path):
    """No name decides: prod-eu is as protected as prod, and dev syncs by itself only because it says so."""
    objects = planned(write_stack(tmp_path, """\
        dev: {cloud: kind, sync: {automated: true}}
        prod-eu: {cloud: kind}
        lab: {cloud: kind, sync: {automated: true, prune: false}}
    """))
    policy = {env: objects[f"argocd/{env}/apps/ambassador.yaml"]["spec"]["syncPolicy"].get("automated") for env in ("dev", "prod-eu", "lab")}
    assert policy == {"dev": {"prune": True, "selfHeal": True}, "prod-eu": None, "lab": {"prune": False, "selfHeal": True}}
    assert [objects[f"argocd/{env}/root.yaml"]["spec"]["syncPolicy"].get("automated") for env in ("dev", "prod-eu")] == [
        {"prune": True, "selfHeal": True}, None]


def test_a_manual_environment_has_no_waves_between_its_applications(tmp_path):
    """Its root creates every Application at once and waits on none (nobody syncs them for it)."""
    objects = planned(write_stack(tmp_path, "dev: {cloud: kind, sync: {automated: true}}\nprod: {cloud: kind}"))
    waves = {env: {p.rsplit("/", 1)[1]: (o["metadata"].get("annotations") or {}).get("argocd.argoproj.io/sync-wave")
                   for p, o in objects.items() if p.startswith(f"argocd/{env}/apps/")} for env in ("dev", "prod")}
    assert waves["dev"] == {"ambassador.yaml": "0", "argo-workflows.yaml": "1", "seldon-core.yaml": "1", "training-operator.yaml": "1",
                            "workloads.yaml": "-1"}
    assert set(waves["prod"].values()) == {None}


def test_prune_without_automated_sync_is_refused(tmp_path):
    path = write_stack(tmp_path, "prod: {cloud: kind, sync: {prune: true, selfHeal: false}}")
    assert problems(path) == [
        "stack.yaml:16:32: spec.environments.prod.sync.prune: prune applies to automated sync only: set automated: true, or remove prune",
        "stack.yaml:16:45: spec.environments.prod.sync.selfHeal: selfHeal applies to automated sync only: set automated: true, or remove selfHeal"]


def test_an_environment_follows_its_own_revision_root_and_children(tmp_path):
    objects = planned(write_stack(tmp_path, "dev: {cloud: kind}\nprod: {cloud: kind, sync: {revision: env/prod}}", gitops="targetRevision: trunk"))
    revisions = {p: (o["spec"].get("source") or {}).get("targetRevision") for p, o in objects.items() if o["kind"] == "Application"}
    assert {p: r for p, r in revisions.items() if p.startswith("argocd/prod/")} == {
        p: "env/prod" for p in revisions if p.startswith("argocd/prod/")}
    assert {r for p, r in revisions.items() if p.startswith("argocd/dev/")} == {"trunk"}


@pytest.mark.parametrize("field, value, message", [
    ("repoURL", "https://github.com/acme/*", "'https://github.com/acme/*' is not valid: expected the git repository Argo CD reads, "
                                             "written out in full (no glob characters: * ? [ ] { } !)"),
])
def test_no_globs_from_the_stack(tmp_path, field, value, message):
    path = write_stack(tmp_path, "dev: {cloud: kind, destination: {name: 'prod-*'}}")
    path.write_text(path.read_text().replace("repoURL: https://github.com/acme/platform.git", f"{field}: {value}"))
    assert problems(path) == [
        f"stack.yaml:7:14: spec.gitops.{field}: {message}",
        "stack.yaml:16:44: spec.environments.dev.destination.name: 'prod-*' is not valid: expected the cluster's name in Argo CD, "
        "written out in full (no glob characters: * ? [ ] { } !)"]


def test_the_projects_are_outside_what_the_root_syncs_and_exact(tmp_path, argocd_crds):
    objects = planned(write_stack(tmp_path, "prod: {cloud: eks, destination: {name: prod-eks}}"))
    root = objects["argocd/prod/root.yaml"]
    assert (root["spec"]["project"], root["spec"]["source"]["path"], root["spec"]["source"]["directory"]) == (
        "acme-prod-apps", "deploy/argocd/prod/apps", {"recurse": False})
    assert not [p for p in objects if p.startswith("argocd/prod/apps/") and objects[p]["kind"] == "AppProject"]
    apps = objects["argocd/prod/projects/apps.yaml"]["spec"]
    assert apps == {"description": "acme in prod: the root Application's children, in Argo CD's namespace only",
                    "destinations": [{"namespace": "argocd", "server": "https://kubernetes.default.svc"}],
                    "namespaceResourceWhitelist": [{"group": "argoproj.io", "kind": "Application"}],
                    "sourceRepos": ["https://github.com/acme/platform.git"]}
    components = objects["argocd/prod/projects/components.yaml"]["spec"]
    # exactly the namespaces the render writes into (the workload namespace holds its default-deny NetworkPolicy)
    assert components["destinations"] == [{"name": "prod-eks", "namespace": ns} for ns in ("argo", "emissary", "kubeflow", "ml", "seldon-system")]
    allowed = components["clusterResourceWhitelist"]
    assert {"group": "storage.k8s.io", "kind": "StorageClass", "name": "gp3"} in allowed  # the EKS cloud Component's
    assert {"group": "", "kind": "Namespace", "name": "ml"} in allowed
    assert all(set(entry) == {"group", "kind", "name"} and not set("*?[]{}") & set("".join(entry.values())) for entry in allowed)
    for child in (o for p, o in objects.items() if p.startswith("argocd/prod/apps/")):
        assert child["spec"]["project"] == "acme-prod"
    for o in objects.values():
        assert schema_errors(argocd_crds, o) == []


def test_a_fleet_is_an_application_set_per_component(tmp_path, argocd_crds):
    objects = planned(write_stack(tmp_path, "edge: {cloud: kind, clusters: [edge-eu-1, edge-eu-2, edge-us-1]}"))
    appset = objects["argocd/edge/apps/seldon-core.yaml"]
    assert appset["kind"] == "ApplicationSet"
    spec = appset["spec"]
    assert (spec["goTemplate"], spec["goTemplateOptions"]) == (True, ["missingkey=error"])
    assert spec["generators"] == [{"list": {"elements": [{"cluster": "edge-eu-1"}, {"cluster": "edge-eu-2"}, {"cluster": "edge-us-1"}]}}]
    assert spec["syncPolicy"] == {"applicationsSync": "create-update", "preserveResourcesOnDeletion": True}
    template = spec["template"]
    assert template["metadata"]["name"] == "acme-edge-seldon-core-{{.cluster}}"
    assert template["metadata"]["labels"]["kfgen.io/cluster"] == "{{.cluster}}"
    assert "finalizers" not in template["metadata"]  # preserveResourcesOnDeletion decides: no cascade
    assert (template["spec"]["project"], template["spec"]["destination"]) == ("acme-edge", {"name": "{{.cluster}}"})
    assert template["spec"]["source"]["path"] == "deploy/rendered/edge/seldon-core"
    project = objects["argocd/edge/projects/components.yaml"]["spec"]["destinations"]
    assert [(d["name"], d["namespace"]) for d in project if d["namespace"] == "argo"] == [
        ("edge-eu-1", "argo"), ("edge-eu-2", "argo"), ("edge-us-1", "argo")]
    assert objects["argocd/edge/projects/apps.yaml"]["spec"]["namespaceResourceWhitelist"] == [
        {"group": "argoproj.io", "kind": "Application"}, {"group": "argoproj.io", "kind": "ApplicationSet"}]
    for o in objects.values():
        assert schema_errors(argocd_crds, o) == []


def test_a_fleet_has_no_destination_and_each_cluster_once(tmp_path):
    path = write_stack(tmp_path, "edge: {cloud: kind, destination: {name: x}, clusters: [a, b, a]}")
    assert problems(path) == [
        "stack.yaml:16:49: spec.environments.edge.clusters: an environment deploys to `destination` or to `clusters` (a fleet), not both",
        "stack.yaml:16:66: spec.environments.edge.clusters[2]: cluster 'a' is listed twice"]


def test_two_environments_whose_argocd_objects_share_a_name_are_refused(tmp_path):
    path = write_stack(tmp_path, "dev: {cloud: kind}\ndev-root: {cloud: kind, sync: {source: kustomize}}")
    assert problems(path) == ["stack.yaml:17:5: spec.environments.dev-root: its Argo CD Application 'acme-dev-root' has the name "
                              "of one of environment 'dev'; rename one of the environments"]


def test_a_component_in_argocds_namespace_is_refused(tmp_path):
    path = write_stack(tmp_path, "dev: {cloud: kind}", components="seldon-core: {namespace: argocd}")
    assert problems(path) == ["stack.yaml:14:30: spec.components.seldon-core.namespace: namespace 'argocd' is Argo CD's own "
                              "(spec.gitops.argocdNamespace); choose another"]


EXTRA = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: monitoring}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ml-readers}
rules: []
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.acme.example
  annotations: {argocd.argoproj.io/sync-options: "Prune=true,ServerSideApply=true"}
spec:
  group: acme.example
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
"""


def test_extra_resources_stay_inside_what_the_stack_declares(tmp_path):
    """A pull request adding a manifest cannot widen the project: a foreign namespace or an undeclared
    cluster-scoped object is refused where the extraResources entry is written."""
    path = write_stack(tmp_path, "dev: {cloud: kind}", components="argo-workflows: {extraResources: [extra/]}")
    (path.parent / "extra").mkdir()
    (path.parent / "extra" / "objects.yaml").write_text(EXTRA)
    at = "stack.yaml:14:39: spec.components.argo-workflows.extraResources[0]: extra/objects.yaml:"
    assert problems(path) == [
        f"{at} ClusterRole ml-readers has no namespace, so it is cluster-scoped: grant it in spec.gitops.project.clusterResources "
        "({group: 'rbac.authorization.k8s.io', kind: ClusterRole, name: ml-readers}) or give it metadata.namespace",
        f"{at} ConfigMap monitoring/settings is in namespace 'monitoring', which the stack does not declare: add it to "
        "spec.gitops.project.namespaces (the AppProject allows only those)",
        f"{at} CustomResourceDefinition widgets.acme.example has no namespace, so it is cluster-scoped: grant it in "
        "spec.gitops.project.clusterResources ({group: 'apiextensions.k8s.io', kind: CustomResourceDefinition, "
        "name: widgets.acme.example}) or give it metadata.namespace"]


def test_declared_grants_reach_the_project_and_unused_ones_are_refused(tmp_path):
    grants = """\
        project:
          namespaces: [monitoring, unused]
          clusterResources:
            - {group: rbac.authorization.k8s.io, kind: ClusterRole, name: ml-readers}
            - {group: apiextensions.k8s.io, kind: CustomResourceDefinition, name: widgets.acme.example}
            - {kind: Namespace, name: nobody}
    """
    path = write_stack(tmp_path, "dev: {cloud: kind}", gitops=grants, components="argo-workflows: {extraResources: [extra/]}")
    (path.parent / "extra").mkdir()
    (path.parent / "extra" / "objects.yaml").write_text(EXTRA)
    assert problems(path) == [
        "stack.yaml:9:32: spec.gitops.project.namespaces[1]: grants namespace 'unused', which no extraResources object uses; remove it",
        "stack.yaml:13:11: spec.gitops.project.clusterResources[2]: grants Namespace nobody, which no extraResources object is; remove it"]
    path.write_text(path.read_text().replace(", unused]", "]").replace("        - {kind: Namespace, name: nobody}\n", ""))
    _, tree = validate(read_sources(path, "stack.yaml"))
    project = yaml.safe_load(tree["argocd/dev/projects/components.yaml"])["spec"]
    assert {"group": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ml-readers"} in project["clusterResourceWhitelist"]
    assert "monitoring" in [d["namespace"] for d in project["destinations"]]
    # the user's CRD is kept on deletion like kfgen's own: its Prune=true is replaced, its other options kept
    patches = [yaml.safe_load(text) for p, text in tree.items() if p.startswith("base/argo-workflows/patches/")]
    (crd,) = [p for p in patches if p["kind"] == "CustomResourceDefinition"]
    assert crd["metadata"]["annotations"] == {"argocd.argoproj.io/sync-options": "ServerSideApply=true,Prune=false,Delete=false"}


def test_crds_and_namespaces_are_never_pruned_or_deleted(tmp_path):
    path = write_stack(tmp_path, "dev: {cloud: kind}")
    _, tree = validate(read_sources(path, "stack.yaml"))
    kept = {}
    for p, text in tree.items():
        if p.startswith("base/"):
            for o in load_all(text):
                if isinstance(o, dict) and o.get("kind") in ("CustomResourceDefinition", "Namespace"):
                    kept[o["metadata"]["name"]] = o["metadata"]["annotations"]["argocd.argoproj.io/sync-options"]
    assert len(kept) > 20 and set(kept.values()) == {"Prune=false,Delete=false"}
