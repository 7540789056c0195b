"""The cluster tier's copy of Argo CD's sync order (tests/cluster/argocd_sync.py), against cases whose
answer gitops-engine's own tests give (pkg/sync/sync_tasks_test.go: kinds, waves, hooks, and
Namespaces and CRDs moved before what needs them). No cluster needed."""

from __future__ import annotations

from cluster.argocd_sync import sync_order, waves


def obj(kind: str, name: str, namespace: str | None = None, api_version: str = "v1", **annotations: str) -> dict:
    metadata: dict = {"name": name, "annotations": dict(annotations)}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


def crd(group: str, kind: str) -> dict:
    out = obj("CustomResourceDefinition", f"{kind.lower()}s.{group}", api_version="apiextensions.k8s.io/v1")
    out["spec"] = {"group": group, "names": {"kind": kind}}
    return out


def names(objects: list[dict]) -> list[str]:
    return [f"{t.obj['kind']}/{t.obj['metadata']['name']}" for t in sync_order(objects)]


def test_kinds_follow_argo_cds_table_and_custom_resources_come_last():
    objects = [obj("Deployment", "d", "a"), obj("Widget", "w", "a", "example.com/v1"), obj("Service", "s", "a"),
               obj("ConfigMap", "c", "a"), obj("ServiceAccount", "sa", "a")]
    assert names(objects) == ["ServiceAccount/sa", "ConfigMap/c", "Service/s", "Deployment/d", "Widget/w"]


def test_waves_before_kinds_and_phases_before_waves():
    objects = [obj("ConfigMap", "late", "a", **{"argocd.argoproj.io/sync-wave": "2"}),
               obj("Deployment", "early", "a", **{"argocd.argoproj.io/sync-wave": "-1"}),
               obj("Job", "pre", "a", **{"argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/sync-wave": "5"}),
               obj("Job", "failed", "a", **{"argocd.argoproj.io/hook": "SyncFail"})]
    assert names(objects) == ["Job/pre", "Deployment/early", "ConfigMap/late"]  # SyncFail hooks do not run
    assert [len(w) for w in waves(sync_order(objects))] == [1, 1, 1]


def test_a_namespace_and_a_crd_move_before_what_needs_them():
    objects = [obj("ConfigMap", "c", "late-ns", **{"argocd.argoproj.io/sync-wave": "-5"}),
               obj("Namespace", "late-ns", **{"argocd.argoproj.io/sync-wave": "3"}),
               obj("Widget", "w", "a", "example.com/v1", **{"argocd.argoproj.io/sync-wave": "-2"}),
               {**crd("example.com", "Widget"), "metadata": {"name": "widgets.example.com",
                                                            "annotations": {"argocd.argoproj.io/sync-wave": "4"}}}]
    order = sync_order(objects)
    assert [t.obj["metadata"]["name"] for t in order] == ["late-ns", "c", "widgets.example.com", "w"]
    assert [t.wave for t in order] == [-5, -5, -2, -2]  # a moved dependency takes the wave of what needs it
