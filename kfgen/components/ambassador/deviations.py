"""How kfgen's Emissary-ingress differs from upstream's emissary-crds.yaml + emissary-emissaryns.yaml, and
why. The parity test (tests/test_parity.py) fails on any other difference."""

from __future__ import annotations

from kfgen.components.package import Deviation
from kfgen.components.shared_deviations import crd_schemas, hardening, namespace

NO_APIEXT = ("kfgen's Emissary CRDs serve v3alpha1 only, with no conversion webhook (the shape of Emissary's own CRD chart with "
             "enableLegacyVersions=false): every object kfgen renders is v3alpha1 and Seldon's v2 Mappings are off, so the "
             "emissary-apiext conversion webhook, its namespace and the gateway's wait for it are not needed")
LABELS = ("kfgen's own labels (app.kubernetes.io/managed-by: kfgen, app.kubernetes.io/part-of: <stack>, kfgen.io/component, added "
          "by each base's kustomization) stand for upstream's bookkeeping labels (managed-by, part-of, product: aes, and "
          "emissary-apiext's on the CRDs, which apiext selects CRDs by)")

DEVIATIONS = (
    namespace("emissary"),
    Deviation("Namespace", "emissary-system", "*", NO_APIEXT),
    Deviation("*", "emissary-apiext", "*", NO_APIEXT),
    Deviation("*", "emissary-ingress-apiext", "*", NO_APIEXT),
    Deviation("CustomResourceDefinition", "*.getambassador.io", "spec.versions[v1]", NO_APIEXT),
    Deviation("CustomResourceDefinition", "*.getambassador.io", "spec.versions[v2]", NO_APIEXT),
    Deviation("CustomResourceDefinition", "*.getambassador.io", "spec.versions[v3alpha1].storage", NO_APIEXT),
    Deviation("CustomResourceDefinition", "*.getambassador.io", "spec.conversion.strategy", NO_APIEXT),
    Deviation("Deployment", "emissary-ingress", "spec.template.spec.initContainers[wait-for-apiext]", NO_APIEXT),
    crd_schemas("getambassador.io"),
    Deviation("*", "*", "metadata.labels", LABELS),
    Deviation("Deployment", "emissary-ingress", "spec.template.metadata.labels", LABELS),
    Deviation("ClusterRole", "emissary-ingress-crd", "*",
              "kfgen writes the rules upstream aggregates (emissary-ingress-crd and emissary-ingress-watch) straight into the "
              "emissary-ingress ClusterRole: the same permissions in one object, and nothing in a render adds rules to it "
              "through the rbac.getambassador.io/role-group label"),
    Deviation("ClusterRole", "emissary-ingress-watch", "*", "see emissary-ingress-crd: its rules are in emissary-ingress"),
    Deviation("ClusterRole", "emissary-ingress", "aggregationRule", "see emissary-ingress-crd: the rules are written, not aggregated"),
    Deviation("Deployment", "emissary-ingress", "spec.template.spec.affinity",
              "upstream's anti-affinity selects pods labelled service: ambassador, which its own gateway pods do not carry, so "
              "it places nothing; kfgen leaves it out"),
    Deviation("Service", "emissary-ingress-admin", "spec.type",
              "ClusterIP: the admin port serves diagnostics and the snapshot; upstream's NodePort opens them on every node"),
    Deviation("Listener", "*", "*",
              "a Listener is mandatory since Emissary 2.0 and upstream's install has none: kfgen renders HTTP (8080) and HTTPS "
              "(8443) Listeners that bind Hosts from every namespace"),
    Deviation("Host", "ml-platform", "*",
              "the Host for spec.components.ambassador.hostname (and tlsSecret), which upstream's install leaves to you"),
    *hardening(("Deployment", "emissary-ingress")),
)
