"""Seldon's prepackaged model servers per operator version: the images its seldon-config ConfigMap
lists (`predictor_servers`), by protocol, as the upstream chart's values pin them."""

from __future__ import annotations

PREDICTOR_SERVERS_KEY = "predictor_servers"


def predictor_servers(version: str) -> dict[str, dict[str, tuple[str, str]]]:
    """{server: {protocol: (image, tag)}} for one operator version."""
    return {
        "TENSORFLOW_SERVER": {"tensorflow": ("docker.io/tensorflow/serving", "2.1.0"),
                              "seldon": ("docker.io/seldonio/tfserving-proxy", version)},
        "SKLEARN_SERVER": {"seldon": ("docker.io/seldonio/sklearnserver", version),
                           "v2": ("docker.io/seldonio/mlserver", "1.3.5-sklearn")},
        "XGBOOST_SERVER": {"seldon": ("docker.io/seldonio/xgboostserver", version),
                           "v2": ("docker.io/seldonio/mlserver", "1.3.5-xgboost")},
        "TRITON_SERVER": {"v2": ("nvcr.io/nvidia/tritonserver", "21.08-py3")},
    }


def server_image(version: str, server: str, protocol: str) -> str:
    """The image the operator runs for a prepackaged server and protocol (its first protocol otherwise)."""
    protocols = predictor_servers(version)[server]
    image, tag = protocols.get(protocol) or next(iter(protocols.values()))
    return f"{image}:{tag}"
