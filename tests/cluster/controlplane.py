"""A real Kubernetes control plane on localhost: etcd, kube-apiserver, kube-controller-manager.

Admission and authorization as a real cluster has them: the API server's default admission plugins
(ServiceAccount, Pod Security, webhooks...), `--authorization-mode=RBAC`, ServiceAccount tokens
signed with a key the controller-manager shares. The controller-manager runs every default
controller with a ServiceAccount per controller (`--use-service-account-credentials`), as kubeadm
sets it up. No kubelet and no scheduler: pods are created and admitted, never run.

Identities: `admin` is a client certificate in group system:masters; `token(namespace, name)`
asks the TokenRequest API for a ServiceAccount's token, so RBAC applies to it as in a cluster.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

SERVICE_CIDR = "10.96.0.0/16"
ISSUER = "https://kubernetes.default.svc.cluster.local"


class ApiError(Exception):
    def __init__(self, status: int, body: dict | str, what: str):
        self.status = status
        self.body = body
        message = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"{what}: HTTP {status}: {message}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
MERGE = "application/merge-patch+json"  # a JSON merge patch's content type


def make_ca(folder: Path, subject: str) -> None:
    """A CA valid for two days: ca.key and ca.crt in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", *EC_KEY, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", subject,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)


def make_leaf(folder: Path, name: str, subject: str, extensions: str) -> None:
    """A certificate signed by the folder's CA (make_ca): <name>.key and <name>.crt, with `extensions`
    (an openssl extension file's text: subjectAltName, extendedKeyUsage)."""
    (folder / f"{name}.ext").write_text(extensions)
    openssl("req", "-new", *EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=folder)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-out", f"{name}.crt", "-extfile", f"{name}.ext", cwd=folder)


def serving_extensions(names: list[str]) -> str:
    """The extensions of a TLS server's certificate for `names` (each `DNS:host` or `IP:address`)."""
    return f"subjectAltName={','.join(names)}\nextendedKeyUsage=serverAuth\n"


def make_pki(folder: Path) -> None:
    """A CA, the API server's serving certificate, client certificates, the ServiceAccount key pair."""
    make_ca(folder, "/CN=kfgen-test-ca")
    make_leaf(folder, "apiserver", "/CN=kube-apiserver",
              serving_extensions(["IP:127.0.0.1", "IP:10.96.0.1", "DNS:localhost", "DNS:kubernetes.default.svc"]))
    make_leaf(folder, "admin", "/O=system:masters/CN=kfgen-admin", "extendedKeyUsage=clientAuth\n")
    make_leaf(folder, "controller-manager", "/CN=system:kube-controller-manager", "extendedKeyUsage=clientAuth\n")
    openssl("genrsa", "-out", "sa.key", "2048", cwd=folder)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=folder)


def kubeconfig(server: str, ca: Path, user: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": server, "certificate-authority": str(ca)}}],
            "users": [{"name": "user", "user": user}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "user"}}]}


