"""The stack's GitOps settings, validated: where the rendered tree lives in the repository, what the
Argo CD project grants beyond kfgen's own objects, and how each environment syncs (by hand unless
the stack says otherwise, its own revision, its clusters). Pure: it reads the positioned document.
"""

from __future__ import annotations

import posixpath
from typing import Any, Callable

from kfgen.load import Document, format_path
from kfgen.model import ClusterResource, GitOps, Sync

Fail = Callable[..., None]  # fail(path, message, key=False)


def gitops(doc: Document, folder_in_repo: str, fail: Fail) -> GitOps:
    """spec.gitops: the tree's path relative to the stack file and to the repository root."""
    data = doc.data["spec"]["gitops"]
    path = data.get("path", "deploy")
    if ".." in path.split("/"):
        fail(("spec", "gitops", "path"), "must stay inside the repository (no '..')")
    elif folder_in_repo and path.startswith(folder_in_repo + "/"):
        fail(("spec", "gitops", "path"), f"is relative to the stack file's folder ({folder_in_repo}): {path!r} renders into "
             f"{folder_in_repo}/{path}; write {path.removeprefix(folder_in_repo + '/')!r}")
    project = data.get("project") or {}
    return GitOps(
        repo_url=data["repoURL"],
        target_revision=data.get("targetRevision", "main"),
        path=path,
        argocd_namespace=data.get("argocdNamespace", "argocd"),
        repo_path=posixpath.normpath(posixpath.join(folder_in_repo, path)),
        namespaces=tuple(project.get("namespaces") or ()),
        cluster_resources=tuple(ClusterResource(r.get("group", ""), r["kind"], r["name"]) for r in project.get("clusterResources") or ()),
    )


def project_positions(doc: Document) -> dict[str, tuple[str, int, int]]:
    """Where each spec.gitops.project entry was written (a grant nothing uses is reported there)."""
    project = doc.data["spec"]["gitops"].get("project") or {}
    found = {}
    for key in ("namespaces", "clusterResources"):
        for i, _ in enumerate(project.get(key) or ()):
            path = ("spec", "gitops", "project", key, i)
            found[format_path(path)] = (doc.file, *doc.position(path))
    return found


def environment_sync(name: str, data: dict[str, Any], gitops_settings: GitOps, fail: Fail) -> Sync:
    """An environment's sync: by hand unless `automated: true` is written (prune and self-heal then
    default to on); its own revision when `revision` is written."""
    sync = data.get("sync") or {}
    where = ("spec", "environments", name, "sync")
    automated = sync.get("automated", False)
    if not automated:
        for key in ("prune", "selfHeal"):
            if key in sync:
                fail(where + (key,), f"{key} applies to automated sync only: set automated: true, or remove {key}", key=True)
    revision = sync.get("revision", gitops_settings.target_revision)
    return Sync(automated=automated, prune=automated and sync.get("prune", True), self_heal=automated and sync.get("selfHeal", True),
                source=sync.get("source", "rendered"), revision=revision, own_revision=revision != gitops_settings.target_revision)


def environment_clusters(name: str, data: dict[str, Any], fail: Fail) -> tuple[str, ...]:
    """A fleet's clusters (Argo CD cluster names), each once; a fleet has no `destination`."""
    clusters = data.get("clusters") or []
    where = ("spec", "environments", name)
    if clusters and "destination" in data:
        fail(where + ("clusters",), "an environment deploys to `destination` or to `clusters` (a fleet), not both", key=True)
    for i, cluster in enumerate(clusters):
        if cluster in clusters[:i]:
            fail(where + ("clusters", i), f"cluster {cluster!r} is listed twice")
    return tuple(dict.fromkeys(clusters))


def argocd_namespace_problems(gitops_settings: GitOps, namespaces: dict[tuple, str]) -> list[tuple[tuple, str]]:
    """(path, message) for a component or workload namespace that is Argo CD's own: the environment's
    project would then grant its kinds where Argo CD keeps its Applications and secrets."""
    return [(path, f"namespace {ns!r} is Argo CD's own (spec.gitops.argocdNamespace); choose another")
            for path, ns in namespaces.items() if ns == gitops_settings.argocd_namespace]
