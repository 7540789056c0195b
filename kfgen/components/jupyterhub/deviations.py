"""How kfgen's JupyterHub differs from upstream's chart (zero-to-jupyterhub, templated with
tests/parity/jupyterhub.values.yaml), and why. The parity test (tests/test_parity.py) fails on any other
difference."""

from __future__ import annotations

from kfgen.components.package import Deviation
from kfgen.components.shared_deviations import HELM_LABELS, hardening, namespace

CONFIG = ("kfgen's hub runs its own jupyterhub_config.py with settings.json and profiles.json rendered from the stack, from the "
          "hub-config ConfigMap (the environment's accelerator Components add to it), instead of the chart's values-driven "
          "configuration in the `hub` ConfigMap and Secret")
SECRETS = ("no secret value is ever in git: the hub and the proxy read the cookie secret and proxy token from a Secret made outside "
           "kfgen (jupyterhub.secretName), mounted as files, never from environment variables; the chart generates them into its "
           "`hub` Secret")
NODES = ("the chart prefers nodes labelled hub.jupyter.org/node-purpose=core and tolerates its dedicated-node taints, for node "
         "pools set up for z2jh; kfgen's hub and proxy run on any Linux node")
HUB = "spec.template.spec.containers[hub]"
PROXY = "spec.template.spec.containers[chp]"

DEVIATIONS = (
    namespace("jupyterhub"),
    Deviation("*", "*", "metadata.labels", HELM_LABELS),
    Deviation("ConfigMap", "hub", "*", CONFIG),
    Deviation("ConfigMap", "hub-config", "*", CONFIG),
    Deviation("Secret", "hub", "*", SECRETS),
    Deviation("Deployment", "hub", f"{HUB}.args", CONFIG + "; the command names kfgen's configuration"),
    Deviation("Deployment", "hub", f"{HUB}.command", CONFIG + "; the command names kfgen's configuration"),
    Deviation("Deployment", "hub", f"{HUB}.workingDir", "the hub's sqlite database and cookie files live in /srv/jupyterhub"),
    Deviation("Deployment", "hub", f"{HUB}.env", SECRETS + "; kfgen's configuration reads the namespace from its settings"),
    Deviation("Deployment", "hub", f"{HUB}.volumeMounts", CONFIG + "; " + SECRETS + "; /tmp is an emptyDir (read-only root filesystem)"),
    Deviation("Deployment", "hub", "spec.template.spec.volumes", CONFIG + "; " + SECRETS + " (mode 0400)"),
    Deviation("Deployment", "hub", "spec.template.metadata.annotations",
              "kfgen's checksum/config (of hub-config and what the environment adds to it) restarts the hub when its configuration changes"),
    Deviation("Deployment", "proxy", "spec.template.metadata.annotations", "the chart's checksums are of its own generated secrets"),
    Deviation("Deployment", "*", "spec.template.spec.affinity", NODES),
    Deviation("Deployment", "*", "spec.template.spec.tolerations", NODES),
    Deviation("Deployment", "proxy", f"{PROXY}.command",
              SECRETS + "; the proxy reaches the hub by its namespaced service name (hub.<namespace>.svc)"),
    Deviation("Deployment", "proxy", f"{PROXY}.env", SECRETS),
    Deviation("Deployment", "proxy", f"{PROXY}.volumeMounts", SECRETS),
    Deviation("Deployment", "proxy", "spec.template.spec.volumes", SECRETS),
    Deviation("Deployment", "proxy", "spec.template.spec.serviceAccountName",
              "the proxy never calls the Kubernetes API: it runs as its own ServiceAccount, without a token"),
    Deviation("Deployment", "proxy", "spec.template.spec.automountServiceAccountToken",
              "the proxy never calls the Kubernetes API, so its pod gets no ServiceAccount token"),
    Deviation("ServiceAccount", "proxy", "*", "the proxy's own ServiceAccount, without a token (automountServiceAccountToken: false)"),
    *hardening(("Deployment", "hub"), ("Deployment", "proxy")),
)
