"""The render's operators, each run as a local process against the test control plane, as its pod would run it.

`Operators(cluster, synced, folder)` is a context manager; `start(deployment, binary)` runs the
locally built binary in place of the first word of the rendered container's command, with:
- the rest of the command and the args, `$(VAR)` references expanded as the kubelet expands them;
- its env resolved as the kubelet does: plain values, fieldRef (metadata.name / namespace / uid,
  spec.nodeName / serviceAccountName, status.podIP / hostIP), configMapKeyRef and secretKeyRef
  (read from the API), envFrom; nothing of the test process's environment but PATH;
- KUBECONFIG: a TokenRequest token of the pod's ServiceAccount, so RBAC applies as in a cluster,
  the context's namespace the Deployment's (what in-cluster config would say);
- its volumes as the kubelet projects them (Secrets, ConfigMaps, emptyDirs, the ServiceAccount's
  token/ca.crt/namespace), mounted at the rendered mountPaths in a private mount namespace
  (`unshare --mount`), so that two operators expecting the same path (controller-runtime's
  /tmp/k8s-webhook-server/serving-certs) never see each other's files. Secret and ConfigMap
  volumes are refreshed every second (the kubelet does it within a minute): an operator that
  writes its own certificate into a Secret finds it in its mount.

One pod of the Deployment (the ReplicaSet controller has created it, Pending: there is no kubelet)
plays the process's pod: it is bound to a Node standing for this machine, whose address is the
machine's non-loopback address (the API server reaches webhooks through Endpoints, and loopback
addresses are invalid there), and its status says Running, then Ready once the rendered readiness
probe answers. The endpoints controller then lists it behind every Service that selects it, so
the API server calls the local process on the port the Service targets. The Node's Lease is
renewed as a kubelet renews it, so that the node lifecycle controller never marks the pod not ready.

Ports: ports that serve only probes or metrics may be moved to free ports (`moved`: container port
-> the flag that sets it, e.g. {8080: "--metrics-bind-address=:{port}"}) so that operators run side
by side, here or by another test run on the same machine, never collide; the rendered probe is
then asked on the moved port. A webhook port is never moved: it is what the Service targets.
The process runs as the test's user, not the pod's securityContext.

`problems()` are the log lines of a process that say an API call was refused by RBAC (forbidden)
or carried a field the server does not know (unknown field, strict decoding error), read a fixed
time after the operator settled. Leaving the context stops every process, deletes the Node, and
marks the cluster dirty: the next test syncs afresh (the operators wrote into the cluster).
"""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .argocd_sync import WEBHOOK_KINDS
from .controlplane import MERGE, ApiError, Process, _die_with_parent, free_port, make_ca, make_leaf, serving_extensions

NODE = "kfgen-local"
PROBLEM = re.compile(r"forbidden|unknown field|strict decoding error", re.IGNORECASE)
SETTLE_SECONDS = 20  # how long the log is watched after the operator is ready
READY_SECONDS = 180  # generous: the machine's two cores are shared with other control planes


class OperatorError(Exception):
    """An operator could not be run as rendered; the message says why in one line."""


def host_address() -> str:
    """This machine's first global IPv4 address (not loopback), for the Node and the pods."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True).stdout
        found = re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", out)
    except FileNotFoundError:
        found = [a for a in socket.gethostbyname_ex(socket.gethostname())[2] if not a.startswith("127.")]
    if not found:
        raise OperatorError("this machine has no non-loopback IPv4 address: Endpoints cannot point at a local operator")
    return found[0]


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Operator:
    """One running operator: its Deployment, the pod it plays, its process and log."""

    deployment: dict
    container: dict
    pod: str
    process: Process
    ports: dict[int, int]  # rendered container port -> port the process listens on
    settled: float = 0.0

    @property
    def name(self) -> str:
        return self.deployment["metadata"]["name"]

    @property
    def namespace(self) -> str:
        return self.deployment["metadata"]["namespace"]

    def log(self) -> str:
        return self.process.log.read_text(errors="replace") if self.process.log.exists() else ""

    def problems(self, seconds: float = SETTLE_SECONDS) -> list[str]:
        """Log lines saying forbidden / unknown field / strict decoding error, once `seconds` passed since it settled."""
        time.sleep(max(0.0, self.settled + seconds - time.monotonic()))
        if not self.process.alive():
            return [f"{self.name} exited with {self.process.popen.returncode}:\n{self.process.tail()}"]
        return [line for line in self.log().splitlines() if PROBLEM.search(line)]

    def wait_for(self, what: str, check, seconds: float = 120):
        """Poll `check()` until it returns something true; fail with `what` and the log's tail, never hang."""
        deadline = time.monotonic() + seconds
        while True:
            if not self.process.alive():
                raise OperatorError(f"{self.name} exited with {self.process.popen.returncode} waiting for {what}:\n{self.process.tail()}")
            try:
                result = check()
            except ApiError:
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                raise OperatorError(f"{what}: not after {seconds}s; {self.name}'s log ends:\n{self.process.tail(40)}")
            time.sleep(0.5)


