"""Served models as SeldonDeployments, each with its routes through the gateway at /models/<name>/
(or the stack's prefix): one predictor, `default`, or one per version of the model (a traffic
split), each version's route weighted by its share, a shadow's route mirroring the traffic."""

from __future__ import annotations

from kfgen.accelerators import image_variant
from kfgen.components.ambassador.mappings import mapping
from kfgen.components.pods import container_security, env_list, workload_security, workload_service_account
from kfgen.components.seldon_core.servers import TF_SERVING
from kfgen.context import RenderContext
from kfgen.model import ModelVersion, ServedModel
from kfgen.objects import Obj, meta, network_policy, obj
from kfgen.vocabulary import ACCELERATOR_LABEL, REPLICA_ACCELERATOR_PREFIX, WORKLOAD_LABEL

SERVICE_ACCOUNT = "ml-serving"
EXECUTOR_PORT = 8000  # Seldon's executor serves REST for the whole graph
PREDICTOR_PODS = {"matchExpressions": [{"key": "seldon-deployment-id", "operator": "Exists"}]}  # Seldon labels every predictor pod
MAX_PREDICTORS = 3  # versions of one model (e.g. stable, canary and a shadow)


def predictor_label(index: int) -> str:
    """The label by which a predictor asks for its accelerator class: the first one as any workload does."""
    return ACCELERATOR_LABEL if index == 0 else f"{REPLICA_ACCELERATOR_PREFIX}predictor-{index}"


def predictor_service(model: ServedModel, version: ModelVersion) -> str:
    """The Service Seldon creates for a predictor (named <sdep>-<predictor>)."""
    return f"{model.name}-{version.name}"


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
            objects += routes(model, ctx)
    return objects


def routes(model: ServedModel, ctx: RenderContext) -> list[Obj]:
    """One Mapping per predictor on the model's prefix: weighted by each version's traffic, a shadow's mirroring it."""
    ns, gateway = ctx.workloads.namespace, ctx.component("ambassador")
    split = len(model.predictors()) > 1
    found = []
    for version in model.predictors():
        extra: dict = {}
        if split:
            extra = {"shadow": True} if version.shadow else {"weight": version.traffic}
        route = mapping(f"model-{model.name}" + (f"-{version.name}" if split else ""), ns, gateway.settings.hostname,
                        model.route.prefix, f"{predictor_service(model, version)}.{ns}:{EXECUTOR_PORT}",
                        timeout_ms=model.route.timeout_ms, labels={WORKLOAD_LABEL: model.name},
                        annotations=ctx.risk_annotations("public-routes"))
        route["spec"].update(extra)
        found.append(route)
    return found


def seldon_deployment(model: ServedModel, ctx: RenderContext) -> Obj:
    labels = {WORKLOAD_LABEL: model.name}
    predictors = []
    for index, version in enumerate(model.predictors()):
        if model.accelerator:
            labels[predictor_label(index)] = model.accelerator
        predictors.append(_predictor(model, version, ctx, traffic=len(model.predictors()) > 1))
    return obj("machinelearning.seldon.io/v1", "SeldonDeployment", meta(model.name, ctx.workloads.namespace, labels=labels),
               spec={"annotations": {"seldon.io/rest-timeout": str(model.route.timeout_ms)}, "predictors": predictors,
                     "protocol": model.protocol})


def _predictor(model: ServedModel, version: ModelVersion, ctx: RenderContext, traffic: bool) -> Obj:
    klass = ctx.accelerator(model.accelerator)
    # the graph node (and its container) is named after the model: TF Serving serves it as /v1/models/<model>
    graph: Obj = {"name": model.name, "type": "MODEL"}
    server: Obj = {"name": model.name}
    if model.server != "CUSTOM":
        graph["implementation"] = model.server
        graph["modelUri"] = version.model_uri
    if model.credentials_secret:
        graph["envSecretRefName"] = model.credentials_secret
    if version.image:
        server["image"] = image_variant(version.image, klass)
    elif model.server == "TENSORFLOW_SERVER" and klass:
        # Seldon runs the CPU image from its ConfigMap; on an accelerator with a variant (-gpu), name it here
        seldon = ctx.component("seldon-core")
        default = f"{TF_SERVING}:{seldon.settings.tf_serving_version}"
        if image_variant(default, klass) != default:
            server["image"] = seldon.mirror.rewrite(image_variant(default, klass))  # a server image of Seldon's: its mirror
    if model.env:
        server["env"] = env_list(model.env)
    server["resources"] = model.resources.as_dict()
    server["securityContext"] = container_security()
    pod_labels = {WORKLOAD_LABEL: model.name, **ctx.identity_pod_labels("serving")}
    component: Obj = {
        "metadata": {"labels": dict(sorted(pod_labels.items()))},
        "spec": {"automountServiceAccountToken": False, "containers": [server], "nodeSelector": {"kubernetes.io/os": "linux"},
                 "securityContext": workload_security(), "serviceAccountName": SERVICE_ACCOUNT},
    }
    if model.autoscaling:
        component["hpaSpec"] = _hpa_spec(model)
    predictor: Obj = {"componentSpecs": [component], "graph": graph, "name": version.name, "replicas": version.replicas}
    if version.shadow:
        predictor["shadow"] = True
    elif traffic:
        predictor["traffic"] = version.traffic
    return predictor


def _hpa_spec(model: ServedModel) -> Obj:
    """Seldon's hpaSpec: autoscaling/v2 metrics (`metricsv2`) on CPU use and/or a metric of the pods."""
    scaling = model.autoscaling
    assert scaling is not None
    metrics = []
    if scaling.cpu_utilization:
        metrics.append({"resource": {"name": "cpu", "target": {"averageUtilization": scaling.cpu_utilization, "type": "Utilization"}},
                        "type": "Resource"})
    if scaling.metric:
        name, value = scaling.metric
        metrics.append({"pods": {"metric": {"name": name}, "target": {"averageValue": value, "type": "AverageValue"}}, "type": "Pods"})
    return {"maxReplicas": scaling.max_replicas, "metricsv2": metrics, "minReplicas": scaling.min_replicas}
