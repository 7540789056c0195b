"""Argo CD objects under argocd/<env>/, and the per-resource sync annotations of rendered objects.

Per environment:
    argocd/<env>/projects/components.yaml  AppProject <stack>-<env>: the stack's repository, the
                                       environment's clusters and exactly the namespaces and
                                       cluster-scoped objects (by name) the environment renders
    argocd/<env>/projects/apps.yaml    AppProject <stack>-<env>-apps: only Applications (and a fleet's
                                       ApplicationSets), only in Argo CD's namespace on its own cluster
    argocd/<env>/root.yaml             the app of apps (project <stack>-<env>-apps), on argocd/<env>/apps
    argocd/<env>/apps/<base>.yaml      one Application per component (directory source on
                                       rendered/<env>/<component>), an ApplicationSet per component for a
                                       fleet, or one kustomize Application on envs/<env>

The projects and the root are applied once by an admin; the root never syncs the projects that
constrain it. Every path is relative to the repository root (spec.gitops.repo_path), and every
Application follows the environment's revision (its own branch, or gitops.targetRevision).

Ordering: in automated environments the Applications carry sync waves (cluster-level objects, the
workload namespace, the gateway whose CRDs others use, then the other components); a manually synced
environment's Applications carry none, so its root never waits on children nobody synced. Inside an
Application, custom resources of workloads come one wave after the operators.
"""

from __future__ import annotations

from kfgen.components import PACKAGES
from kfgen.errors import InputError, Problem
from kfgen.layout import split_api_version
from kfgen.model import Environment, Stack
from kfgen.objects import Obj, meta, obj
from kfgen.vocabulary import (
    ARGOCD,
    ARGOCD_API,
    ARGOCD_APPS,
    ARGOCD_FINALIZER,
    ARGOCD_PROJECTS,
    ARGOCD_ROOT,
    CLUSTER_BASE,
    CLUSTER_LABEL,
    COMPARE_OPTIONS,
    COMPONENT_LABEL,
    ENVIRONMENTS,
    ENVIRONMENT_LABEL,
    IN_CLUSTER,
    KEEP_ON_DELETE,
    MANAGED_BY,
    MANIFEST_GENERATE_PATHS,
    PART_OF,
    RENDERED,
    SYNC_OPTIONS,
    SYNC_WAVE,
    WORKLOADS_BASE,
)

# Kinds that come first inside an Application and that Argo CD never prunes or deletes: deleting a
# CRD deletes every custom resource of its kind, deleting a Namespace everything in it.
FOUNDATION_KINDS = {"Namespace", "CustomResourceDefinition"}
# A PriorityClass is not in Argo CD's kind order, so without a wave it would come after the
# Deployments whose pods name it, and their ReplicaSets would fail to create pods until it exists.
EARLY_KINDS = FOUNDATION_KINDS | {"PriorityClass"}
APP_WAVES = {CLUSTER_BASE: -2, WORKLOADS_BASE: -1, **{name: p.app_wave for name, p in PACKAGES.items()}}
WORKLOAD_KINDS = {kind for p in PACKAGES.values() for kind in p.workload_kinds}
RETRY = {"backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"}, "limit": 5}

ClusterObject = tuple[str, str, str]  # (group, kind, name) of a cluster-scoped object


def annotate_for_argocd(objects: dict[str, list[Obj]]) -> None:
    """Per-resource sync annotations (in place): waves, Prune=false and Delete=false on CRDs and
    Namespaces, and SkipDryRunOnMissingResource for custom resources whose CRD is not in the same Application."""
    for items in objects.values():
        own_crds = {(o["spec"]["group"], o["spec"]["names"]["kind"]) for o in items if o["kind"] == "CustomResourceDefinition"}
        for o in items:
            annotations = o["metadata"].setdefault("annotations", {})
            group = o["apiVersion"].rpartition("/")[0]
            custom = "." in group and not group.endswith(".k8s.io")
            foreign = custom and (group, o["kind"]) not in own_crds  # its CRD is in another Application, or the cluster
            if o["kind"] in EARLY_KINDS:
                annotations[SYNC_WAVE] = "-1"
            if o["kind"] in FOUNDATION_KINDS:
                annotations[SYNC_OPTIONS] = ",".join(KEEP_ON_DELETE)
            elif foreign or o["kind"] in WORKLOAD_KINDS:
                annotations[SYNC_WAVE] = "1"
            if foreign:
                annotations[SYNC_OPTIONS] = "SkipDryRunOnMissingResource=true"
            if annotations:
                o["metadata"]["annotations"] = dict(sorted(annotations.items()))
            else:
                del o["metadata"]["annotations"]  # an empty map is a permanent diff in Argo CD


