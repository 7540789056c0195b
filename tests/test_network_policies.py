"""The NetworkPolicies kfgen renders, judged by who can reach whom, not by their shape.

The oracle is a small evaluator of the Kubernetes NetworkPolicy semantics written here from the API
reference (networking.k8s.io/v1): a pod is isolated for a direction when any policy of that type
selects it; traffic is then allowed when some selecting policy has a rule whose peers and ports
match (named ports resolve against the destination pod's container ports; an ipBlock matches the
address minus its exceptions). It knows nothing of kfgen's code.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field

import pytest
from conftest import copy_stack

from kfgen.render import render
from kfgen.rendered import rendered_objects

# The labels KubeSpawner 7.0 itself puts on a notebook pod (spawner.py: common_labels app=jupyterhub, heritage=jupyterhub;
# component_label singleuser-server as `component` and `app.kubernetes.io/component`); the hub config adds its extra_labels.
KUBESPAWNER_LABELS = {"app": "jupyterhub", "heritage": "jupyterhub", "component": "singleuser-server",
                      "app.kubernetes.io/component": "singleuser-server"}


@dataclass
class Pod:
    namespace: str
    labels: dict
    ports: dict = field(default_factory=dict)  # name -> number
    ip: str = "10.8.0.9"


@dataclass
class Outside:
    ip: str


def matches(selector: dict, labels: dict) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        present, value = expr["key"] in labels, labels.get(expr["key"])
        ok = {"In": present and value in expr.get("values", []), "NotIn": not present or value not in expr.get("values", []),
              "Exists": present, "DoesNotExist": not present}[expr["operator"]]
        if not ok:
            return False
    return True


class Cluster:
    def __init__(self, objects: list[dict], namespaces: dict[str, dict]):
        self.policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
        self.namespaces = namespaces  # name -> labels

    def _peer(self, peer: dict, policy_ns: str, other) -> bool:
        if "ipBlock" in peer:
            address = ipaddress.ip_address(other.ip)
            block = peer["ipBlock"]
            return address in ipaddress.ip_network(block["cidr"]) and not any(
                address in ipaddress.ip_network(e) for e in block.get("except", []))
        if isinstance(other, Outside):
            return False
        if "namespaceSelector" in peer:
            if not matches(peer["namespaceSelector"], self.namespaces[other.namespace]):
                return False
        elif other.namespace != policy_ns:
            return False
        return matches(peer.get("podSelector", {}), other.labels)

    def _ports(self, rules: list[dict] | None, port: int, target) -> bool:
        if not rules:
            return True
        for rule in rules:
            wanted = rule["port"]
            if isinstance(wanted, str):
                wanted = target.ports.get(wanted) if isinstance(target, Pod) else None
            if wanted == port:
                return True
        return False

    def _allowed(self, direction: str, pod: Pod, other, port: int, port_owner) -> bool:
        selecting = [p for p in self.policies if p["metadata"]["namespace"] == pod.namespace
                     and matches(p["spec"]["podSelector"], pod.labels) and direction in p["spec"]["policyTypes"]]
        if not selecting:
            return True
        key, peers = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in selecting:
            for rule in policy["spec"].get(key) or []:
                if (peers not in rule or any(self._peer(p, pod.namespace, other) for p in rule[peers])) and \
                        self._ports(rule.get("ports"), port, port_owner):
                    return True
        return False

    def reaches(self, source, target, port: int) -> bool:
        egress = not isinstance(source, Pod) or self._allowed("Egress", source, target, port, target)
        ingress = not isinstance(target, Pod) or self._allowed("Ingress", target, source, port, target)
        return egress and ingress


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("netpol")
    out = render(copy_stack("example", tmp), tmp / "out").out
    objects = rendered_objects(out, "prod")
    namespaces = {o["metadata"]["name"]: {"kubernetes.io/metadata.name": o["metadata"]["name"]} for o in objects if o["kind"] == "Namespace"}
    namespaces["kube-system"] = {"kubernetes.io/metadata.name": "kube-system"}
    return Cluster(objects, namespaces), objects


def notebook_pod(objects: list[dict]) -> Pod:
    """A notebook pod as KubeSpawner makes it from the rendered hub configuration (its extra_labels)."""
    (config,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "hub-config"]
    extra = json.loads(config["data"]["settings.json"])["podLabels"]
    return Pod("jupyterhub", {**KUBESPAWNER_LABELS, **extra}, {"notebook-port": 8888})


def pod_of(objects: list[dict], kind: str, name: str) -> Pod:
    """A pod of a rendered Deployment, with its labels and named container ports."""
    (owner,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    template = owner["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", []) if "name" in p}
    return Pod(owner["metadata"]["namespace"], template["metadata"]["labels"], ports)


def test_the_workload_namespace_takes_only_what_the_platform_sends(prod):
    cluster, objects = prod
    gateway = pod_of(objects, "Deployment", "emissary-ingress")
    # what Seldon creates for a predictor (its labels, its executor's port) and what the training operator creates
    predictor = Pod("ml", {"seldon-deployment-id": "iris", "seldon-app": "iris-default"}, {"http": 8000})
    worker = Pod("ml", {"training.kubeflow.org/operator-name": "tfjob-controller", "training.kubeflow.org/job-name": "iris"})
    step = Pod("ml", {"workflows.argoproj.io/workflow": "iris-classic-x"})
    notebook = notebook_pod(objects)
    assert cluster.reaches(gateway, predictor, 8000)
    assert not cluster.reaches(gateway, predictor, 9000)  # the model container itself: only through the executor
    assert not cluster.reaches(notebook, predictor, 8000)  # a notebook user cannot bypass the gateway's authentication
    assert cluster.reaches(worker, Pod("ml", dict(worker.labels)), 2222)
    assert not cluster.reaches(step, worker, 2222)
    assert not cluster.reaches(Outside("203.0.113.7"), step, 8080)


def test_notebooks_reach_the_internet_but_not_the_cloud_metadata_server_nor_private_networks(prod):
    cluster, objects = prod
    notebook = notebook_pod(objects)
    hub, proxy = pod_of(objects, "Deployment", "hub"), pod_of(objects, "Deployment", "proxy")
    assert cluster.reaches(notebook, Outside("151.101.0.223"), 443)  # PyPI
    assert not cluster.reaches(notebook, Outside("169.254.169.254"), 80)
    assert not cluster.reaches(notebook, Outside("10.0.0.1"), 443)  # the API server and the rest of the cluster
    assert cluster.reaches(notebook, hub, 8081)
    assert cluster.reaches(proxy, notebook, 8888) and cluster.reaches(hub, notebook, 8888)
    assert not cluster.reaches(Pod("ml", {"app": "x"}), notebook, 8888)


def test_only_the_proxy_takes_traffic_from_anywhere(prod):
    cluster, objects = prod
    hub, proxy = pod_of(objects, "Deployment", "hub"), pod_of(objects, "Deployment", "proxy")
    gateway = pod_of(objects, "Deployment", "emissary-ingress")
    assert cluster.reaches(gateway, proxy, 8000)
    assert not cluster.reaches(gateway, proxy, 8001)  # the proxy's API: the hub's only
    assert cluster.reaches(hub, proxy, 8001)
    assert not cluster.reaches(gateway, hub, 8081)
    assert cluster.reaches(proxy, hub, 8081)
    assert cluster.reaches(hub, Outside("10.0.0.1"), 443)  # the API server: the hub spawns notebooks
