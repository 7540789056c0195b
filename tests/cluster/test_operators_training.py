"""The platform comes up (issue 12): the Kubeflow training operator v1.8.1, run as rendered, does its job.

The operator runs from the locally built binary with its rendered Deployment's args, env, volumes
and ServiceAccount (operators.py). The order is Argo CD's: the TFJobs are in a later sync wave
than the operator, so Argo CD waits for the operator's Deployment to be healthy before it sends
them; here the TFJobs the sync created are deleted, the operator started, its webhook
configuration applied as rendered, and then the TFJobs applied again through the webhook
(`failurePolicy: Fail`: a TFJob the webhook did not admit is not stored).

Expectations come from upstream v1.8.1 (paths at the tag):
- pods and Services are named `<job>-<replica type, lowercased>-<index>` (pkg/core/utils.go:30,
  GenGeneralName), one each per replica (pkg/controller.v1/common/pod.go, service.go);
- TF_CONFIG is set on the container named `tensorflow` of a distributed job
  (pkg/controller.v1/tensorflow/tfjob_controller.go:556-590, SetClusterSpec): the real operator's
  value is the oracle for `kfgen tfjob tf-config`, byte for byte;
- the webhook (pkg/webhooks/tensorflow/tfjob_webhook.go:87-130) refuses a replica without a
  container named `tensorflow`, with that message: proof that the webhook the API server called is
  the operator's own.
"""

from __future__ import annotations

import contextlib
import copy
import io

import pytest

from kfgen.cli import main as kfgen

from . import build
from .conftest import ROOT, ident
from .controlplane import ApiError
from .operators import Operators

DEPLOYMENT = "training-operator"
# Only probes and metrics are moved (flags of cmd/training-operator.v1/main.go, v1.8.1); the webhook stays on 9443.
MOVED = {8080: "--metrics-bind-address=:{port}", 8081: "--health-probe-bind-address=:{port}"}
WEBHOOK_DENIAL = "must have at least one container with name tensorflow"


@pytest.fixture(scope="module")
def training(cluster, environment, tmp_path_factory):
    """The environment synced, the operator running as rendered, the TFJobs applied again after it is ready."""
    synced = cluster.synced(*environment)
    tfjobs = [o for o in synced.objects if o["kind"] == "TFJob"]
    if not tfjobs:
        pytest.skip("no TFJobs in this environment")
    with Operators(cluster, synced, tmp_path_factory.mktemp("training")) as operators:
        operators.withdraw(tfjobs)
        operators.apply_webhooks(DEPLOYMENT)
        operator = operators.start(DEPLOYMENT, build.binary("training-operator"), moved=MOVED)
        cluster.applier().apply(tfjobs)
        yield operators, operator, tfjobs


def replicas(tfjob: dict) -> list[tuple[str, int]]:
    """(replica type as written, index) for every replica; an unset count is 1 (the operator's default)."""
    return [(rtype, i) for rtype, spec in tfjob["spec"]["tfReplicaSpecs"].items() for i in range(spec.get("replicas", 1))]


def replica_name(tfjob: dict, rtype: str, index: int) -> str:
    return f"{tfjob['metadata']['name']}-{rtype.lower()}-{index}"


def test_every_replica_gets_its_pod_and_service(training):
    operators, operator, tfjobs = training
    api = operators.api
    for job in tfjobs:
        namespace = job["metadata"]["namespace"]
        for rtype, index in replicas(job):
            name = replica_name(job, rtype, index)
            for plural in ("pods", "services"):
                path = f"/api/v1/namespaces/{namespace}/{plural}/{name}"
                operator.wait_for(f"{plural[:-1]} {namespace}/{name} of {ident(job)}", lambda p=path: api.exists(p), 180)
    for job in tfjobs:  # nothing more than the replicas
        namespace = job["metadata"]["namespace"]
        selector = f"training.kubeflow.org/job-name={job['metadata']['name']}"
        pods = api.request("GET", f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": selector})["items"]
        assert sorted(p["metadata"]["name"] for p in pods) == sorted(replica_name(job, t, i) for t, i in replicas(job)), ident(job)


def tf_config_by_kfgen(cluster, stack: str, env: str, job: str, replica: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = kfgen(["tfjob", "tf-config", str(ROOT / "stacks" / stack / "stack.yaml"), "--env", env, "--job", job,
                      "--replica", replica, "--out", str(cluster.renders[stack])])
    assert code == 0, f"kfgen tfjob tf-config --job {job} --replica {replica} exited {code}"
    return out.getvalue()


def test_tf_config_in_each_pod_is_what_kfgen_prints(training, cluster, environment):
    operators, operator, tfjobs = training
    stack, env = environment
    compared = 0
    for job in tfjobs:
        namespace = job["metadata"]["namespace"]
        for rtype, index in replicas(job):
            name = replica_name(job, rtype, index)
            pod = operator.wait_for(f"pod {namespace}/{name}", lambda n=name: operators.api.request(
                "GET", f"/api/v1/namespaces/{namespace}/pods/{n}"), 180)
            container = next(c for c in pod["spec"]["containers"] if c["name"] == "tensorflow")
            in_pod = next((e["value"] for e in container.get("env") or [] if e["name"] == "TF_CONFIG"), None)
            printed = tf_config_by_kfgen(cluster, stack, env, job["metadata"]["name"], f"{rtype.lower()}:{index}")
            assert printed == ("" if in_pod is None else in_pod + "\n"), f"{namespace}/{name}"
            compared += in_pod is not None
    assert compared, "no pod carries a TF_CONFIG: nothing was compared"


def test_the_webhook_admits_the_rendered_tfjobs_and_refuses_an_invalid_one(training):
    operators, operator, tfjobs = training
    api = operators.api
    for configuration in operators.webhook_configurations(operator.deployment):
        stored = api.get(configuration)
        assert all(w["clientConfig"].get("caBundle") for w in stored["webhooks"]), f"{ident(configuration)}: no CA injected"
        assert [w["failurePolicy"] for w in stored["webhooks"]] == ["Fail"] * len(stored["webhooks"])
    for job in tfjobs:  # applied after the webhook was in force (failurePolicy Fail): stored means admitted
        assert api.get(job)["spec"]["tfReplicaSpecs"].keys() == job["spec"]["tfReplicaSpecs"].keys()
    probe = copy.deepcopy(tfjobs[0])
    probe["metadata"] = {"name": f"{probe['metadata']['name']}-no-tensorflow", "namespace": probe["metadata"]["namespace"]}
    for spec in probe["spec"]["tfReplicaSpecs"].values():
        for container in spec["template"]["spec"]["containers"]:
            container["name"] = "trainer"
    with pytest.raises(ApiError) as refused:
        api.request("POST", api.path(probe, collection=True), probe, query={"dryRun": "All"})
    assert 'admission webhook "validator.tfjob.training-operator.kubeflow.org" denied the request' in str(refused.value)
    assert WEBHOOK_DENIAL in str(refused.value)


def test_no_forbidden_or_unknown_field_in_its_log(training):
    operators, operator, tfjobs = training
    assert not operator.problems(), "\n".join(operator.problems(0))
