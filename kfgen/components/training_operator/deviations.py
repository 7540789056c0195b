"""How kfgen's training operator differs from upstream's standalone install (manifests/overlays/standalone),
and why. The parity test (tests/test_parity.py) fails on any other difference."""

from __future__ import annotations

from kfgen.components.package import Deviation
from kfgen.components.shared_deviations import crd_schemas, hardening, namespace

ONLY_TFJOB = ("kfgen runs only the TFJob controller (--enable-scheme=tfjob): the stack's training workloads are TFJobs, and the "
              "operator serves the webhooks of enabled schemes only, so the other kinds' CRDs and webhooks (which would fail closed "
              "on every PyTorchJob, MPIJob... created by anything else) are left out")

DEVIATIONS = (
    namespace("kubeflow"),
    *(Deviation("CustomResourceDefinition", f"{plural}.kubeflow.org", "*", ONLY_TFJOB)
      for plural in ("mpijobs", "mxjobs", "paddlejobs", "pytorchjobs", "xgboostjobs")),
    crd_schemas("kubeflow.org"),
    Deviation("ValidatingWebhookConfiguration", "validator.training-operator.kubeflow.org", "webhooks[validator.*job.training-operator.kubeflow.org]",
              ONLY_TFJOB),
    Deviation("Deployment", "training-operator", "spec.template.spec.containers[training-operator].args",
              "--enable-scheme=tfjob: " + ONLY_TFJOB + "; --leader-elect: upstream's flag, off in its manifest, so that "
              "`replicas: 2` runs one active controller and a standby, never two reconciling the same jobs"),
    Deviation("ClusterRole", "training-operator", "rules[coordination.k8s.io:leases]",
              "leader election (--leader-elect) takes controller-runtime's Lease lock: create, get, update on leases"),
    *hardening(("Deployment", "training-operator")),
)
