"""How kfgen's Seldon Core v1 differs from upstream's Helm chart (helm-charts/seldon-core-operator, templated
with tests/parity/seldon-core.values.yaml), and why. The parity test (tests/test_parity.py) fails on any other
difference."""

from __future__ import annotations

from kfgen.components.package import Deviation
from kfgen.components.shared_deviations import CHECKOV_PROBES, HELM_LABELS, crd_schemas, hardening, namespace

CERTGEN = ("the webhook's certificate is made in the cluster by a kube-webhook-certgen Job (an Argo CD Sync hook) that creates "
           "the Secret and patches the caBundle: the chart's Helm genCA would put a private key in git")
OFF = ("the operator's Ambassador, Istio and KEDA integrations are off (AMBASSADOR_ENABLED, ISTIO_ENABLED, KEDA_ENABLED false: "
       "kfgen routes models with its own v3alpha1 Mappings), so the operator never touches these kinds")
MANAGER = "spec.template.spec.containers[manager]"

# Not a difference from the chart (which leaves namespaces to you) but from kfgen's own rule that every
# namespace enforces `restricted`; written on the workload namespace (kfgen.io/pod-security-reason).
# From the operator's source at v1.17.1 and v1.18.2: createEngineContainer (controllers/seldondeployment_engine.go)
# gives the executor {runAsUser: EXECUTOR_CONTAINER_USER, allowPrivilegeEscalation: false} and nothing else,
# InjectModelInitializer (controllers/model_initializer_injector.go) gives the initializer no securityContext, and
# neither reads anything of the SeldonDeployment that could add more (a container of the executor's name in the
# componentSpec makes the manager skip its executor altogether). The pod's securityContext is kfgen's since 1.17.0
# (createDeploymentWithoutEngine keeps one the SeldonDeployment sets; up to 1.16 it was replaced by
# {runAsUser: DEFAULT_USER_ID}), so runAsNonRoot and the seccomp profile hold: the missing capabilities drop is
# what `restricted` refuses (and the initializer's privilege escalation). `baseline` admits both.
WORKLOAD_POD_SECURITY = ("Seldon Core v1's manager adds containers to each model's pods that the `restricted` level refuses and "
                         "that a SeldonDeployment cannot change: its executor (seldon-container-engine, no capabilities dropped) "
                         "and the model initializer (<container>-model-initializer, no securityContext); the workload namespace "
                         "of an environment that serves models enforces `baseline`, still auditing and warning at `restricted`")

DEVIATIONS = (
    namespace("seldon-system"),
    crd_schemas("machinelearning.seldon.io"),
    Deviation("*", "*", "metadata.labels", HELM_LABELS),
    Deviation("Secret", "seldon-webhook-server-cert", "*", CERTGEN),
    Deviation("*", "seldon-webhook-certgen", "*", CERTGEN),
    Deviation("*", "seldon-webhook-certgen-seldon-system", "*", CERTGEN),
    *(Deviation("ClusterRole", "seldon-manager-role-seldon-system", f"rules[{group}:*]", OFF)
      for group in ("getambassador.io", "networking.istio.io", "keda.sh")),
    Deviation("ClusterRole", "seldon-manager-role-seldon-system", "rules[v1:*]",
              "the chart grants namespaces, services and services/status on an API group named `v1`, which does not exist; "
              "kfgen grants them on the core group"),
    Deviation("ClusterRole", "seldon-manager-role-seldon-system", "rules[core:services/status]",
              "see rules[v1:*]: the chart's services/status rule names the nonexistent `v1` group"),
    Deviation("ConfigMap", "seldon-config", "data.predictor_servers",
              "only the prepackaged servers a kfgen serving workload can name (TENSORFLOW, SKLEARN, XGBOOST, TRITON), with "
              "fully qualified images (docker.io/...) so registry mirrors rewrite them and `kfgen images` lists the ones in use; "
              "TensorFlow Serving at the stack's tfServingVersion (default 2.21.0), since the chart's 2.1.0 cannot load a SavedModel "
              "exported by TensorFlow 2.16 or later (the DisableCopyOnRead op)"),
    Deviation("ConfigMap", "seldon-config", "data.storageInitializer.image", "a fully qualified image, for registry mirrors"),
    Deviation("ConfigMap", "seldon-config", "data.explainer", "kfgen renders no explainers"),
    Deviation("Deployment", "seldon-controller-manager", f"{MANAGER}.args",
              "the chart's template ends the flags with an empty argument (left by its optional flags); kfgen passes none"),
    Deviation("Deployment", "seldon-controller-manager", f"{MANAGER}.livenessProbe", CHECKOV_PROBES + ", on the metrics endpoint"),
    Deviation("Deployment", "seldon-controller-manager", f"{MANAGER}.readinessProbe", CHECKOV_PROBES + ", on the metrics endpoint"),
    *hardening(("Deployment", "seldon-controller-manager")),
)