@dataclass
class _Volume:
    """A pod volume projected into a local folder; Secrets and ConfigMaps are refreshed."""

    spec: dict
    folder: Path
    refresh: bool


class Operators:
    """Run the render's operators; leaving the context stops them all (before the cluster is cleaned)."""

    def __init__(self, cluster, synced, folder: Path):
        self.cluster = cluster
        self.api = cluster.api
        self.synced = synced
        self.folder = folder
        self.address = host_address()
        self.running: list[Operator] = []
        self._volumes: list[tuple[str, dict, _Volume]] = []  # (namespace, pod, volume)
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> "Operators":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the rendered objects ----------------------------------------------------------------------

    def rendered(self, kind: str, name: str | None = None, namespace: str | None = None) -> list[dict]:
        return [o for o in self.synced.objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
                and (namespace is None or o["metadata"].get("namespace") == namespace)]

    def deployment(self, name: str) -> dict:
        found = self.rendered("Deployment", name)
        if len(found) != 1:
            raise OperatorError(f"{len(found)} rendered Deployments named {name}")
        return found[0]

    def services_of(self, deployment: dict) -> list[dict]:
        """The rendered Services whose selector picks the Deployment's pods."""
        labels = deployment["spec"]["template"]["metadata"].get("labels") or {}
        return [s for s in self.rendered("Service", namespace=deployment["metadata"]["namespace"])
                if s["spec"].get("selector") and all(labels.get(k) == v for k, v in s["spec"]["selector"].items())]

    def webhook_configurations(self, deployment: dict) -> list[dict]:
        """The held-back webhook configurations that call one of the Deployment's Services."""
        names = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in self.services_of(deployment)}
        return [c for c in self.synced.held_back if c["kind"] in WEBHOOK_KINDS and any(
            (w["clientConfig"].get("service", {}).get("namespace"), w["clientConfig"].get("service", {}).get("name")) in names
            for w in c.get("webhooks", []))]

    def apply_webhooks(self, deployment_name: str) -> list[dict]:
        """Apply, as rendered, the held-back webhook configurations that call this Deployment's Services."""
        configurations = self.webhook_configurations(self.deployment(deployment_name))
        if configurations:
            self.cluster.applier().apply(configurations)
        return configurations

    def withdraw(self, objects: list[dict], seconds: float = 60) -> None:
        """Delete objects the sync created and wait until they are gone, so that they can be sent again
        once the operator is up, as Argo CD's later sync wave sends them (through its webhook)."""
        for obj in objects:
            self.api.request("DELETE", self.api.path(obj))
        for obj in objects:
            wait_until(lambda o=obj: not self.api.exists(self.api.path(o)), seconds,
                       f"{obj['kind']} {obj['metadata'].get('namespace')}/{obj['metadata']['name']} deleted")

    # --- running one ---------------------------------------------------------------------------------

    def start(self, deployment_name: str, binary: Path | None, *, container: str | None = None,
              moved: dict[int, str] | None = None, image_env: dict[str, str] | None = None) -> Operator:
        """Run the binary as the Deployment's container (the first, or the one named): the binary
        takes the place of the command's first word, the rest of the command and the args follow.
        `image_env` is what the image itself sets (its ENV lines), which no manifest says. Waits
        until the rendered readiness probe answers, the pod is Ready and every Service selecting it lists it."""
        if binary is None or not Path(binary).exists():
            raise OperatorError(f"no built binary for {deployment_name} (run: python tests/cluster/build.py)")
        deployment = self.deployment(deployment_name)
        namespace = deployment["metadata"]["namespace"]
        spec = deployment["spec"]["template"]["spec"]
        main = next((c for c in spec["containers"] if container in (None, c["name"])), None)
        if main is None:
            raise OperatorError(f"Deployment {namespace}/{deployment_name} has no container {container}")
        pod = self._adopt_pod(deployment)
        work = self.folder / deployment_name
        work.mkdir(parents=True, exist_ok=True)
        account = spec.get("serviceAccountName") or "default"
        kubeconfig = self.cluster.plane.kubeconfig_for(namespace, account, work / "kubeconfig")
        config = json.loads(kubeconfig.read_text())
        config["contexts"][0]["context"]["namespace"] = namespace
        kubeconfig.write_text(json.dumps(config))

        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "HOSTNAME": pod["metadata"]["name"], **(image_env or {})}
        env.update(self.container_environment(main, pod))
        env["KUBECONFIG"] = str(kubeconfig)
        args = [expand(a, env) for a in (main.get("command") or [])[1:] + (main.get("args") or [])]
        ports: dict[int, int] = {}
        for port, flag in (moved or {}).items():
            ports[port] = free_port()
            value = flag.format(port=ports[port])
            name = value.split("=", 1)[0]
            args = [a for a in args if not a.startswith(name + "=")] + [value]
        # The pod as admitted: its mounts include the ServiceAccount's token, which admission adds.
        admitted = next(c for c in pod["spec"]["containers"] if c["name"] == main["name"])
        mounts = self.project_volumes(admitted, pod, work / "volumes")
        process = self._spawn(deployment_name, work, [str(binary), *args], env, mounts)
        operator = Operator(deployment, main, pod["metadata"]["name"], process, ports)
        self.running.append(operator)
        probe = main.get("readinessProbe")
        if probe:
            operator.wait_for(f"{deployment_name}'s readiness probe", lambda: self._probe(main, probe, ports), READY_SECONDS)
        self._report(pod, "Running", ready=True)
        for service in self.services_of(deployment):
            operator.wait_for(f"Endpoints of Service {namespace}/{service['metadata']['name']} listing {self.address}",
                              lambda s=service: self._listed(s), 90)
        operator.settled = time.monotonic()
        return operator

    def stop(self) -> None:
        """Stop every process, then the heartbeat; delete the Node; the cluster needs a fresh sync."""
        for operator in reversed(self.running):
            operator.process.stop()
        self._stop.set()
        if self._beat:
            self._beat.join(10)
        # A pod bound to a node is deleted gracefully: its kubelet confirms. Here nothing would, and the
        # namespaces holding such pods would never go; confirm it for the kubelet.
        pods = self.api.request("GET", "/api/v1/pods", query={"fieldSelector": f"spec.nodeName={NODE}"})["items"]
        for pod in pods:
            try:
                self.api.request("DELETE", f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods/{pod['metadata']['name']}",
                                 {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0})
            except ApiError:
                pass
        for path in (f"/api/v1/nodes/{NODE}", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE}"):
            try:
                self.api.request("DELETE", path)
            except ApiError:
                pass
        if self.running or self._beat:
            self.cluster.dirty()
        self.running.clear()

    # --- what the kubelet would do -------------------------------------------------------------------

    def _register_node(self) -> None:
        if self._beat:
            return
        try:
            self.api.request("DELETE", f"/api/v1/nodes/{NODE}")  # a previous run's, killed
        except ApiError:
            pass
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": NODE, "labels": {"kubernetes.io/os": "linux", "kubernetes.io/hostname": NODE}}}
        self.api.request("POST", "/api/v1/nodes", node)
        status = {"status": {
            "addresses": [{"type": "InternalIP", "address": self.address}, {"type": "Hostname", "address": NODE}],
            "capacity": {"cpu": "2", "memory": "8Gi", "pods": "110"}, "allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "a local stand-in",
                            "lastHeartbeatTime": now(), "lastTransitionTime": now()}]}}
        self.api.request("PATCH", f"/api/v1/nodes/{NODE}/status", status, content_type=MERGE)
        self._renew_lease()
        self._beat = threading.Thread(target=self._heartbeat, name="kubelet", daemon=True)
        self._beat.start()

    def _renew_lease(self) -> None:
        micro = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": NODE, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": NODE, "leaseDurationSeconds": 40, "renewTime": micro}}
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE}"
        try:
            self.api.request("PATCH", path, {"spec": lease["spec"]}, content_type=MERGE)
        except ApiError as error:
            if error.status != 404:
                raise
            self.api.request("POST", path.rsplit("/", 1)[0], lease)

    def _heartbeat(self) -> None:
        """The kubelet's loops: renew the node's Lease every 10 s, refresh Secret and ConfigMap volumes every second."""
        last = time.monotonic()
        while not self._stop.wait(1.0):
            try:
                if time.monotonic() - last > 10:
                    self._renew_lease()
                    last = time.monotonic()
                with self._lock:
                    volumes = list(self._volumes)
                for namespace, pod, volume in volumes:
                    if volume.refresh:
                        self._write_volume(namespace, pod, volume)
            except (ApiError, OSError, http.client.HTTPException):
                pass  # the next beat tries again, as the kubelet's does

    def _adopt_pod(self, deployment: dict) -> dict:
        """The first pod the ReplicaSet controller made for the Deployment, bound to the Node and Running (not yet Ready)."""
        pod = deployment_pod(self.api, deployment)
        self.run_pod(pod)
        return self.api.request("GET", pod_path(pod))

    def run_pod(self, pod: dict) -> None:
        """What a kubelet does with a pod it starts: bound to this Node (a scheduler's part), then
        reported Running at this machine's address, its containers started but not yet ready."""
        self._register_node()
        if not pod["spec"].get("nodeName"):
            binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod["metadata"]["name"]},
                       "target": {"apiVersion": "v1", "kind": "Node", "name": NODE}}
            self.api.request("POST", pod_path(pod) + "/binding", binding)
        self._report(pod, "Running", ready=False)

    def finish_pod(self, pod: dict) -> None:
        """What a kubelet reports when every container of a pod exited 0: Succeeded."""
        self._report(pod, "Succeeded", ready=False)

    def _report(self, pod: dict, phase: str, *, ready: bool) -> None:
        """The pod's status as the kubelet writes it (pods/status)."""
        ready_text = "True" if ready else "False"
        at = now()
        conditions = [{"type": t, "status": s, "lastTransitionTime": at} for t, s in
                      (("PodReadyToStartContainers", "True"), ("Initialized", "True"), ("Ready", ready_text),
                       ("ContainersReady", ready_text), ("PodScheduled", "True"))]
        exited = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": at, "finishedAt": at}}

        def statuses(containers: list[dict], done: bool) -> list[dict]:
            return [{"name": c["name"], "image": c["image"], "imageID": "", "ready": ready, "restartCount": 0, "started": not done,
                     "state": exited if done else {"running": {"startedAt": at}}} for c in containers]

        status = {"phase": phase, "conditions": conditions, "hostIP": self.address, "hostIPs": [{"ip": self.address}],
                  "podIP": self.address, "podIPs": [{"ip": self.address}], "startTime": at,
                  "containerStatuses": statuses(pod["spec"]["containers"], phase != "Running")}
        if pod["spec"].get("initContainers"):
            status["initContainerStatuses"] = statuses(pod["spec"]["initContainers"], True)
        self.api.request("PATCH", pod_path(pod) + "/status", {"status": status}, content_type=MERGE)

    def container_environment(self, container: dict, pod: dict) -> dict[str, str]:
        """The container's environment as the kubelet resolves it (envFrom first, then env in order)."""
        namespace = pod["metadata"]["namespace"]
        out: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            ref = source.get("configMapRef") or source.get("secretRef")
            data = self._data("configmaps" if "configMapRef" in source else "secrets", namespace, ref["name"], ref.get("optional"))
            out.update({source.get("prefix", "") + k: v for k, v in data.items()})
        for var in container.get("env") or []:
            if "valueFrom" not in var:
                out[var["name"]] = expand(var.get("value", ""), out)
                continue
            source = var["valueFrom"]
            if "fieldRef" in source:
                out[var["name"]] = self._field(pod, source["fieldRef"]["fieldPath"])
            elif "configMapKeyRef" in source or "secretKeyRef" in source:
                ref = source.get("configMapKeyRef") or source.get("secretKeyRef")
                data = self._data("configmaps" if "configMapKeyRef" in source else "secrets", namespace, ref["name"], ref.get("optional"))
                if ref["key"] in data:
                    out[var["name"]] = data[ref["key"]]
                elif not ref.get("optional"):
                    raise OperatorError(f"{namespace}/{ref['name']} has no key {ref['key']} (env {var['name']})")
            else:
                raise OperatorError(f"env {var['name']}: {sorted(source)} is not resolved by this runner")
        return out

    def _field(self, pod: dict, path: str) -> str:
        known = {"metadata.name": pod["metadata"]["name"], "metadata.namespace": pod["metadata"]["namespace"],
                 "metadata.uid": pod["metadata"]["uid"], "spec.nodeName": NODE,
                 "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
                 "status.podIP": self.address, "status.hostIP": self.address}
        match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if match:
            return (pod["metadata"].get(match.group(1)) or {}).get(match.group(2), "")
        if path not in known:
            raise OperatorError(f"fieldRef {path} is not resolved by this runner")
        return known[path]

    def _data(self, plural: str, namespace: str, name: str, optional: bool | None) -> dict[str, str]:
        """A ConfigMap's or Secret's data as text; {} for a missing optional one."""
        try:
            obj = self.api.request("GET", f"/api/v1/namespaces/{namespace}/{plural}/{name}")
        except ApiError as error:
            if error.status == 404 and optional:
                return {}
            raise OperatorError(f"{plural[:-1]} {namespace}/{name}: {error}") from None
        data = obj.get("data") or {}
        if plural == "secrets":
            return {k: base64.b64decode(v).decode() for k, v in data.items()}
        return dict(data)

    # --- volumes -------------------------------------------------------------------------------------

    def project_volumes(self, container: dict, pod: dict, folder: Path) -> list[tuple[Path, str, bool]]:
        """(local path, mountPath, read only) for each of the container's mounts, with the volume written out."""
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        namespace = pod["metadata"]["namespace"]
        mounts = []
        for mount in container.get("volumeMounts") or []:
            spec = volumes[mount["name"]]
            # A claim's volume is a fresh folder, as a newly provisioned volume is (the hub's database).
            kinds = {"secret", "configMap", "emptyDir", "projected", "downwardAPI", "persistentVolumeClaim"} & set(spec)
            if not kinds:
                raise OperatorError(f"volume {mount['name']} ({sorted(set(spec) - {'name'})}) is not projected by this runner")
            volume = _Volume(spec, folder / mount["name"], refresh=bool({"secret", "configMap", "projected"} & kinds))
            if not volume.folder.exists():
                volume.folder.mkdir(parents=True)
                self._write_volume(namespace, pod, volume, first=True)
                with self._lock:
                    self._volumes.append((namespace, pod, volume))
            source = volume.folder / mount["subPath"] if mount.get("subPath") else volume.folder
            mounts.append((source, mount["mountPath"], bool(mount.get("readOnly"))))
        return mounts

    def _write_volume(self, namespace: str, pod: dict, volume: _Volume, first: bool = False) -> None:
        spec = volume.spec
        files: dict[str, bytes] = {}
        if "secret" in spec:
            files = self._volume_files("secrets", namespace, spec["secret"]["secretName"], spec["secret"])
        elif "configMap" in spec:
            files = self._volume_files("configmaps", namespace, spec["configMap"]["name"], spec["configMap"])
        elif "downwardAPI" in spec or "projected" in spec:
            sources = spec["projected"]["sources"] if "projected" in spec else [{"downwardAPI": spec["downwardAPI"]}]
            for source in sources:
                if "serviceAccountToken" in source:
                    if first:  # a token lasts an hour: longer than any test
                        token = source["serviceAccountToken"]
                        files[token["path"]] = self.cluster.plane.token(namespace, pod["spec"].get("serviceAccountName", "default")).encode()
                    else:
                        files[source["serviceAccountToken"]["path"]] = (volume.folder / source["serviceAccountToken"]["path"]).read_bytes()
                elif "configMap" in source:
                    files.update(self._volume_files("configmaps", namespace, source["configMap"]["name"], source["configMap"]))
                elif "secret" in source:
                    files.update(self._volume_files("secrets", namespace, source["secret"]["name"], source["secret"]))
                elif "downwardAPI" in source:
                    files.update({item["path"]: self._field(pod, item["fieldRef"]["fieldPath"]).encode()
                                  for item in source["downwardAPI"]["items"]})
        modes = file_modes(spec)
        for path, content in files.items():
            target = volume.folder / path
            if target.exists() and target.read_bytes() == content:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.tmp")
            temporary.write_bytes(content)
            # The kubelet's modes: a program may refuse a key others can read (JupyterHub's cookie secret).
            temporary.chmod(modes.get(path, modes[None]))
            os.replace(temporary, target)  # a reader never sees half a file

    def _volume_files(self, plural: str, namespace: str, name: str, source: dict) -> dict[str, bytes]:
        try:
            obj = self.api.request("GET", f"/api/v1/namespaces/{namespace}/{plural}/{name}")
        except ApiError as error:
            if error.status == 404 and source.get("optional"):
                return {}
            raise
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()} if plural == "secrets" else \
            {**{k: v.encode() for k, v in (obj.get("data") or {}).items()},
             **{k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}}
        items = source.get("items")
        if items:
            return {item["path"]: data[item["key"]] for item in items if item["key"] in data}
        return data

    # --- the process ---------------------------------------------------------------------------------

    def _spawn(self, name: str, work: Path, argv: list[str], env: dict[str, str], mounts: list[tuple[Path, str, bool]]) -> Process:
        """The process in a private mount namespace where each volume sits at its rendered mountPath.
        Mount points that do not exist on this machine are created first (empty directories)."""
        if not shutil.which("unshare"):
            raise OperatorError("unshare (util-linux) is not on PATH: the operators' volumes cannot be mounted")
        script = ["set -e", *bind_mount_lines(mounts), 'exec "$@"']
        unshare = ["unshare", "--mount", "--propagation", "private"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
        log = work / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen([*unshare, "sh", "-c", "\n".join(script), name, *argv], stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=work, env=env, start_new_session=True, preexec_fn=_die_with_parent)
        return Process(name, popen, log)

    def _probe(self, container: dict, probe: dict, ports: dict[int, int]) -> bool:
        """The rendered readiness probe, on the port the process listens on."""
        named = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
        if "httpGet" in probe:
            get = probe["httpGet"]
            port = named.get(get["port"], get["port"])
            port = ports.get(port, port)
            if get.get("scheme", "HTTP") == "HTTPS":
                connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                    "127.0.0.1", port, timeout=5, context=ssl._create_unverified_context())  # the kubelet does not verify either
            else:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                connection.request("GET", get.get("path", "/"))
                return 200 <= connection.getresponse().status < 400
            except OSError:
                return False
            finally:
                connection.close()
        if "tcpSocket" in probe:
            port = named.get(probe["tcpSocket"]["port"], probe["tcpSocket"]["port"])
            try:
                socket.create_connection(("127.0.0.1", ports.get(port, port)), timeout=5).close()
                return True
            except OSError:
                return False
        raise OperatorError(f"readiness probe {sorted(probe)} is not run by this runner")

    def _listed(self, service: dict) -> bool:
        endpoints = self.api.request("GET", f"/api/v1/namespaces/{service['metadata']['namespace']}/endpoints/{service['metadata']['name']}")
        return any(a.get("ip") == self.address for s in endpoints.get("subsets") or [] for a in s.get("addresses") or [])


