"""Served models as SeldonDeployments (one predictor, `default`), each with a v3alpha1 Mapping
through the gateway at /models/<name>/ (or the stack's prefix)."""

from __future__ import annotations

from kfgen.accelerators import image_variant
from kfgen.components.ambassador.mappings import mapping
from kfgen.components.pods import container_security, env_list, workload_security, workload_service_account
from kfgen.context import RenderContext
from kfgen.model import ServedModel
from kfgen.objects import Obj, meta, network_policy, obj
from kfgen.vocabulary import ACCELERATOR_LABEL, WORKLOAD_LABEL

SERVICE_ACCOUNT = "ml-serving"
PREDICTOR = "default"
EXECUTOR_PORT = 8000  # Seldon's executor serves REST for the whole graph
PREDICTOR_PODS = {"matchExpressions": [{"key": "seldon-deployment-id", "operator": "Exists"}]}  # Seldon labels every predictor pod


def predictor_service(model: ServedModel) -> str:
    """The Service Seldon creates for the predictor (named <sdep>-<predictor>)."""
    return f"{model.name}-{PREDICTOR}"


def serving_objects(ctx: RenderContext) -> list[Obj]:
    ns = ctx.workloads.namespace
    models = ctx.workloads.enabled("serving")
    if not models:
        return []
    objects = [workload_service_account(ctx, SERVICE_ACCOUNT, "serving")]
    gateway = ctx.component("ambassador")
    if gateway.enabled and any(m.route.enabled for m in models):
        objects.append(network_policy("allow-gateway-to-models", ns, PREDICTOR_PODS, ingress=[{
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": gateway.namespace}}}],
            "ports": [{"port": EXECUTOR_PORT, "protocol": "TCP"}]}]))
    for model in models:
        objects.append(seldon_deployment(model, ctx))
        if model.route.enabled and gateway.enabled:
            objects.append(mapping(f"model-{model.name}", ns, gateway.settings.hostname, model.route.prefix,
                                   f"{predictor_service(model)}.{ns}:{EXECUTOR_PORT}", timeout_ms=model.route.timeout_ms,
                                   labels={WORKLOAD_LABEL: model.name}, annotations=ctx.risk_annotations("public-routes")))
    return objects


def seldon_deployment(model: ServedModel, ctx: RenderContext) -> Obj:
    labels = {WORKLOAD_LABEL: model.name}
    if model.accelerator:
        labels[ACCELERATOR_LABEL] = model.accelerator
    graph: Obj = {"name": "model", "type": "MODEL"}
    server: Obj = {"name": "model"}
    if model.server != "CUSTOM":
        graph["implementation"] = model.server
        graph["modelUri"] = model.model_uri
    if model.credentials_secret:
        graph["envSecretRefName"] = model.credentials_secret
    if model.image:
        server["image"] = image_variant(model.image, ctx.accelerator(model.accelerator))
    if model.env:
        server["env"] = env_list(model.env)
    server["resources"] = model.resources.as_dict()
    server["securityContext"] = container_security()
    pod_labels = {WORKLOAD_LABEL: model.name, **ctx.identity_pod_labels("serving")}
    component = {
        "metadata": {"labels": dict(sorted(pod_labels.items()))},
        "spec": {"automountServiceAccountToken": False, "containers": [server], "nodeSelector": {"kubernetes.io/os": "linux"},
                 "securityContext": workload_security(), "serviceAccountName": SERVICE_ACCOUNT},
    }
    predictor = {"componentSpecs": [component], "graph": graph, "name": PREDICTOR, "replicas": model.replicas}
    return obj("machinelearning.seldon.io/v1", "SeldonDeployment", meta(model.name, ctx.workloads.namespace, labels=labels),
               spec={"annotations": {"seldon.io/rest-timeout": str(model.route.timeout_ms)}, "predictors": [predictor],
                     "protocol": model.protocol})
