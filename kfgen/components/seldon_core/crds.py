"""The SeldonDeployment CRD (machinelearning.seldon.io/v1)."""

from __future__ import annotations

from kfgen.components.crd import BOOLEAN, INTEGER, PRESERVE, STRING, array, crd, props, string_map


def seldon_crd() -> dict:
    graph = props({"children": array(PRESERVE), "envSecretRefName": STRING, "implementation": STRING, "modelUri": STRING,
                   "name": STRING, "parameters": array(PRESERVE), "serviceAccountName": STRING, "type": STRING},
                  required=["name"], preserve=True)
    component = props({"hpaSpec": PRESERVE, "kedaSpec": PRESERVE, "metadata": PRESERVE, "pdbSpec": PRESERVE,
                       "replicas": INTEGER, "spec": PRESERVE})
    predictor = props({"annotations": string_map(), "componentSpecs": array(component), "engineResources": PRESERVE,
                       "explainer": PRESERVE, "graph": graph, "labels": string_map(), "name": STRING, "replicas": INTEGER,
                       "shadow": BOOLEAN, "ssl": PRESERVE, "svcOrchSpec": PRESERVE, "traffic": INTEGER},
                      required=["graph", "name"])
    spec = props({"annotations": string_map(), "name": STRING, "predictors": array(predictor), "protocol": STRING,
                  "replicas": INTEGER, "serverType": STRING, "transport": STRING}, required=["predictors"])
    scale = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}
    # as upstream's: v1 stored, v1alpha2 and v1alpha3 served with the same schema; no categories, no printer columns
    return crd("machinelearning.seldon.io", "SeldonDeployment", "seldondeployments", spec, short_names=["sdep"],
               scale=scale, also_served=("v1alpha2", "v1alpha3"))
