"""The platform comes up (issue 12): Seldon Core v1's manager, run as rendered, serves every model.

The manager runs from the locally built binary (operators.py) with its rendered Deployment's args,
env, volumes and ServiceAccount. The module proxy does not serve operator v1.17.1, so the binary is
v1.16.0 (build.py says so); where the two differ in what is tested here it is said below.

The rendered install makes the webhook's certificate with a Job (kube-webhook-certgen, an Argo CD
Sync hook) whose image cannot run here: the test plays its two steps with openssl, as its rendered
args say: `create` (a CA and a serving certificate for the `--host` names, stored in the Secret
`--secret-name` under `--cert-name`, `--key-name` and `ca`), then `patch` (the CA as caBundle of
the webhook configuration `--webhook-name`). The order is Argo CD's: the SeldonDeployments are in a
later sync wave than the operator, so they are deleted, the manager started, the webhook configuration
applied as rendered, and then the SeldonDeployments applied again through the webhook (`failurePolicy:
Fail`: one the webhook did not admit is not stored).

Expectations come from upstream's operator source (paths under operator/ at v1.16.0 and v1.17.1):
- every predictor gets a Deployment `<sdep>-<predictor>-<index>-<containers>` owned by the
  SeldonDeployment (apis/machinelearning.seldon.io/v1/seldondeployment_types.go GetDeploymentName),
  with its executor `seldon-container-engine` (controllers/seldondeployment_engine.go) and, for a
  prepackaged server, the init container `<container>-model-initializer`
  (controllers/model_initializer_injector.go);
- the predictor's Service is `<sdep>-<predictor>` (GetPredictorKey) on the executor's port: what
  the rendered Mapping must name;
- the webhook (v1 ValidateCreate in seldondeployment_webhook.go) logs each call and refuses a single
  predictor whose traffic is set below 100 with "Traffic must sum be 100 for a single predictor when
  set": proof that the webhook the API server called is the manager's own;
- the executor's securityContext is runAsUser and allowPrivilegeEscalation only, the initializer's
  none, so `restricted` refuses both (and nothing of kfgen's); the pod-level context is kfgen's
  under 1.17.1 and {runAsUser: DEFAULT_USER_ID} under 1.16.0 (createDeploymentWithoutEngine), which
  changes which rules they break, not which containers break them.
"""

from __future__ import annotations

import copy
import http.client
import json
import re
import ssl
import time
import uuid
from dataclasses import dataclass

import pytest

from . import build
from .conftest import ident
from .controlplane import ApiError
from .operators import Operators, inject_ca_bundle, label_selector, serving_certificate, wait_until

DEPLOYMENT = "seldon-controller-manager"
CERTGEN = "seldon-webhook-certgen"
# Only the metrics port (the probes ask /metrics there) is moved: main.go's --metrics-addr; the
# webhook stays on --webhook-port=4443, which the Service targets.
MOVED = {8080: "--metrics-addr=:{port}"}
ENGINE = "seldon-container-engine"
INITIALIZER_SUFFIX = "-model-initializer"
WEBHOOK = "v1.vseldondeployment.kb.io"
WEBHOOK_CALLED = "Validating v1 Webhook called for CREATE"
MUTATE_PATH = "/mutate-machinelearning-seldon-io-v1-seldondeployment"
SINGLE_TRAFFIC = "Traffic must sum be 100 for a single predictor when set"
RESTRICTED_PROBE = "kfgen-restricted-probe"
WAIT = 180  # generous: two cores shared with other control planes; every wait fails, never hangs


@dataclass
class Serving:
    operators: Operators
    operator: object  # operators.Operator: the manager
    sdeps: list[dict]
    ca: bytes  # the webhook certificate's CA (certgen's)


@pytest.fixture(scope="module")
def serving(cluster, environment, tmp_path_factory) -> Serving:
    """The environment synced, the manager running as rendered, the SeldonDeployments applied again through its webhook."""
    synced = cluster.synced(*environment)
    sdeps = [o for o in synced.objects if o["kind"] == "SeldonDeployment"]
    assert sdeps, "every environment of the examples serves a model"
    api = cluster.api
    folder = tmp_path_factory.mktemp("serving")
    with Operators(cluster, synced, folder) as operators:
        operators.withdraw(sdeps)
        ca = certgen_create(operators, folder / "certgen")
        operator = operators.start(DEPLOYMENT, build.binary("seldon-manager"), moved=MOVED)
        for configuration in operators.apply_webhooks(DEPLOYMENT):
            certgen_patch(operators, configuration, ca)
        cluster.applier().apply(sdeps)
        for sdep in sdeps:
            for predictor in sdep["spec"]["predictors"]:
                name = deployment_name(sdep, predictor)
                operator.wait_for(f"Deployment {sdep['metadata']['namespace']}/{name} of {ident(sdep)}",
                                  lambda n=name, s=sdep: api.exists(f"/apis/apps/v1/namespaces/{s['metadata']['namespace']}/deployments/{n}"),
                                  WAIT)
        operator.settled = time.monotonic()  # the log is read a fixed time after the models are reconciled
        yield Serving(operators, operator, sdeps, ca)