def extra_sync_options(o: Obj) -> str | None:
    """The sync-options annotation a user's own CRD or Namespace (extraResources) gets: its own
    options, with Prune=false and Delete=false instead of any Prune or Delete it sets."""
    if o.get("kind") not in FOUNDATION_KINDS:
        return None
    written = ((o.get("metadata") or {}).get("annotations") or {}).get(SYNC_OPTIONS, "")
    options = [p.strip() for p in str(written).split(",") if p.strip() and p.split("=")[0].strip() not in ("Prune", "Delete")]
    return ",".join([*options, *KEEP_ON_DELETE])


# --- the tree -----------------------------------------------------------------------------------

def argocd_objects(stack: Stack, inventory: dict) -> dict[str, Obj]:
    """{path: object} for every environment, from what each environment's render holds (plan.Inventory)."""
    files: dict[str, Obj] = {}
    for env in stack.environments:
        found = inventory[env.name]
        root = f"{ARGOCD}/{env.name}"
        files[f"{root}/{ARGOCD_PROJECTS}/components.yaml"] = project(stack, env, found.cluster_objects, found.namespaces)
        files[f"{root}/{ARGOCD_PROJECTS}/apps.yaml"] = apps_project(stack, env)
        files[f"{root}/{ARGOCD_ROOT}"] = root_application(stack, env)
        if env.sync.source == "kustomize":
            files[f"{root}/{ARGOCD_APPS}/{env.name}.yaml"] = kustomize_application(stack, env, found.cluster_objects)
        else:
            for base in found.bases:
                files[f"{root}/{ARGOCD_APPS}/{base}.yaml"] = component_application(stack, env, base, found.cluster_objects.get(base, set()))
    _refuse_name_clashes(stack, files)
    return files


def _refuse_name_clashes(stack: Stack, files: dict[str, Obj]) -> None:
    """Two environments whose Argo CD objects would share a name (`dev` + `workloads-root`...): one
    would replace the other in Argo CD."""
    seen: dict[tuple[str, str], str] = {}
    problems = []
    for path, o in files.items():
        key, env = (o["kind"], o["metadata"]["name"]), path.split("/")[1]
        if key in seen and seen[key] != env:
            where = stack.written_at.get(f"spec.environments.{env}", ("", 1, 1))
            problems.append(Problem(*where, f"spec.environments.{env}", f"its Argo CD {key[0]} {key[1]!r} has the name of one of "
                                    f"environment {seen[key]!r}; rename one of the environments"))
        seen.setdefault(key, env)
    if problems:
        raise InputError(problems)


def _name(stack: Stack, env: Environment, suffix: str | None = None) -> str:
    return "-".join(p for p in (stack.name, env.name, suffix) if p)


def _labels(stack: Stack, env: Environment, base: str | None = None) -> dict[str, str]:
    labels = {MANAGED_BY: "kfgen", PART_OF: stack.name, ENVIRONMENT_LABEL: env.name}
    if base:
        labels[COMPONENT_LABEL] = base
    return labels


def project(stack: Stack, env: Environment, cluster_objects: dict[str, set[ClusterObject]], namespaces: set[str]) -> Obj:
    """The components' boundary: the stack's repository, the environment's clusters and namespaces,
    and exactly the cluster-scoped objects (by name) the environment renders. Nothing else."""
    allowed = sorted({o for objects in cluster_objects.values() for o in objects})
    spec: Obj = {
        "clusterResourceWhitelist": [{"group": g, "kind": k, "name": n} for g, k, n in allowed],
        "description": f"{stack.name} in {env.name}: what kfgen renders, nothing more (applied by an admin, never by the root)",
        "destinations": [{**dict(destination), "namespace": ns} for destination in env.destinations for ns in sorted(namespaces)],
        "sourceRepos": [stack.gitops.repo_url],
    }
    return obj(ARGOCD_API, "AppProject", meta(_name(stack, env), stack.gitops.argocd_namespace, labels=_labels(stack, env)), spec=spec)


