"""Argo CD objects under argocd/<env>/, and the per-resource sync annotations of rendered objects.

Per environment:
    argocd/<env>/root.yaml          the app of apps (apply it and apps/project.yaml once, by hand)
    argocd/<env>/apps/project.yaml  AppProject: the stack's repo, the environment's cluster, the
                                    namespaces kfgen renders, exactly the cluster-scoped kinds rendered
    argocd/<env>/apps/<base>.yaml   one Application per component (directory source on
                                    rendered/<env>/<component>), or one kustomize Application on
                                    envs/<env> when the environment's sync.source is `kustomize`

Ordering: Applications carry sync waves (cluster-level objects, then the workload namespace, then
the gateway whose CRDs others use, then the other components); inside an Application, custom
resources of workloads come one wave after the operators, so the operator (and its webhook) is
healthy first. Waves between Applications only gate when Argo CD has a health check for
Application (see the README).
"""

from __future__ import annotations

from kfgen.catalog.objects import Obj, meta, obj
from kfgen.model import Environment, Stack

APP_API = "argoproj.io/v1alpha1"
WAVE = "argocd.argoproj.io/sync-wave"
SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
IN_CLUSTER = "https://kubernetes.default.svc"
# Kinds that come first inside an Application (Argo CD also orders these by kind). A PriorityClass
# is not in Argo CD's kind order, so without a wave it would come after the Deployments whose pods
# name it, and their ReplicaSets would fail to create pods until it exists.
FOUNDATION_KINDS = {"Namespace", "CustomResourceDefinition", "PriorityClass"}
APP_WAVES = {"cluster": -2, "workloads": -1, "ambassador": 0}
DEFAULT_APP_WAVE = 1


def annotate_for_argocd(objects: dict[str, list[Obj]]) -> None:
    """Per-resource sync annotations (in place): waves, and SkipDryRunOnMissingResource for custom
    resources whose CRD is not in the same Application."""
    for base, items in objects.items():
        own_crds = {(o["spec"]["group"], o["spec"]["names"]["kind"]) for o in items if o["kind"] == "CustomResourceDefinition"}
        for o in items:
            annotations = o["metadata"].setdefault("annotations", {})
            group = o["apiVersion"].rpartition("/")[0]
            custom = "." in group and not group.endswith(".k8s.io")
            foreign = custom and (group, o["kind"]) not in own_crds  # its CRD is in another Application, or the cluster
            if o["kind"] in FOUNDATION_KINDS:
                annotations[WAVE] = "-1"
            elif foreign or _is_workload(o):
                annotations[WAVE] = "1"
            if foreign:
                annotations[SYNC_OPTIONS] = "SkipDryRunOnMissingResource=true"
            o["metadata"]["annotations"] = dict(sorted(annotations.items()))


def _is_workload(o: Obj) -> bool:
    return o["kind"] in ("TFJob", "SeldonDeployment", "WorkflowTemplate", "CronWorkflow", "Mapping")


def argocd_objects(stack: Stack, inventory: dict) -> dict[str, Obj]:
    """{path: object} for every environment, from what each environment's render holds (plan.Inventory)."""
    files: dict[str, Obj] = {}
    for env in stack.environments:
        kinds = inventory[env.name].cluster_kinds
        env_namespaces = sorted(inventory[env.name].namespaces)
        bases = inventory[env.name].bases
        root = f"argocd/{env.name}"
        files[f"{root}/apps/project.yaml"] = project(stack, env, kinds, env_namespaces)
        files[f"{root}/root.yaml"] = root_application(stack, env)
        if env.sync.source == "kustomize":
            files[f"{root}/apps/{env.name}.yaml"] = kustomize_application(stack, env, kinds)
        else:
            for base in bases:
                files[f"{root}/apps/{base}.yaml"] = component_application(stack, env, base, kinds.get(base, set()))
    return files


def _name(stack: Stack, env: Environment, suffix: str | None = None) -> str:
    return "-".join(p for p in (stack.name, env.name, suffix) if p)


def _destination(env: Environment) -> Obj:
    return dict(env.destination)