# --- the certificate Job's two steps, as its rendered args say ----------------------------------------

def certgen_args(operators: Operators, step: str) -> dict[str, str]:
    """The rendered certgen Job's flags of its `create` or `patch` container, as {flag: value}."""
    (job,) = operators.rendered("Job", CERTGEN)
    pod = job["spec"]["template"]["spec"]
    (container,) = [c for c in pod.get("initContainers", []) + pod["containers"] if c["args"][0] == step]
    return dict(a.removeprefix("--").split("=", 1) for a in container["args"][1:])


def certgen_create(operators: Operators, folder) -> bytes:
    """kube-webhook-certgen `create`: a CA and a serving certificate for --host, stored in --secret-name."""
    args = certgen_args(operators, "create")
    pem = serving_certificate(folder, args["host"].split(","))
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": args["secret-name"], "namespace": args["namespace"]},
              "stringData": {args["cert-name"]: pem["tls.crt"].decode(), args["key-name"]: pem["tls.key"].decode(),
                             "ca": pem["ca.crt"].decode()}}
    operators.api.request("POST", f"/api/v1/namespaces/{args['namespace']}/secrets", secret)
    return pem["ca.crt"]


def certgen_patch(operators: Operators, configuration: dict, ca: bytes) -> None:
    """kube-webhook-certgen `patch`: the CA as the caBundle of the webhook configuration it names."""
    args = certgen_args(operators, "patch")
    assert configuration["metadata"]["name"] == args["webhook-name"], "the Job patches another webhook configuration"
    assert configuration["kind"] == "ValidatingWebhookConfiguration" and args["patch-validating"] == "true"
    inject_ca_bundle(operators.api, configuration, ca)


# --- upstream's names ---------------------------------------------------------------------------

def deployment_name(sdep: dict, predictor: dict) -> str:
    """GetDeploymentName for the predictor's first componentSpec (kfgen writes one, with no metadata.name)."""
    containers = predictor["componentSpecs"][0]["spec"]["containers"]
    return f"{sdep['metadata']['name']}-{predictor['name']}-0-{'-'.join(c['name'] for c in containers)}"


def owned_by(obj: dict, sdep: dict) -> bool:
    return any(o["kind"] == "SeldonDeployment" and o["name"] == sdep["metadata"]["name"] and o.get("controller")
               for o in obj["metadata"].get("ownerReferences") or [])


def stored_deployment(api, sdep: dict, predictor: dict) -> dict:
    return api.request("GET", f"/apis/apps/v1/namespaces/{sdep['metadata']['namespace']}/deployments/{deployment_name(sdep, predictor)}")


def model_container(predictor: dict) -> str:
    """The container that serves the graph's model: the graph node of kfgen's one-model graphs."""
    return predictor["graph"]["name"]


# --- the tests ----------------------------------------------------------------------------------

def test_the_webhook_admits_every_rendered_seldondeployment(serving):
    """Applied again as Argo CD syncs them, every SeldonDeployment is stored, and the manager's log shows its webhook was asked."""
    operators, operator, sdeps = serving.operators, serving.operator, serving.sdeps
    for sdep in sdeps:
        assert operators.api.exists(operators.api.path(sdep)), ident(sdep)
    called = {entry.get("name") for entry in log_entries(operator) if entry.get("msg") == WEBHOOK_CALLED}
    assert {s["metadata"]["name"] for s in sdeps} <= called, f"webhook calls logged for {sorted(called)}"


def test_the_webhook_refuses_what_seldons_validation_refuses(serving):
    """A rendered SeldonDeployment with its single predictor's traffic set to 40: the manager's webhook denies it."""
    operators, sdeps = serving.operators, serving.sdeps
    invalid = copy.deepcopy(sdeps[0])
    invalid["metadata"]["name"] += "-invalid"
    invalid["spec"]["predictors"] = invalid["spec"]["predictors"][:1]
    invalid["spec"]["predictors"][0]["traffic"] = 40
    with pytest.raises(ApiError) as refused:
        operators.api.request("POST", operators.api.path(invalid, collection=True), invalid, query={"dryRun": "All"})
    assert WEBHOOK in str(refused.value) and SINGLE_TRAFFIC in str(refused.value), str(refused.value)


