"""Proof 3: upgrade in place, both ways.

Upstream to kfgen: a cluster with the upstream CRDs of the pinned versions, installed as upstream
documents it (`kubectl apply -f` of Argo Workflows' minimal CRDs, the training operator's and
Emissary's, which store v2; Seldon's chart CRD as Helm creates it) and objects stored under them
accepts an environment's sync as Argo CD runs it for the rendered Applications (their sync options:
client-side apply), with no `status.storedVersions` conflict, and the objects stay readable with
every field they were written with. The client-side apply also drops the conversion webhook that
upstream's Emissary CRDs name (it was in the last-applied configuration and is not in kfgen's), so
Mappings stored as v2 read as v3alpha1 without it. With `ServerSideApply=true` the webhook would
stay (another manager owns it): the README says what to do then.

kfgen to upstream: the upstream CRDs applied over kfgen's (server-side, as big CRDs need) are
accepted and kfgen's objects stay readable through the versions they were written in. (Emissary's upstream CRDs then route every other
version through their conversion webhook, emissary-apiext, which kfgen does not install; see the
README.)
"""

from __future__ import annotations

import copy
import json

import pytest

from .argocd_sync import load_folder, sync_environment
from .conftest import ENVIRONMENTS, UPSTREAM_CRDS, ident, upstream_crds
from .controlplane import ApiError
from .readback import leaves, lookup

EMISSARY_CRDS = UPSTREAM_CRDS / "emissary" / "emissary-crds.yaml"
STORED_KINDS = ("WorkflowTemplate", "CronWorkflow", "TFJob", "SeldonDeployment")


def all_upstream_crds() -> list[dict]:
    return upstream_crds() + load_folder(EMISSARY_CRDS.parent, recurse=False)


def install_as_upstream_documents(cluster, crds: list[dict]) -> None:
    """`kubectl apply -f` of the release manifests (client-side), except a CRD too big for the
    last-applied annotation (Seldon's chart CRD), which Helm creates as it is."""
    applier = cluster.applier("kubectl-client-side-apply")
    small = [c for c in crds if len(json.dumps(c)) < 200_000]
    applier.apply(small, server_side=False)
    big = [c for c in crds if len(json.dumps(c)) >= 200_000]
    for crd in big:
        cluster.api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    applier.wait_established(big)


def legacy_mapping(namespace: str) -> dict:
    """A Mapping as an upstream install stores it: getambassador.io/v2, its storage version."""
    return {"apiVersion": "getambassador.io/v2", "kind": "Mapping", "metadata": {"name": "legacy-route", "namespace": namespace},
            "spec": {"prefix": "/legacy/", "service": "legacy.default:80", "timeout_ms": 3000}}


def objects_to_store(render_objects: list[dict]) -> list[dict]:
    """One rendered object of each workload kind, renamed so the sync does not own it."""
    out = []
    for kind in STORED_KINDS:
        found = next((o for o in render_objects if o["kind"] == kind), None)
        if found:
            obj = copy.deepcopy(found)
            obj["metadata"] = {"name": f"pre-existing-{obj['metadata']['name']}", "namespace": obj["metadata"]["namespace"]}
            out.append(obj)
    return out


def readable(api, obj: dict) -> str | None:
    """None if the object reads back with the fields it was written with, else why not."""
    try:
        stored = api.get(obj)
    except ApiError as error:
        return f"{ident(obj)}: not readable: {error}"
    lost = [".".join(path) for path, value in leaves(obj["spec"], ("spec",)) if lookup(stored, path) != (True, value)]
    return f"{ident(obj)}: fields lost or changed: {lost}" if lost else None


@pytest.mark.parametrize("stack,env", [ENVIRONMENTS[0], ENVIRONMENTS[-1]], ids=lambda v: str(v))
def test_kfgen_syncs_over_an_upstream_install(cluster, renders, stack, env):
    cluster.clean()
    cluster.dirty()
    install_as_upstream_documents(cluster, all_upstream_crds())
    installer = cluster.applier("upstream-install")
    render_objects = load_folder(renders[stack] / "rendered" / env)
    stored = objects_to_store(render_objects)
    namespaces = sorted({o["metadata"]["namespace"] for o in stored})
    installer.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in namespaces])
    stored.append(legacy_mapping(namespaces[0]))
    for obj in stored:
        cluster.api.request("POST", cluster.api.path(obj, collection=True), obj)

    # As the rendered Applications ask: Argo CD's client-side apply (none sets ServerSideApply=true).
    sync_environment(renders[stack], env, cluster.applier(), as_rendered=True)  # raises on any refusal

    problems = []
    for obj in stored:
        if obj["apiVersion"] == "getambassador.io/v2":  # kfgen serves v3alpha1: read it there
            obj = {**obj, "apiVersion": "getambassador.io/v3alpha1"}
        problem = readable(cluster.api, obj)
        if problem:
            problems.append(problem)
    for crd in cluster.api.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]:
        listed = {v["name"] for v in crd["spec"]["versions"]}
        if not set(crd["status"].get("storedVersions", [])) <= listed:
            problems.append(f"{crd['metadata']['name']}: storedVersions {crd['status']['storedVersions']} not all in {sorted(listed)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stack,env", [ENVIRONMENTS[0]], ids=lambda v: str(v))
def test_upstream_crds_apply_over_kfgen(cluster, renders, stack, env):
    synced = cluster.synced(stack, env)
    stored = objects_to_store(synced.objects)
    for obj in stored:
        cluster.api.request("POST", cluster.api.path(obj, collection=True), obj)
    cluster.dirty()
    cluster.applier("upstream-install").apply(all_upstream_crds())
    problems = [p for obj in stored if (p := readable(cluster.api, obj))]
    mappings = [o for o in synced.objects if o["kind"] == "Mapping"]
    # kfgen's Mappings were stored as v3alpha1 and read back there without the conversion webhook.
    problems += [p for obj in mappings if (p := readable(cluster.api, obj))]
    assert not problems, "\n".join(problems)