def project(stack: Stack, env: Environment, kinds: dict[str, set[tuple[str, str]]], namespaces: list[str]) -> Obj:
    cluster_kinds = sorted({k for base_kinds in kinds.values() for k in base_kinds})
    destinations = [{**_destination(env), "namespace": ns} for ns in sorted(namespaces)]
    destinations.append({"namespace": stack.gitops.argocd_namespace, "server": IN_CLUSTER})  # where the child Applications live
    spec: Obj = {
        "clusterResourceWhitelist": [{"group": g, "kind": k} for g, k in cluster_kinds],
        "description": f"{stack.name} in {env.name}: rendered by kfgen",
        "destinations": destinations,
        "sourceRepos": [stack.gitops.repo_url],
    }
    return obj(APP_API, "AppProject", meta(_name(stack, env), stack.gitops.argocd_namespace, labels=_labels(stack, env)), spec=spec)


def _labels(stack: Stack, env: Environment, base: str | None = None) -> dict[str, str]:
    labels = {"app.kubernetes.io/managed-by": "kfgen", "app.kubernetes.io/part-of": stack.name, "kfgen.io/environment": env.name}
    if base:
        labels["kfgen.io/component"] = base
    return labels


def _sync_policy(env: Environment, respect_ignore: bool) -> Obj:
    policy: Obj = {}
    if env.sync.automated:
        policy["automated"] = {"prune": env.sync.prune, "selfHeal": env.sync.self_heal}
    policy["retry"] = {"backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"}, "limit": 5}
    if respect_ignore:
        policy["syncOptions"] = ["RespectIgnoreDifferences=true"]
    return policy


def _ignore_webhook_ca(kinds: set[tuple[str, str]]) -> list[Obj]:
    """Webhook CA bundles are injected in the cluster (by the operators); never diff them."""
    return [{"group": g, "jqPathExpressions": [".webhooks[]?.clientConfig.caBundle"], "kind": k}
            for g, k in sorted(kinds) if k in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")]


def _application(stack: Stack, env: Environment, name: str, path: str, wave: int, labels: dict, ignore: list[Obj],
                 source_extra: Obj, generate_paths: str) -> Obj:
    annotations = {WAVE: str(wave), "argocd.argoproj.io/compare-options": "ServerSideDiff=true",
                   "argocd.argoproj.io/manifest-generate-paths": generate_paths}
    spec: Obj = {"destination": _destination(env), "project": _name(stack, env),
                 "source": {"path": path, "repoURL": stack.gitops.repo_url, "targetRevision": stack.gitops.target_revision, **source_extra},
                 "syncPolicy": _sync_policy(env, bool(ignore))}
    if ignore:
        spec["ignoreDifferences"] = ignore
    metadata = meta(name, stack.gitops.argocd_namespace, labels=labels, annotations=annotations)
    # Argo CD's domain-qualified name of its (foreground) cascading delete: the bare name draws a warning from the API server
    metadata["finalizers"] = ["resources-finalizer.argocd.argoproj.io/foreground"]
    return obj(APP_API, "Application", metadata, spec=spec)


def component_application(stack: Stack, env: Environment, base: str, kinds: set[tuple[str, str]]) -> Obj:
    path = f"{stack.gitops.path}/rendered/{env.name}/{base}"
    return _application(stack, env, _name(stack, env, base), path, APP_WAVES.get(base, DEFAULT_APP_WAVE),
                        _labels(stack, env, base), _ignore_webhook_ca(kinds), {"directory": {"recurse": True}}, ".")


def kustomize_application(stack: Stack, env: Environment, kinds: dict[str, set[tuple[str, str]]]) -> Obj:
    all_kinds = {k for base_kinds in kinds.values() for k in base_kinds}
    return _application(stack, env, _name(stack, env), f"{stack.gitops.path}/envs/{env.name}", 0, _labels(stack, env),
                        _ignore_webhook_ca(all_kinds), {}, ".;../../base;../../components")


def root_application(stack: Stack, env: Environment) -> Obj:
    """The app of apps: syncs argocd/<env>/apps into Argo CD's own namespace."""
    spec: Obj = {
        "destination": {"namespace": stack.gitops.argocd_namespace, "server": IN_CLUSTER},
        "project": _name(stack, env),
        "source": {"directory": {"recurse": False}, "path": f"{stack.gitops.path}/argocd/{env.name}/apps",
                   "repoURL": stack.gitops.repo_url, "targetRevision": stack.gitops.target_revision},
        "syncPolicy": _sync_policy(env, False),
    }
    annotations = {"argocd.argoproj.io/manifest-generate-paths": "."}
    return obj(APP_API, "Application", meta(_name(stack, env, "root"), stack.gitops.argocd_namespace,
                                            labels=_labels(stack, env), annotations=annotations), spec=spec)