def apps_project(stack: Stack, env: Environment) -> Obj:
    """The root's boundary: Applications (and a fleet's ApplicationSets) in Argo CD's namespace, nothing
    cluster-scoped (an AppProject without clusterResourceWhitelist allows none)."""
    kinds = ["Application", "ApplicationSet"] if env.clusters else ["Application"]
    spec: Obj = {
        "description": f"{stack.name} in {env.name}: the root Application's children, in Argo CD's namespace only",
        "destinations": [{"namespace": stack.gitops.argocd_namespace, "server": IN_CLUSTER}],
        "namespaceResourceWhitelist": [{"group": split_api_version(ARGOCD_API)[0], "kind": k} for k in kinds],
        "sourceRepos": [stack.gitops.repo_url],
    }
    return obj(ARGOCD_API, "AppProject", meta(_name(stack, env, "apps"), stack.gitops.argocd_namespace, labels=_labels(stack, env)), spec=spec)


def _sync_policy(env: Environment, respect_ignore: bool) -> Obj:
    policy: Obj = {}
    if env.sync.automated:
        policy["automated"] = {"prune": env.sync.prune, "selfHeal": env.sync.self_heal}
    policy["retry"] = RETRY
    if respect_ignore:
        policy["syncOptions"] = ["RespectIgnoreDifferences=true"]
    return policy


