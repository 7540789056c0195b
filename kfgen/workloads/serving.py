"""Served models as SeldonDeployments (one predictor, `default`), each with a v3alpha1 Mapping
through the gateway at /models/<name>/ (or the stack's prefix)."""

from __future__ import annotations

from kfgen.accelerators import image_variant
from kfgen.catalog.gateway import mapping
from kfgen.catalog.objects import Obj, meta, obj
from kfgen.catalog.view import View
from kfgen.model import ServedModel
from kfgen.workloads.pods import (ACCELERATOR_LABEL, WORKLOAD_LABEL, container_security, env_list, workload_security,
                                  workload_service_account)

SERVICE_ACCOUNT = "ml-serving"
PREDICTOR = "default"
EXECUTOR_PORT = 8000  # Seldon's executor serves REST for the whole graph


def predictor_service(model: ServedModel) -> str:
    """The Service Seldon creates for the predictor (named <sdep>-<predictor>)."""
    return f"{model.name}-{PREDICTOR}"


def serving_objects(view: View) -> list[Obj]:
    ns = view.workloads.namespace
    models = view.workloads.enabled("serving")
    if not models:
        return []
    objects = [workload_service_account(view, SERVICE_ACCOUNT, "serving")]
    gateway = view.component("ambassador")
    for model in models:
        objects.append(seldon_deployment(model, view))
        if model.route.enabled and gateway.enabled:
            objects.append(mapping(f"model-{model.name}", ns, gateway.settings["hostname"], model.route.prefix,
                                   f"{predictor_service(model)}.{ns}:{EXECUTOR_PORT}", timeout_ms=model.route.timeout_ms,
                                   labels={WORKLOAD_LABEL: model.name}))
    return objects


def seldon_deployment(model: ServedModel, view: View) -> Obj:
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
        server["image"] = image_variant(model.image, view.accelerator(model.accelerator))
    if model.env:
        server["env"] = env_list(model.env)
    server["resources"] = model.resources.as_dict()
    server["securityContext"] = container_security()
    pod_labels = {WORKLOAD_LABEL: model.name, **view.identity_pod_labels("serving")}
    component = {
        "metadata": {"labels": dict(sorted(pod_labels.items()))},
        "spec": {"automountServiceAccountToken": False, "containers": [server], "nodeSelector": {"kubernetes.io/os": "linux"},
                 "securityContext": workload_security(), "serviceAccountName": SERVICE_ACCOUNT},
    }
    predictor = {"componentSpecs": [component], "graph": graph, "name": PREDICTOR, "replicas": model.replicas}
    return obj("machinelearning.seldon.io/v1", "SeldonDeployment", meta(model.name, view.workloads.namespace, labels=labels),
               spec={"annotations": {"seldon.io/rest-timeout": str(model.route.timeout_ms)}, "predictors": [predictor],
                     "protocol": model.protocol})