def bind_mount_lines(mounts: list[tuple[Path, str, bool]]) -> list[str]:
    """Shell lines that bind each (local path, mountPath, read only) at its mountPath, as the kubelet
    mounts a pod's volumes: the mount point made first (a folder, or an empty file for a file). A
    mountPath that the local paths lie under (an emptyDir at /tmp, where the test's folders are) is
    bound last: bound first, it would hide them from the mounts after it."""
    lines = []
    for source, target, read_only in sorted(mounts, key=lambda m: any(other.is_relative_to(m[1]) for other, _, _ in mounts)):
        if source.is_dir():
            lines.append(f"mkdir -p {shlex.quote(target)}")
        else:
            lines.append(f"mkdir -p {shlex.quote(str(Path(target).parent))} && touch {shlex.quote(target)}")
        lines.append(f"mount --bind {shlex.quote(str(source))} {shlex.quote(target)}")
        if read_only:
            lines.append(f"mount -o remount,bind,ro {shlex.quote(target)}")
    return lines


def file_modes(volume: dict) -> dict[str | None, int]:
    """{path: mode} of a volume's files as the kubelet sets them; None: the volume's defaultMode (0644 unless said)."""
    kind = next(k for k in ("secret", "configMap", "projected", "downwardAPI", "emptyDir", "persistentVolumeClaim") if k in volume)
    source = volume[kind] or {}
    modes: dict[str | None, int] = {None: source.get("defaultMode", 0o644)}
    sources = source.get("sources", []) if kind == "projected" else [{kind: source}]
    for inner in sources:
        for item in next(iter(inner.values())).get("items") or []:
            if "mode" in item:
                modes[item["path"]] = item["mode"]
    return modes


