"""A stand-in for a node, to run a rendered pod's container as a local program.

The node is a mount and network namespace of its own (util-linux `unshare`, root only): its own
loopback, where every port the pods' configuration names is free; an /etc/hosts naming the
namespace's Services (and any host a test stands in for); the test's CA in its trust store; and
each volume of the pods at its mountPath, written from the API as the kubelet would (ConfigMaps,
Secrets, a ServiceAccount token from the TokenRequest API, the cluster's CA, emptyDirs). The host
is untouched: /etc, /usr, /srv and /run are overlays whose changes stay in the test's folder.

Programs are started in the node by `nsenter`; the test reaches the node's ports, and the node the
host's API server, through relays between the two network namespaces (`Relay`).
"""

from __future__ import annotations

import base64
import ctypes
import os
import select
import shlex
import shutil
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .controlplane import ApiError, Process, _die_with_parent

CLONE_NEWNET = 0x40000000
OVERLAID = ("/etc", "/usr", "/srv", "/run")  # where a mountPath may need a folder the host does not have
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_libc = ctypes.CDLL(None, use_errno=True)


def unavailable() -> str | None:
    """Why this machine cannot make the node (None when it can)."""
    if os.geteuid() != 0:
        return "the hub's node needs root (mount and network namespaces)"
    for tool in ("unshare", "nsenter", "ip", "mount"):
        if not shutil.which(tool):
            return f"{tool} (util-linux/iproute2) is not on PATH"
    return None


@contextmanager
def network_of(pid: int | None):
    """Run the enclosed code's new sockets in the network namespace of `pid` (None: this one)."""
    if pid is None:
        yield
        return
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if _libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into the network of {pid}")
        yield
    finally:
        _libc.setns(here, CLONE_NEWNET)
        os.close(here)
        os.close(there)