def test_the_managers_mutating_path_is_served_and_admits(serving):
    """The manager also serves its v1 Defaulter at MUTATE_PATH (main.go registers the v1 type's webhooks);
    upstream's chart (templates/webhook.yaml, 1.17.1) and kfgen register only the validating webhook, so
    no API server calls it. Asked as the API server would ask it, through the webhook Service's
    endpoint and certificate, it admits every rendered SeldonDeployment."""
    operators, sdeps = serving.operators, serving.sdeps
    (configuration,) = operators.webhook_configurations(operators.deployment(DEPLOYMENT))
    reference = configuration["webhooks"][0]["clientConfig"]["service"]
    (service,) = operators.rendered("Service", reference["name"], reference["namespace"])
    (port,) = [p["targetPort"] for p in service["spec"]["ports"] if p["port"] == reference.get("port", 443)]
    context = ssl.create_default_context(cadata=serving.ca.decode())
    for sdep in sdeps:
        uid = str(uuid.uuid4())
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": uid, "kind": {"group": "machinelearning.seldon.io", "version": "v1", "kind": "SeldonDeployment"},
            "resource": {"group": "machinelearning.seldon.io", "version": "v1", "resource": "seldondeployments"},
            "name": sdep["metadata"]["name"], "namespace": sdep["metadata"]["namespace"], "operation": "CREATE",
            "userInfo": {"username": "kfgen-test"}, "object": sdep, "dryRun": True}}
        connection = ServiceConnection(operators.address, port, f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc",
                                       context)
        try:
            connection.request("POST", MUTATE_PATH, json.dumps(review), {"Content-Type": "application/json"})
            response = connection.getresponse()
            body = response.read().decode(errors="replace")
        finally:
            connection.close()
        assert response.status == 200, f"POST {MUTATE_PATH}: HTTP {response.status}: {body[:200]}"
        answer = json.loads(body)["response"]
        assert answer["uid"] == uid and answer["allowed"] is True, f"{ident(sdep)}: {answer}"


def test_every_predictor_gets_its_deployment_with_seldons_containers(serving):
    operators, sdeps = serving.operators, serving.sdeps
    for sdep in sdeps:
        for predictor in sdep["spec"]["predictors"]:
            deployment = stored_deployment(operators.api, sdep, predictor)
            assert owned_by(deployment, sdep), f"{ident(deployment)} is not controlled by {ident(sdep)}"
            pod = deployment["spec"]["template"]["spec"]
            container = model_container(predictor)
            assert {c["name"] for c in pod["containers"]} == {container, ENGINE}, ident(sdep)
            assert [c["name"] for c in pod.get("initContainers", [])] == [container + INITIALIZER_SUFFIX], ident(sdep)


def test_each_models_route_reaches_a_service_of_its_predictor(serving):
    """The rendered Mapping's `service` (name.namespace:port) is a Service the manager made, whose port is
    that port and whose selector picks the predictor's pods on a port of its executor."""
    operators, sdeps = serving.operators, serving.sdeps
    by_name = {s["metadata"]["name"]: s for s in sdeps}
    mappings = [m for m in operators.rendered("Mapping") if (m["metadata"].get("labels") or {}).get("kfgen.io/workload") in by_name]
    assert len(mappings) >= len(sdeps), "a served model without its Mapping"
    for mapping in mappings:
        sdep = by_name[mapping["metadata"]["labels"]["kfgen.io/workload"]]
        host, _, port = mapping["spec"]["service"].removeprefix("http://").partition(":")
        name, _, namespace = host.partition(".")
        namespace = namespace.removesuffix(".svc").removesuffix(".svc.cluster.local") or mapping["metadata"]["namespace"]
        path = f"/api/v1/namespaces/{namespace}/services/{name}"
        service = wait_until(lambda p=path: operators.api.request("GET", p) if operators.api.exists(p) else None, WAIT,
                             f"Service {namespace}/{name} that Mapping {mapping['metadata']['name']} routes to")
        assert owned_by(service, sdep), f"Service {namespace}/{name} is not controlled by {ident(sdep)}"
        (served,) = [p for p in service["spec"]["ports"] if p["port"] == int(port or 80)] or [None]
        assert served, f"Service {namespace}/{name} has no port {port}: {service['spec']['ports']}"
        picked = []
        for predictor in sdep["spec"]["predictors"]:
            template = stored_deployment(operators.api, sdep, predictor)["spec"]["template"]
            labels = template["metadata"].get("labels") or {}
            if all(labels.get(k) == v for k, v in service["spec"]["selector"].items()):
                engine = next(c for c in template["spec"]["containers"] if c["name"] == ENGINE)
                ports = {p["containerPort"] for p in engine.get("ports", [])} | {p.get("name") for p in engine.get("ports", [])}
                assert served["targetPort"] in ports, f"{namespace}/{name} targets {served['targetPort']}, not a port of {ENGINE}"
                picked.append(predictor["name"])
        assert picked, f"Service {namespace}/{name} selects no predictor's pods of {ident(sdep)}"