def wait_until(check, seconds: float, what: str):
    """Poll `check()` until it returns something true (and return it); fail with `what`, never hang."""
    deadline = time.monotonic() + seconds
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {seconds}s")
        time.sleep(0.5)
    return result


def label_selector(deployment: dict) -> str:
    """The Deployment's matchLabels as a label selector query."""
    return ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())


def deployment_pod(api, deployment: dict, seconds: float = 120) -> dict:
    """The first live pod the controller-manager created for a Deployment (admitted: it exists); if
    none comes, the failure says what admission refused (FailedCreate events)."""
    namespace = deployment["metadata"]["namespace"]
    deadline = time.monotonic() + seconds
    while True:
        pods = api.request("GET", f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": label_selector(deployment)})["items"]
        live = sorted((p for p in pods if "deletionTimestamp" not in p["metadata"]), key=lambda p: p["metadata"]["name"])
        if live:
            return live[0]
        if time.monotonic() > deadline:
            events = api.request("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
            raise OperatorError(f"no pod of Deployment {namespace}/{deployment['metadata']['name']} after {seconds}s: "
                                f"{[e.get('message') for e in events if e.get('reason') == 'FailedCreate']}")
        time.sleep(0.5)


def pod_path(pod: dict) -> str:
    return f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods/{pod['metadata']['name']}"


VARIABLE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """The kubelet's `$(VAR)` expansion: a defined variable is replaced, `$$` is a literal `$`,
    anything else is left as written."""
    return VARIABLE.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


# --- serving certificates, where the render relies on a Job that cannot run here -----------------

def serving_certificate(folder: Path, hosts: list[str]) -> dict[str, bytes]:
    """A CA and a serving certificate for `hosts` (openssl), as a certificate Job (kube-webhook-certgen)
    would make: {"ca.crt", "tls.crt", "tls.key"} in PEM."""
    make_ca(folder, "/CN=webhook-ca")
    make_leaf(folder, "tls", f"/CN={hosts[0]}", serving_extensions([f"DNS:{h}" for h in hosts]))
    return {name: (folder / name).read_bytes() for name in ("ca.crt", "tls.crt", "tls.key")}


def inject_ca_bundle(api, configuration: dict, ca: bytes) -> None:
    """Set every webhook's clientConfig.caBundle of a stored webhook configuration (what a certificate Job's patch step does)."""
    stored = api.get(configuration)
    for webhook in stored["webhooks"]:
        webhook["clientConfig"]["caBundle"] = base64.b64encode(ca).decode()
    api.request("PUT", api.path(stored), stored)