class Relay:
    """A TCP relay: listens on `listen` in one network namespace, connects to `target` in another."""

    def __init__(self, listen: tuple[int | None, str, int], target: tuple[int | None, str, int]):
        self.target = target
        pid, host, port = listen
        with network_of(pid):
            self.server = socket.create_server((host, port), reuse_port=False)
        self.port = self.server.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            ready, _, _ = select.select([self.server], [], [], 0.5)
            if not ready or self.closed:
                continue
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        pid, host, port = self.target
        try:
            with network_of(pid):
                upstream = socket.create_connection((host, port), timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self.closed = True
        self.server.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@dataclass
class Node:
    """The namespaces, held by a sleeping process; `start` runs a program in them."""

    folder: Path
    holder: Process | None = None
    processes: list[Process] = field(default_factory=list)
    relays: list[Relay] = field(default_factory=list)

    @property
    def pid(self) -> int:
        assert self.holder is not None
        return self.holder.popen.pid

    def boot(self, mounts: dict[str, Path], hosts: dict[str, str], ca: Path | None = None) -> None:
        """Make the namespaces: loopback up, overlays, /etc/hosts, the CA trusted, each folder of
        `mounts` bound at its path (a path the others' sources lie under is bound last)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lines = ["set -e", "ip link set lo up"]
        for top in OVERLAID:
            upper, work = self.folder / "overlay" / top.strip("/") / "upper", self.folder / "overlay" / top.strip("/") / "work"
            upper.mkdir(parents=True)
            work.mkdir(parents=True)
            lines.append(f"mount -t overlay overlay -o lowerdir={top},upperdir={upper},workdir={work} {top}")
        text = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n" + "".join(f"{ip} {name}\n" for name, ip in sorted(hosts.items()))
        (self.folder / "hosts").write_text(text)
        lines.append(f"cat {self.folder / 'hosts'} > /etc/hosts")
        if ca is not None:
            lines.append(f"cat {ca} >> /etc/ssl/certs/ca-certificates.crt")
        ordered = sorted(mounts.items(), key=lambda kv: any(src.is_relative_to(kv[0]) for src in mounts.values()))
        for target, source in ordered:
            lines += [f"mkdir -p {shlex.quote(target)}", f"mount --bind {shlex.quote(str(source))} {shlex.quote(target)}"]
        lines += ["echo node-ready", "exec sleep 86400"]
        script = self.folder / "boot.sh"
        script.write_text("\n".join(lines) + "\n")
        log = self.folder / "node.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(["unshare", "--mount", "--net", "--propagation", "private", "/bin/sh", str(script)],
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        self.holder = Process("node", popen, log)
        deadline = time.monotonic() + 30
        while "node-ready" not in log.read_text():
            if not self.holder.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the node did not boot:\n{self.holder.tail()}")
            time.sleep(0.1)

    def start(self, name: str, args: list[str], env: dict[str, str], workdir: str | None = None) -> Process:
        """Run a program in the node (its mounts, its network), logging to <folder>/<name>.log."""
        log = self.folder / f"{name}.log"
        command = ["nsenter", "-t", str(self.pid), "--mount", "--net"] + ([f"--wdns={workdir}"] if workdir else []) + ["--", *args]
        with open(log, "wb") as out:
            popen = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def relay_in(self, port: int, target: tuple[str, int]) -> Relay:
        """The node's 127.0.0.1:port reaches the host's target (the API server, the test's own servers)."""
        relay = Relay((self.pid, "127.0.0.1", port), (None, *target))
        self.relays.append(relay)
        return relay

    def relay_out(self, port: int) -> Relay:
        """A port on the host's 127.0.0.1 that reaches the node's 127.0.0.1:port."""
        relay = Relay((None, "127.0.0.1", 0), (self.pid, "127.0.0.1", port))
        self.relays.append(relay)
        return relay

    def stop(self) -> None:
        for relay in self.relays:
            relay.close()
        for process in reversed(self.processes):
            process.stop()
        if self.holder is not None:
            self.holder.stop()


# --- a pod's volumes and environment, as the kubelet gives them ------------------------------------

def _secret_data(api, namespace: str, name: str) -> dict[str, bytes]:
    secret = api.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


def _config_map_data(api, namespace: str, name: str) -> dict[str, bytes]:
    deadline = time.monotonic() + 30  # kube-root-ca.crt is published by the controller-manager, soon after the namespace
    while True:
        try:
            config_map = api.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
            break
        except ApiError as error:
            if error.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    return {k: v.encode() for k, v in (config_map.get("data") or {}).items()}


def _write_keys(folder: Path, data: dict[str, bytes], items: list[dict] | None, mode: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    chosen = [(i["key"], i["path"], i.get("mode", mode)) for i in items] if items else [(k, k, mode) for k in data]
    for key, path, file_mode in chosen:
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data[key])
        target.chmod(file_mode)


def volume_folders(api, plane, pod: dict, folder: Path) -> dict[str, Path]:
    """Each volume of the pod written to folder/<volume>: {volume name: folder}. Sources the
    kubelet reads from the API are read from the API, with the pod's identity where it matters
    (a projected ServiceAccount token is a TokenRequest for the pod's ServiceAccount)."""
    namespace = pod["metadata"]["namespace"]
    out = {}
    for volume in pod["spec"].get("volumes", []):
        target = folder / volume["name"]
        if "configMap" in volume:
            source = volume["configMap"]
            _write_keys(target, _config_map_data(api, namespace, source["name"]), source.get("items"), source.get("defaultMode", 0o644))
        elif "secret" in volume:
            source = volume["secret"]
            _write_keys(target, _secret_data(api, namespace, source["secretName"]), source.get("items"), source.get("defaultMode", 0o644))
        elif "emptyDir" in volume or "persistentVolumeClaim" in volume:
            target.mkdir(parents=True)
        elif "projected" in volume:
            mode = volume["projected"].get("defaultMode", 0o644)
            for source in volume["projected"]["sources"]:
                if "serviceAccountToken" in source:
                    token = plane.token(namespace, pod["spec"]["serviceAccountName"], source["serviceAccountToken"].get("expirationSeconds", 3607))
                    _write_keys(target, {"token": token.encode()}, [{"key": "token", "path": source["serviceAccountToken"]["path"]}], mode)
                elif "configMap" in source:
                    _write_keys(target, _config_map_data(api, namespace, source["configMap"]["name"]), source["configMap"].get("items"), mode)
                elif "downwardAPI" in source:
                    for item in source["downwardAPI"]["items"]:
                        _write_keys(target, {"v": field_value(pod, item["fieldRef"]["fieldPath"]).encode()}, [{"key": "v", "path": item["path"]}], mode)
                else:
                    raise NotImplementedError(f"projected source {sorted(source)} of volume {volume['name']}")
        else:
            raise NotImplementedError(f"volume {volume['name']}: {sorted(k for k in volume if k != 'name')}")
        out[volume["name"]] = target
    return out


def field_value(pod: dict, path: str) -> str:
    values = {"metadata.namespace": pod["metadata"]["namespace"], "metadata.name": pod["metadata"]["name"],
              "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"), "status.podIP": "127.0.0.1",
              "spec.nodeName": "node"}
    return values[path]


def container_mounts(container: dict, folders: dict[str, Path]) -> dict[str, Path]:
    """{mountPath: local folder} of a container (subPath mounts are not needed here: refused)."""
    out = {}
    for mount in container.get("volumeMounts", []):
        if mount.get("subPath"):
            raise NotImplementedError(f"subPath mount {mount['mountPath']}")
        out[mount["mountPath"]] = folders[mount["name"]]
    return out


def container_env(api, pod: dict, container: dict) -> dict[str, str]:
    """The container's environment as the kubelet resolves it: envFrom, then env (valueFrom from
    the API), then the kubelet's KUBERNETES_SERVICE_* (the API server, relayed into the node)."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            data = _config_map_data(api, namespace, source["configMapRef"]["name"])
        else:
            data = _secret_data(api, namespace, source["secretRef"]["name"])
        env.update({prefix + k: v.decode() for k, v in data.items()})
    for var in container.get("env", []):
        if "value" in var or "valueFrom" not in var:
            env[var["name"]] = var.get("value", "")
            continue
        ref = var["valueFrom"]
        if "configMapKeyRef" in ref:
            env[var["name"]] = _config_map_data(api, namespace, ref["configMapKeyRef"]["name"])[ref["configMapKeyRef"]["key"]].decode()
        elif "secretKeyRef" in ref:
            env[var["name"]] = _secret_data(api, namespace, ref["secretKeyRef"]["name"])[ref["secretKeyRef"]["key"]].decode()
        elif "fieldRef" in ref:
            env[var["name"]] = field_value(pod, ref["fieldRef"]["fieldPath"])
        else:
            raise NotImplementedError(f"env {var['name']}: {sorted(ref)}")
    env.update(KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT="443", KUBERNETES_SERVICE_PORT_HTTPS="443")
    return env
