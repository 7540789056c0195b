"""kfgen lint for the Argo CD side of a rendered tree: argocd/ against Argo CD's CRDs (given with
--crds; Argo CD's CRDs live in the cluster Argo CD runs in, not in the render), and three policies:

    KFG101  every Application and ApplicationSet path is a folder of this render (relative to the repository root)
    KFG102  CRDs and Namespaces carry Prune=false and Delete=false (checked on rendered/ too, at render time)
    KFG103  Argo CD projects are exact: no globs, the root's project holds only Applications in Argo CD's
            namespace and nothing cluster-scoped, and every ApplicationSet has a literal project and goTemplate
            with missingkey=error
"""

from __future__ import annotations

from pathlib import Path

from kfgen.vocabulary import ARGOCD, ARGOCD_API, ARGOCD_APPS, KEEP_ON_DELETE, SYNC_OPTIONS

POLICIES = {
    "KFG101": "Argo CD paths are folders of this render",
    "KFG102": "CRDs and Namespaces are never pruned or deleted by Argo CD (Prune=false, Delete=false)",
    "KFG103": "Argo CD projects are exact (no globs; the root's project holds only Applications)",
}
GLOB = set("*?[]{}!\\")


def keep_on_delete(file: str, o: dict) -> list[tuple[str, str, str, str]]:
    """(file, field, policy, message) when a CRD or Namespace could be pruned or deleted with its Application."""
    if o.get("kind") not in ("CustomResourceDefinition", "Namespace"):
        return []
    options = {p.strip() for p in str(((o.get("metadata") or {}).get("annotations") or {}).get(SYNC_OPTIONS, "")).split(",")}
    missing = [opt for opt in KEEP_ON_DELETE if opt not in options]
    if not missing:
        return []
    return [(file, f"metadata.annotations.{SYNC_OPTIONS}", "KFG102",
             f"{' and '.join(missing)} missing: Argo CD would delete it (and everything of its kind or in it) with its Application")]


def argocd_violations(out: Path, documents: list[tuple[str, dict]], repository_path: str) -> list[tuple[str, str, str, str]]:
    """(file, field, policy, message) for the Argo CD objects of the tree at `out` (files relative to it)."""
    found = []
    prefix = "" if repository_path in ("", ".") else repository_path.rstrip("/") + "/"
    for file, o in documents:
        kind = o.get("kind")
        if o.get("apiVersion") != ARGOCD_API:
            continue
        if kind == "AppProject":
            found += _project(file, o)
        elif kind in ("Application", "ApplicationSet"):
            spec = o.get("spec") or {}
            if kind == "ApplicationSet":
                found += _application_set(file, spec)
                spec = (spec.get("template") or {}).get("spec") or {}
            path = str((spec.get("source") or {}).get("path", ""))
            inside = path[len(prefix):] if path.startswith(prefix) else None
            if inside is None or ".." in inside.split("/") or not (out / inside).is_dir():
                found.append((file, "spec.source.path", "KFG101", f"{path!r} is not a folder of this render "
                              f"(its paths start at {prefix or 'the repository root'})"))
            elif file.count("/") == 2 and inside.startswith(f"{ARGOCD}/") and not inside.endswith(f"/{ARGOCD_APPS}"):
                found.append((file, "spec.source.path", "KFG103", "a root Application syncs only its environment's apps/ folder "
                              "(never the projects that constrain it)"))
    return found


def _globs(value: object) -> bool:
    return isinstance(value, str) and bool(GLOB & set(value))


def _project(file: str, o: dict) -> list[tuple[str, str, str, str]]:
    spec = o.get("spec") or {}
    found = []
    for key in ("sourceRepos", "destinations", "clusterResourceWhitelist", "namespaceResourceWhitelist"):
        for i, entry in enumerate(spec.get(key) or []):
            values = entry.items() if isinstance(entry, dict) else [("", entry)]
            for field, value in values:
                if _globs(value):
                    found.append((file, f"spec.{key}[{i}]{'.' + field if field else ''}", "KFG103", f"{value!r} is a glob"))
    if str((o.get("metadata") or {}).get("name", "")).endswith("-apps"):
        kinds = {(k.get("group"), k.get("kind")) for k in spec.get("namespaceResourceWhitelist") or []}
        if spec.get("clusterResourceWhitelist") or not kinds or kinds - {("argoproj.io", "Application"), ("argoproj.io", "ApplicationSet")}:
            found.append((file, "spec", "KFG103", "the root's project allows only Applications (and ApplicationSets), nothing cluster-scoped"))
    return found


def _application_set(file: str, spec: dict) -> list[tuple[str, str, str, str]]:
    found = []
    if not spec.get("goTemplate") or "missingkey=error" not in (spec.get("goTemplateOptions") or []):
        found.append((file, "spec.goTemplateOptions", "KFG103", "goTemplate: true with missingkey=error (a missing key is an error, not '')"))
    project = str(((spec.get("template") or {}).get("spec") or {}).get("project", ""))
    if "{{" in project or not project:
        found.append((file, "spec.template.spec.project", "KFG103", "the project is written literally: a templated one lets "
                      "the generator's input choose it"))
    return found
