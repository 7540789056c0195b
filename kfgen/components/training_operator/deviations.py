"""How kfgen's training operator differs from upstream's standalone install (manifests/overlays/standalone),
and why. The parity test (tests/test_parity.py) fails on any other difference."""

from __future__ import annotations

from kfgen.components.package import Deviation
from kfgen.components.shared_deviations import crd_schemas, hardening, namespace

ONLY_TFJOB = ("kfgen runs only the TFJob controller (--enable-scheme=tfjob): the stack's training workloads are TFJobs, and the "
              "operator serves the webhooks of enabled schemes only, so the other kinds' CRDs and webhooks (which would fail closed "
              "on every PyTorchJob, MPIJob... created by anything else) are left out")

LEAST = ("least privilege: only what the TFJob controller of v1.8.1 calls (the table in tests/cluster/test_rbac_calls.py, "
         "from its code; the cluster tier checks each call with a SubjectAccessReview and runs the real operator)")
OTHER_SCHEMES = LEAST + "; upstream's role also serves the schemes kfgen does not enable (MPIJob's ConfigMaps, Roles, " \
    "RoleBindings, ServiceAccounts and exec, PyTorch's HPAs, gang scheduling's PodGroups, the other job kinds)"

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
    *(Deviation("ClusterRole", "training-operator", f"rules[{rule}]", OTHER_SCHEMES)
      for rule in ("kubeflow.org:*", "core:configmaps", "core:pods/exec", "core:serviceaccounts", "rbac.authorization.k8s.io:*",
                   "autoscaling:*", "scheduling.*:podgroups")),
    Deviation("ClusterRole", "training-operator", "rules[core:events]", LEAST + ": it records events (create, patch, update), "
              "never reads or deletes them"),
    Deviation("ClusterRole", "training-operator", "rules[core:secrets]", LEAST + ": it reads and rotates only its own webhook "
              "certificate's Secret, so Secrets are granted in its own namespace (Role training-operator), not the cluster's"),
    Deviation("Role", "training-operator", "*", "in its own namespace: its certificate's Secret, and the Lease of leader election "
              "(--leader-elect: controller-runtime's Lease lock, create, get, update)"),
    Deviation("RoleBinding", "training-operator", "*", "binds the Role training-operator to its ServiceAccount"),
    *hardening(("Deployment", "training-operator")),
)
