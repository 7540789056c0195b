"""How kfgen's Argo Workflows differs from upstream's cluster install (manifests/cluster-install), and why.
The parity test (tests/test_parity.py) fails on any other difference."""

from __future__ import annotations

from kfgen.components.package import Deviation
from kfgen.components.shared_deviations import crd_schemas, hardening, namespace

CONTROLLER = "spec.template.spec.containers[workflow-controller]"
SERVER = "spec.template.spec.containers[argo-server]"

DEVIATIONS = (
    namespace("argo"),
    crd_schemas("argoproj.io"),
    Deviation("ConfigMap", "workflow-controller-configmap", "data",
              "upstream's is empty; kfgen sets the executor's resources and restricted security context (so pipeline pods pass "
              "the workload namespace's Pod Security level), pod GC and a TTL for finished workflows, and per environment the "
              "artifact repository"),
    Deviation("Deployment", "workflow-controller", f"{CONTROLLER}.args",
              "--executor-image names the executor image the controller would derive from its own version, so an imageRegistry "
              "mirror rewrites it and `kfgen images` lists it"),
    Deviation("Deployment", "workflow-controller", f"{CONTROLLER}.readinessProbe",
              "a readiness probe on every long-running container (checkov CKV_K8S_9), on the /healthz the liveness probe uses"),
    Deviation("Deployment", "argo-server", f"{SERVER}.livenessProbe",
              "a liveness probe on every long-running container (checkov CKV_K8S_8), on the / (HTTPS) the readiness probe uses"),
    Deviation("Service", "workflow-controller-metrics", "*",
              "a Service for the controller's Prometheus metrics (port 9090), which upstream's install leaves out"),
    *hardening(("Deployment", "workflow-controller"), ("Deployment", "argo-server"), node_selector=False),
)
