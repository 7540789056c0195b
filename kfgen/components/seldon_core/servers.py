"""Seldon's prepackaged model servers per operator version: the images its seldon-config ConfigMap
lists (`predictor_servers`), by protocol, as the upstream chart's values pin them."""

from __future__ import annotations

PREDICTOR_SERVERS_KEY = "predictor_servers"


TF_SERVING = "docker.io/tensorflow/serving"


def predictor_servers(version: str, tf_serving: str) -> dict[str, dict[str, tuple[str, str]]]:
    """{server: {protocol: (image, tag)}} for one operator version; TensorFlow Serving at the stack's
    version (the chart's 2.1.0 cannot load a SavedModel from TensorFlow 2.16 or later)."""
    return {
        "TENSORFLOW_SERVER": {"tensorflow": (TF_SERVING, tf_serving),
                              "seldon": ("docker.io/seldonio/tfserving-proxy", version)},
        "SKLEARN_SERVER": {"seldon": ("docker.io/seldonio/sklearnserver", version),
                           "v2": ("docker.io/seldonio/mlserver", "1.3.5-sklearn")},
        "XGBOOST_SERVER": {"seldon": ("docker.io/seldonio/xgboostserver", version),
                           "v2": ("docker.io/seldonio/mlserver", "1.3.5-xgboost")},
        "TRITON_SERVER": {"v2": ("nvcr.io/nvidia/tritonserver", "21.08-py3")},
    }


def server_image(version: str, tf_serving: str, server: str, protocol: str) -> str:
    """The image the operator runs for a prepackaged server and protocol (its first protocol otherwise)."""
    protocols = predictor_servers(version, tf_serving)[server]
    image, tag = protocols.get(protocol) or next(iter(protocols.values()))
    return f"{image}:{tag}"
