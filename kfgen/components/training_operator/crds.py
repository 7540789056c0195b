"""The TFJob CRD (kubeflow.org/v1)."""

from __future__ import annotations

from kfgen.components.crd import AGE, BOOLEAN, INTEGER, PRESERVE, STRING, crd, props


def tfjob_crd() -> dict:
    replica = props({"replicas": INTEGER, "restartPolicy": STRING, "template": PRESERVE})
    run_policy = props({"activeDeadlineSeconds": INTEGER, "backoffLimit": INTEGER, "cleanPodPolicy": STRING,
                        # upstream's schema defaults suspend to false, so a stored TFJob always has it
                        "schedulingPolicy": PRESERVE, "suspend": {**BOOLEAN, "default": False}, "ttlSecondsAfterFinished": INTEGER})
    spec = props({"enableDynamicWorker": BOOLEAN, "runPolicy": run_policy, "successPolicy": STRING,
                  "tfReplicaSpecs": {"type": "object", "additionalProperties": replica}}, required=["tfReplicaSpecs"])
    columns = [{"jsonPath": ".status.conditions[-1:].type", "name": "State", "type": "string"}, AGE]
    return crd("kubeflow.org", "TFJob", "tfjobs", spec, columns=columns)
