"""Proof 4: with kube-controller-manager running, every Deployment, StatefulSet and Job kfgen renders
gets its pods created in its namespace: admitted by Pod Security at the level the namespace
enforces, with the ServiceAccount it names (no FailedCreate). There is no kubelet: pods are
created and admitted, never run, so a StatefulSet is expected to have its first pod (OrderedReady
waits for it to be Ready before the next).
"""

from __future__ import annotations

import time

from .conftest import ident

WORKLOADS = ("Deployment", "StatefulSet", "Job")


def expected_pods(obj: dict) -> int:
    spec = obj["spec"]
    if obj["kind"] == "Deployment":
        return spec.get("replicas", 1)
    if obj["kind"] == "StatefulSet":
        return min(spec.get("replicas", 1), 1) if spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady" else spec.get("replicas", 1)
    return spec.get("parallelism", 1)


def owned_pods(api, obj: dict) -> list[dict]:
    namespace = obj["metadata"]["namespace"]
    stored = api.get(obj)
    selector = ",".join(f"{k}={v}" for k, v in stored["spec"]["selector"]["matchLabels"].items())
    return api.request("GET", f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": selector})["items"]


def failed_creates(api, namespaces: set[str]) -> list[str]:
    out = []
    for namespace in sorted(namespaces):
        for event in api.request("GET", f"/api/v1/namespaces/{namespace}/events")["items"]:
            if event.get("reason") == "FailedCreate":
                involved = event["involvedObject"]
                out.append(f"{involved['kind']} {namespace}/{involved['name']}: {event.get('message')}")
    return out


def test_every_workload_gets_its_pods(cluster, environment):
    synced = cluster.synced(*environment)
    workloads = [o for o in synced.objects if o["kind"] in WORKLOADS]
    assert workloads, "the render has no Deployment, StatefulSet or Job"
    namespaces = {o["metadata"]["namespace"] for o in workloads}
    missing: list[str] = []
    deadline = time.monotonic() + 90
    while True:
        missing = [f"{ident(o)}: {len(pods)} of {expected_pods(o)} pods created"
                   for o in workloads if len(pods := owned_pods(cluster.api, o)) < expected_pods(o)]
        refused = failed_creates(cluster.api, namespaces)
        if refused or not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not refused, "\n".join(refused)
    assert not missing, "\n".join(missing)


def test_namespaces_enforce_pod_security(cluster, environment):
    """The check above means something only where a level is enforced: every rendered namespace has one."""
    synced = cluster.synced(*environment)
    loose = [ident(o) for o in synced.objects if o["kind"] == "Namespace"
             and cluster.api.get(o)["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") not in ("restricted", "baseline")]
    assert not loose, f"no enforced Pod Security level: {loose}"