def _die_with_parent() -> None:
    """In the child: be killed if the test process dies without stopping us (Linux PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class ControlPlane:
    """The running control plane; `api` is an admin client."""

    folder: Path
    kube: Path
    etcd: Path
    processes: list[Process] = field(default_factory=list)
    port: int = 0
    etcd_port: int = 0

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def pki(self) -> Path:
        return self.folder / "pki"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.folder / "admin.kubeconfig"

    def start(self, kube_controller_manager: bool = True) -> None:
        make_pki(self.pki)
        self.etcd_port, peer = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{self.etcd_port}"
        self._spawn("etcd", [str(self.etcd), "--data-dir", str(self.folder / "etcd"), "--name", "test",
                             "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
                             "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                             "--initial-cluster", f"test=http://127.0.0.1:{peer}", "--unsafe-no-fsync", "--log-level", "warn"])
        self.port = free_port()
        pki = self.pki
        self._spawn("kube-apiserver", [
            str(self.kube), "kube-apiserver",
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.port}",
            f"--cert-dir={self.folder / 'apiserver-certs'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-issuer={ISSUER}",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=RBAC",
            # The default admission plugins stay on (ServiceAccount, PodSecurity, webhooks, ...).
            # With no node to serve it, the `kubernetes` Service's endpoint would be loopback, which is invalid.
            "--endpoint-reconciler-type=none",
            # Webhooks and aggregated APIs reach a Service through its endpoints, not its ClusterIP
            # (nothing routes cluster IPs on this host): a Service with no endpoints fails at once.
            "--enable-aggregator-routing=true",
            "--profiling=false",
        ])
        (self.admin_kubeconfig).write_text(json.dumps(kubeconfig(self.server, pki / "ca.crt",
                                                                 {"client-certificate": str(pki / "admin.crt"),
                                                                  "client-key": str(pki / "admin.key")})))
        self.api = Api(self.server, pki / "ca.crt", cert=(pki / "admin.crt", pki / "admin.key"))
        self._wait("kube-apiserver", lambda: self.api.request("GET", "/readyz", raw=True) == "ok", 120)
        if kube_controller_manager:
            kcm_config = self.folder / "controller-manager.kubeconfig"
            kcm_config.write_text(json.dumps(kubeconfig(self.server, pki / "ca.crt",
                                                        {"client-certificate": str(pki / "controller-manager.crt"),
                                                         "client-key": str(pki / "controller-manager.key")})))
            self._spawn("kube-controller-manager", [
                str(self.kube), "kube-controller-manager",
                f"--kubeconfig={kcm_config}",
                "--controllers=*", "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
                "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
                f"--cert-dir={self.folder / 'kcm-certs'}",
                f"--authentication-kubeconfig={kcm_config}", f"--authorization-kubeconfig={kcm_config}",
                "--authentication-skip-lookup=true",
                "--profiling=false",
            ])
            # Ready when its token controller has given the default namespace its ServiceAccount.
            self._wait("kube-controller-manager", lambda: self.api.exists("/api/v1/namespaces/default/serviceaccounts/default"), 120)

    def _spawn(self, name: str, args: list[str]) -> None:
        log = self.folder / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, env={**os.environ, "HOME": str(self.folder)},
                                     preexec_fn=_die_with_parent)
        self.processes.append(Process(name, popen, log))

    def _wait(self, name: str, ready, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            for process in self.processes:
                if not process.alive():
                    raise RuntimeError(f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}")
            try:
                if ready():
                    return
            except (OSError, ApiError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready after {seconds}s:\n" + "\n".join(p.tail(10) for p in self.processes))
            time.sleep(0.25)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def token(self, namespace: str, service_account: str, seconds: int = 3600) -> str:
        """A bound token for a ServiceAccount (the TokenRequest API)."""
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
        body = self.api.request("POST", path, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                               "spec": {"expirationSeconds": seconds}})
        return body["status"]["token"]

    def api_as(self, namespace: str, service_account: str) -> "Api":
        """A client that acts as the ServiceAccount (its bound token): RBAC applies as to its pods."""
        return self.api.with_token(self.token(namespace, service_account))

    def kubeconfig_for(self, namespace: str, service_account: str, path: Path) -> Path:
        """A kubeconfig that authenticates as the ServiceAccount: what an operator run locally gets."""
        path.write_text(json.dumps(kubeconfig(self.server, self.pki / "ca.crt", {"token": self.token(namespace, service_account)})))
        return path


class Api:
    """A minimal JSON client of the Kubernetes API (stdlib only)."""

    def __init__(self, server: str, ca: Path, cert: tuple[Path, Path] | None = None, token: str | None = None):
        self.host, self.port = server.removeprefix("https://").rsplit(":", 1)
        self.ca = ca
        self.context = ssl.create_default_context(cafile=str(ca))
        if cert:
            self.context.load_cert_chain(str(cert[0]), str(cert[1]))
        self.token = token
        self._resources: dict[tuple[str, str], tuple[str, bool]] = {}

    def with_token(self, token: str) -> "Api":
        """The same server, as the bearer of a token (no client certificate)."""
        return Api(f"https://{self.host}:{self.port}", self.ca, token=token)

    def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                query: dict | None = None, raw: bool = False) -> Any:
        """One call; a 429 (a watch cache re-initializing after a CRD change) is retried, as client-go does."""
        deadline = time.monotonic() + 30
        while True:
            try:
                return self._request(method, path, body, content_type=content_type, query=query, raw=raw)
            except ApiError as error:
                if error.status != 429 or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _request(self, method: str, path: str, body: Any, *, content_type: str, query: dict | None, raw: bool) -> Any:
        connection = http.client.HTTPSConnection(self.host, int(self.port), context=self.context, timeout=60)
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers["Content-Type"] = content_type
        url = path + ("?" + urlencode(query) if query else "")
        try:
            connection.request(method, url, body=data, headers=headers)
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        if raw and response.status < 300:
            return text
        try:
            parsed: Any = json.loads(text) if text else {}
        except json.JSONDecodeError:
            parsed = text
        if response.status >= 300:
            raise ApiError(response.status, parsed, f"{method} {url}")
        return parsed

    def exists(self, path: str) -> bool:
        try:
            self.request("GET", path)
            return True
        except ApiError as error:
            if error.status == 404:
                return False
            raise

    # --- paths of objects, from discovery ---------------------------------------------------------

    def resource(self, api_version: str, kind: str, refresh: bool = False) -> tuple[str, bool]:
        """(plural, namespaced) of a kind, from the server's discovery."""
        key = (api_version, kind)
        if key not in self._resources or refresh:
            prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            for item in self.request("GET", prefix)["resources"]:
                if "/" not in item["name"]:
                    self._resources[(api_version, item["kind"])] = (item["name"], item["namespaced"])
        if key not in self._resources:
            raise ApiError(404, f"no kind {kind} in {api_version}", "discovery")
        return self._resources[key]

    def path(self, obj: dict, *, collection: bool = False, refresh: bool = False) -> str:
        api_version = obj["apiVersion"]
        plural, namespaced = self.resource(api_version, obj["kind"], refresh)
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        namespace = obj["metadata"].get("namespace")
        out = prefix + (f"/namespaces/{namespace}" if namespaced and namespace else "") + f"/{plural}"
        return out if collection else f"{out}/{quote(obj['metadata']['name'])}"

    def get(self, obj: dict) -> dict:
        return self.request("GET", self.path(obj))