def _ignore_webhook_ca(objects: set[ClusterObject]) -> list[Obj]:
    """Webhook CA bundles are injected in the cluster (by the operators); never diff them."""
    kinds = sorted({(g, k) for g, k, _ in objects if k in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")})
    return [{"group": g, "jqPathExpressions": [".webhooks[]?.clientConfig.caBundle"], "kind": k} for g, k in kinds]


def _application(stack: Stack, env: Environment, name: str, path: str, wave: int, labels: dict, ignore: list[Obj],
                 source_extra: Obj, generate_paths: str) -> Obj:
    """One Application, or for a fleet one ApplicationSet making an Application per cluster."""
    annotations = {COMPARE_OPTIONS: "ServerSideDiff=true", MANIFEST_GENERATE_PATHS: generate_paths}
    spec: Obj = {"destination": dict(env.destination), "project": _name(stack, env),
                 "source": {"path": path, "repoURL": stack.gitops.repo_url, "targetRevision": env.sync.revision, **source_extra},
                 "syncPolicy": _sync_policy(env, bool(ignore))}
    if ignore:
        spec["ignoreDifferences"] = ignore
    # waves between children only where the root syncs them by itself: a manual root must not wait on manual children
    outer = {SYNC_WAVE: str(wave)} if env.sync.automated else {}
    if env.clusters:
        return _application_set(stack, env, name, labels, annotations, spec, outer)
    metadata = meta(name, stack.gitops.argocd_namespace, labels=labels, annotations=dict(sorted({**annotations, **outer}.items())))
    metadata["finalizers"] = [ARGOCD_FINALIZER]
    return obj(ARGOCD_API, "Application", metadata, spec=spec)


def _application_set(stack: Stack, env: Environment, name: str, labels: dict, annotations: dict, spec: Obj, outer: dict) -> Obj:
    """A fleet: the same Application on every cluster, from a list generator. goTemplate with
    missingkey=error and a literal project (a templated project lets the generator's input pick it)."""
    template_spec = {**spec, "destination": {"name": "{{.cluster}}"}}
    sync_policy: Obj = {"preserveResourcesOnDeletion": True}  # deleting it (or dropping a cluster) never deletes what runs
    if not env.sync.automated:
        sync_policy["applicationsSync"] = "create-update"  # a protected fleet loses an Application only by hand
    set_spec: Obj = {
        "generators": [{"list": {"elements": [{"cluster": c} for c in env.clusters]}}],
        "goTemplate": True,
        "goTemplateOptions": ["missingkey=error"],
        "syncPolicy": sync_policy,
        "template": {"metadata": {"annotations": annotations, "labels": {**labels, CLUSTER_LABEL: "{{.cluster}}"},
                                  "name": f"{name}-{{{{.cluster}}}}"},
                     "spec": template_spec},
    }
    metadata = meta(name, stack.gitops.argocd_namespace, labels=labels, annotations=outer or None)
    return obj(ARGOCD_API, "ApplicationSet", metadata, spec=set_spec)


def _tree_path(stack: Stack, *parts: str) -> str:
    """A path in the repository (Argo CD reads paths from the repository root)."""
    return "/".join(p for p in (stack.gitops.repo_path, *parts) if p and p != ".")


def component_application(stack: Stack, env: Environment, base: str, objects: set[ClusterObject]) -> Obj:
    return _application(stack, env, _name(stack, env, base), _tree_path(stack, RENDERED, env.name, base), APP_WAVES.get(base, 1),
                        _labels(stack, env, base), _ignore_webhook_ca(objects), {"directory": {"recurse": True}}, ".")


def kustomize_application(stack: Stack, env: Environment, cluster_objects: dict[str, set[ClusterObject]]) -> Obj:
    every = {o for objects in cluster_objects.values() for o in objects}
    return _application(stack, env, _name(stack, env), _tree_path(stack, ENVIRONMENTS, env.name), 0, _labels(stack, env),
                        _ignore_webhook_ca(every), {}, ".;../../base;../../components")


def root_application(stack: Stack, env: Environment) -> Obj:
    """The app of apps: syncs argocd/<env>/apps (never the projects) into Argo CD's own namespace, at the
    environment's revision, automatically only where the environment syncs automatically."""
    spec: Obj = {
        "destination": {"namespace": stack.gitops.argocd_namespace, "server": IN_CLUSTER},
        "project": _name(stack, env, "apps"),
        "source": {"directory": {"recurse": False}, "path": _tree_path(stack, ARGOCD, env.name, ARGOCD_APPS),
                   "repoURL": stack.gitops.repo_url, "targetRevision": env.sync.revision},
        "syncPolicy": _sync_policy(env, False),
    }
    annotations = {MANIFEST_GENERATE_PATHS: "."}
    return obj(ARGOCD_API, "Application", meta(_name(stack, env, "root"), stack.gitops.argocd_namespace,
                                            labels=_labels(stack, env), annotations=annotations), spec=spec)


# --- what the stack grants -------------------------------------------------------------------------

def grant_problems(stack: Stack, extras: list[tuple[str, str, Obj]], namespaces: set[str]) -> list[Problem]:
    """Objects of extraResources outside what the stack declares: a namespace that is not a component's,
    the workloads' or listed in spec.gitops.project.namespaces; a cluster-scoped object not listed in
    spec.gitops.project.clusterResources. And grants nothing uses. `extras`: (the extraResources entry's
    path, e.g. spec.components.<name>.extraResources[<i>] or an environment's own, file, object);
    `namespaces`: the components' and the workloads'."""
    declared_ns = set(stack.gitops.namespaces)
    declared = {(r.group, r.kind, r.name) for r in stack.gitops.cluster_resources}
    used_ns: set[str] = set()
    used: set[ClusterObject] = set()
    problems = []
    for where, source, o in extras:
        at = stack.written_at.get(where, ("", 1, 1))
        m = o.get("metadata") or {}
        kind, name, ns = str(o.get("kind", "")), str(m.get("name", "")), m.get("namespace")
        group = split_api_version(str(o.get("apiVersion", "")))[0]
        if ns:
            used_ns.add(ns)
            if ns not in namespaces | declared_ns:
                problems.append(Problem(*at, where, f"{source}: {kind} {ns}/{name} is in namespace {ns!r}, which the stack does "
                                        f"not declare: add it to spec.gitops.project.namespaces (the AppProject allows only those)"))
        elif kind == "Namespace" and group == "" and name in namespaces | declared_ns:
            used_ns.add(name)
        elif (group, kind, name) in declared:
            used.add((group, kind, name))
        else:
            problems.append(Problem(*at, where, f"{source}: {kind} {name} has no namespace, so it is cluster-scoped: grant it in "
                                    f"spec.gitops.project.clusterResources ({{group: {group!r}, kind: {kind}, name: {name}}}) "
                                    "or give it metadata.namespace"))
    for i, ns in enumerate(stack.gitops.namespaces):
        if ns not in used_ns:
            where = f"spec.gitops.project.namespaces[{i}]"
            problems.append(Problem(*stack.written_at.get(where, ("", 1, 1)), where,
                                    f"grants namespace {ns!r}, which no extraResources object uses; remove it"))
    for i, r in enumerate(stack.gitops.cluster_resources):
        if (r.group, r.kind, r.name) not in used:
            where = f"spec.gitops.project.clusterResources[{i}]"
            problems.append(Problem(*stack.written_at.get(where, ("", 1, 1)), where,
                                    f"grants {r.kind} {r.name}, which no extraResources object is; remove it"))
    return problems
