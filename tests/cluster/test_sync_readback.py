"""Proof 1: every object of every environment is accepted, and reading it back gives what was sent.

The sync is Argo CD's (argocd_sync.py): server-side apply with its field manager, in its order,
CRDs Established before their custom resources, Argo CD's own objects included.

Webhook configurations: the rendered Validating/MutatingWebhookConfigurations call the operators'
Services, and the operators do not run in this tier (their pods are created, never started; the
operators themselves run in the next tier). Applied in their place, with `failurePolicy: Fail`,
they would refuse every TFJob and SeldonDeployment for want of an endpoint, which in a cluster
Argo CD's waves prevent by making the operator healthy first. So the sync holds them back to the
end, and a test of their own applies them, reads them back, and shows they are in force: a dry-run
create of one of the environment's own custom resources is sent to the rendered Service (the API
server routes webhooks through the Service's endpoints here, `--enable-aggregator-routing`) and
refused because no operator pod backs it, not because the Service is missing or misnamed.
"""

from __future__ import annotations

import copy

from .conftest import ident
from .controlplane import ApiError
from .readback import differences


def test_every_object_is_stored_as_sent(cluster, environment):
    synced = cluster.synced(*environment)
    assert len(synced.objects) > 20
    problems = []
    for obj in synced.objects:
        stored = cluster.api.get(obj)
        problems += [f"{ident(obj)}: {d}" for d in differences(obj, stored)]
    assert not problems, "\n".join(problems)


def test_no_warnings_from_the_api_server(cluster, environment):
    """Pod Security's warn level and deprecated APIs answer with warnings even when they admit."""
    synced = cluster.synced(*environment)
    assert not synced.warnings, "\n".join(synced.warnings)


def test_webhook_configurations_are_stored_and_call_the_rendered_services(cluster, environment):
    synced = cluster.synced(*environment)
    if not synced.held_back:
        return
    cluster.applier().apply(synced.held_back)
    problems = []
    for webhook_config in synced.held_back:
        stored = cluster.api.get(webhook_config)
        problems += [f"{ident(webhook_config)}: {d}" for d in differences(webhook_config, stored)]
        for webhook in webhook_config["webhooks"]:
            service = webhook["clientConfig"]["service"]
            target = matching_object(synced.objects, webhook["rules"])
            if target is None:
                continue
            probe = copy.deepcopy(target)
            probe["metadata"] = {"name": f"{target['metadata']['name']}-webhook-probe", "namespace": target["metadata"]["namespace"]}
            try:
                cluster.api.request("POST", cluster.api.path(probe, collection=True), probe, query={"dryRun": "All"})
                problems.append(f"{webhook['name']}: {ident(probe)} was admitted without calling the webhook")
            except ApiError as refused:
                message = str(refused)
                expected = f'no endpoints available for service "{service["name"]}"'
                if f'failed calling webhook "{webhook["name"]}"' not in message or expected not in message:
                    problems.append(f"{webhook['name']}: {ident(probe)} refused, but not by a call to "
                                    f"{service['namespace']}/{service['name']}: {message}")
    assert not problems, "\n".join(problems)


def matching_object(objects: list[dict], rules: list[dict]) -> dict | None:
    """An object of the environment that a CREATE would send to this webhook."""
    for obj in objects:
        group, _, version = obj["apiVersion"].rpartition("/")
        for rule in rules:
            if "CREATE" not in rule.get("operations", []) and "*" not in rule.get("operations", []):
                continue
            resources = rule.get("resources", [])
            plural = obj["kind"].lower() + "s"
            if group in rule.get("apiGroups", []) and (version in rule.get("apiVersions", []) or "*" in rule.get("apiVersions", [])) \
                    and (plural in resources or "*" in resources) and obj["metadata"].get("namespace"):
                return obj
    return None
