"""The supported versions of each component and the images they pin (from the upstream releases).

The schema's version enums must list exactly these versions; a test keeps them in step.
"""

from __future__ import annotations

from typing import Any

ARGO = {
    version: {
        "controller": f"quay.io/argoproj/workflow-controller:{version}",
        "server": f"quay.io/argoproj/argocli:{version}",
        "executor": f"quay.io/argoproj/argoexec:{version}",
    }
    for version in ("v3.6.19", "v3.6.10", "v3.5.15")
}

TRAINING_OPERATOR = {
    "v1.8.1": {"operator": "docker.io/kubeflow/training-operator:v1-04f9f13"},
    "v1.8.0": {"operator": "docker.io/kubeflow/training-operator:v1-9e52eb7"},
}

SELDON: dict[str, dict[str, Any]] = {
    version: {
        "operator": f"docker.io/seldonio/seldon-core-operator:{version}",
        "executor": f"docker.io/seldonio/seldon-core-executor:{version}",
        "storage_initializer": f"docker.io/seldonio/rclone-storage-initializer:{version}",
        "servers": {
            "TENSORFLOW_SERVER": {"tensorflow": ("docker.io/tensorflow/serving", "2.1.0"),
                                  "seldon": ("docker.io/seldonio/tfserving-proxy", version)},
            "SKLEARN_SERVER": {"seldon": ("docker.io/seldonio/sklearnserver", version),
                               "v2": ("docker.io/seldonio/mlserver", "1.3.5-sklearn")},
            "XGBOOST_SERVER": {"seldon": ("docker.io/seldonio/xgboostserver", version),
                               "v2": ("docker.io/seldonio/mlserver", "1.3.5-xgboost")},
            "TRITON_SERVER": {"v2": ("nvcr.io/nvidia/tritonserver", "21.08-py3")},
        },
    }
    for version in ("1.17.1", "1.18.2")
}

EMISSARY = {"3.10.0": {"gateway": "docker.io/emissaryingress/emissary:3.10.0"}}

JUPYTERHUB = {
    "4.4.0": {"hub": "quay.io/jupyterhub/k8s-hub:4.4.0", "proxy": "quay.io/jupyterhub/configurable-http-proxy:5.2.0"},
    "4.0.0": {"hub": "quay.io/jupyterhub/k8s-hub:4.0.0", "proxy": "quay.io/jupyterhub/configurable-http-proxy:4.6.2"},
}

SUPPORTED = {
    "argo-workflows": ARGO,
    "training-operator": TRAINING_OPERATOR,
    "seldon-core": SELDON,
    "ambassador": EMISSARY,
    "jupyterhub": JUPYTERHUB,
}