def test_every_predictor_gets_its_pods_admitted(serving):
    """The ReplicaSet controller creates each predictor Deployment's pods: Pod Security admits them (no FailedCreate)."""
    operators, sdeps = serving.operators, serving.sdeps
    api = operators.api
    for sdep in sdeps:
        namespace = sdep["metadata"]["namespace"]
        for predictor in sdep["spec"]["predictors"]:
            deployment = stored_deployment(api, sdep, predictor)
            selector = label_selector(deployment)
            want = deployment["spec"].get("replicas", 1)

            def created(selector=selector, prefix=deployment["metadata"]["name"] + "-"):
                refused = [e["message"] for e in api.request("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
                           if e.get("reason") == "FailedCreate" and e["involvedObject"]["name"].startswith(prefix)]
                assert not refused, "\n".join(refused)
                return len(api.request("GET", f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": selector})["items"]) >= want

            wait_until(created, WAIT, f"{want} pods of Deployment {namespace}/{deployment['metadata']['name']}")


def test_restricted_refuses_seldons_containers_and_nothing_else(serving):
    """Why the workload namespace enforces `baseline` (kfgen/components/seldon_core/deviations.py): each
    predictor's pod, as the manager writes it, dry-run in a namespace that enforces `restricted`, is
    refused for the executor and the model initializer alone."""
    operators, sdeps = serving.operators, serving.sdeps
    api = operators.api
    probe_namespace(api, {s["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["serviceAccountName"] for s in sdeps})
    for sdep in sdeps:
        for predictor in sdep["spec"]["predictors"]:
            template = stored_deployment(api, sdep, predictor)["spec"]["template"]
            pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
                   "metadata": {"name": "probe", "namespace": RESTRICTED_PROBE, "labels": template["metadata"].get("labels", {})}}
            with pytest.raises(ApiError) as refused:
                api.request("POST", f"/api/v1/namespaces/{RESTRICTED_PROBE}/pods", pod, query={"dryRun": "All"})
            message = str(refused.value)
            assert 'violates PodSecurity "restricted:latest"' in message, message
            assert refused_containers(message) == {ENGINE, model_container(predictor) + INITIALIZER_SUFFIX}, message


def test_the_managers_log_has_no_forbidden_or_unknown_field(serving):
    assert serving.operator.problems() == []


# --- helpers ------------------------------------------------------------------------------------

def log_entries(operator) -> list[dict]:
    """The manager's JSON log lines (zap, production mode: --debug is off)."""
    out = []
    for line in operator.log().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


class ServiceConnection(http.client.HTTPConnection):
    """HTTPS to an endpoint's address, the certificate checked for the Service's DNS name, as the API
    server calls a webhook Service."""

    def __init__(self, address: str, port: int, hostname: str, context: ssl.SSLContext):
        super().__init__(address, port, timeout=30)
        self.hostname = hostname
        self.context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.hostname)


NAMED = re.compile(r'containers? ((?:"[^"]+"(?:, )?)+)')


def refused_containers(message: str) -> set[str]:
    """The containers a Pod Security refusal names (`container "a" must`, `containers "a", "b" must`)."""
    return {name for group in NAMED.findall(message) for name in re.findall(r'"([^"]+)"', group)}


def probe_namespace(api, accounts: set[str]) -> None:
    """A namespace enforcing `restricted`, with the ServiceAccounts the pods name (admission looks them up)."""
    labels = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "audit", "warn")}
    if not api.exists(f"/api/v1/namespaces/{RESTRICTED_PROBE}"):
        api.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": RESTRICTED_PROBE, "labels": labels}})
    for account in accounts:
        if not api.exists(f"/api/v1/namespaces/{RESTRICTED_PROBE}/serviceaccounts/{account}"):
            api.request("POST", f"/api/v1/namespaces/{RESTRICTED_PROBE}/serviceaccounts",
                        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}})
