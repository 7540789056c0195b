"""Every checkov waiver kfgen writes on its own objects says something about the object; this test
checks that it is true of the object it is written on (a waiver whose reason stopped being true is
a hole in the policy, not an exception to it)."""

from __future__ import annotations

import pytest
from conftest import EXAMPLES, copy_stack
from test_network_policies import matches

from kfgen.render import render
from kfgen.rendered import rendered_objects
from kfgen.vocabulary import CHECKOV_SKIP


def pod_template(o: dict) -> dict | None:
    spec = o.get("spec") or {}
    return spec.get("template") if o["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet") else None


def granted(objects: list[dict], sa: str, ns: str) -> list[dict]:
    """The rules of every role bound to a ServiceAccount."""
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects if o["kind"] in ("Role", "ClusterRole")}
    rules = []
    for b in objects:
        if b["kind"] in ("RoleBinding", "ClusterRoleBinding") and any(
                s.get("kind") == "ServiceAccount" and s["name"] == sa and s["namespace"] == ns for s in b.get("subjects", [])):
            ref = b["roleRef"]
            role = roles.get((ref["kind"], b["metadata"].get("namespace") if ref["kind"] == "Role" else None, ref["name"]))
            rules += (role or {}).get("rules", [])
    return rules


def claims(o: dict, objects: list[dict]) -> dict[str, bool]:
    """For each check a waiver may name: is what the waiver says true of this object?"""
    template = pod_template(o)
    pod = (template or {}).get("spec") or {}
    containers = pod.get("containers", [])
    ns = o["metadata"].get("namespace")
    return {
        "CKV_K8S_43": bool(containers) and all("@sha256:" not in c["image"] for c in containers),  # pinned by tag, not digest
        "CKV2_K8S_6": template is not None and not any(
            p["kind"] == "NetworkPolicy" and p["metadata"]["namespace"] == ns and matches(p["spec"]["podSelector"], template["metadata"]["labels"])
            for p in objects),  # no NetworkPolicy selects these pods
        "CKV_K8S_38": pod.get("automountServiceAccountToken") is not False and bool(granted(objects, pod.get("serviceAccountName"), ns)),
        "CKV_K8S_40": any(0 < (c.get("securityContext", {}).get("runAsUser") or pod.get("securityContext", {}).get("runAsUser") or 0) < 10000
                          for c in containers),  # the image's own user, under 10000
        "CKV_K8S_22": any(c.get("securityContext", {}).get("readOnlyRootFilesystem") is False for c in containers),
        "CKV_K8S_155": o["kind"] == "ClusterRole" and any("validatingwebhookconfigurations" in r["resources"] and
                                                          {"update", "patch"} & set(r["verbs"]) for r in o["rules"]),
        "CKV2_K8S_5": o["kind"] == "ClusterRoleBinding" and any(
            "secrets" in r["resources"] for r in granted(objects, o["subjects"][0]["name"], o["subjects"][0]["namespace"])),
    }


@pytest.mark.parametrize("name", [p.name for p in EXAMPLES])
def test_every_waiver_kfgen_writes_is_true_of_its_object(tmp_path, name):
    out = render(copy_stack(name, tmp_path), tmp_path / "out").out
    checked = 0
    for env in sorted(p.name for p in (out / "rendered").iterdir()):
        objects = rendered_objects(out, env)
        for o in objects:
            skips = [v.split("=", 1)[0] for k, v in (o["metadata"].get("annotations") or {}).items() if k.startswith(CHECKOV_SKIP)]
            truth = claims(o, objects)
            for check in skips:
                assert check in truth, f"{env}: {o['kind']} {o['metadata']['name']}: no test of what the {check} waiver says"
                assert truth[check], f"{env}: {o['kind']} {o['metadata']['name']}: the {check} waiver's reason is not true of it"
                checked += 1
    assert checked > 50
