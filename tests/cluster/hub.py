"""The rendered JupyterHub, run for real against the tier's API server.

The hub and its proxy run as the pods the controller-manager created from the rendered
Deployments: each container's command, environment and volumes, read from the API (see
sandbox.py), with JupyterHub 5.5.0, KubeSpawner 7.0.0, OAuthenticator 17.4.0 and
configurable-http-proxy 5.2.0 (the k8s-hub 4.4.0 image's pins, built by build.py) standing in for
the images. The hub runs the `jupyterhub_config.py` of the rendered ConfigMap, at the paths the pod
mounts; it talks to the API server with its ServiceAccount's token, found where KubeSpawner's
in-cluster configuration reads it.

The login provider is `oauth_provider.Provider`, at the names the authenticator uses (the stack's
URLs, or github.com and api.github.com): the node's /etc/hosts points them at it and its CA is in
the node's trust store. A `Browser` stands for the user, reaching the hub through the proxy's
Service as the gateway would.
"""

from __future__ import annotations

import html.parser
import re
import secrets
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlparse, urlunparse

import requests

from . import build
from .controlplane import ApiError, Process
from .oauth_provider import Provider, make_certificate
from .operators import Operators, deployment_pod
from .sandbox import Node, Relay

PROVIDER_ADDRESS = "127.0.0.2"  # the node's address for the provider's names (127.0.0.1:443 is the API server)
GITHUB = ("https://github.com/login/oauth/authorize", "https://github.com/login/oauth/access_token", "https://api.github.com/user")


class HubFailed(Exception):
    pass


# --- the user's browser ---------------------------------------------------------------------------

class Browser:
    """Follows redirects across the hosts of the login, each reached at a local address (`routes`:
    origin -> local base URL), with one cookie jar, as a browser does."""

    def __init__(self, routes: dict[str, str], ca: Path):
        self.routes = routes
        self.session = requests.Session()
        self.session.trust_env = False  # the machine's proxy and CA bundle variables are not this browser's
        self.ca = str(ca)
        self.visited: list[str] = []

    def local(self, url: str) -> str:
        parts = urlparse(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self.routes:
            raise HubFailed(f"the browser was sent to {url}, which is none of the login's hosts ({', '.join(self.routes)})")
        base = urlparse(self.routes[origin])
        return urlunparse(parts._replace(scheme=base.scheme, netloc=base.netloc))

    def go(self, method: str, url: str, *, api: bool = False, xsrf: str | None = None, **kwargs) -> requests.Response:
        """One navigation (or, with api, a script's same-origin request), following redirects."""
        headers = {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"} if api else {"Sec-Fetch-Mode": "navigate"}
        if xsrf:
            headers["X-XSRFToken"] = xsrf
        for _ in range(12):
            self.visited.append(f"{method} {url}")
            response = self.session.request(method, self.local(url), headers=headers, allow_redirects=False, timeout=60,
                                            verify=self.ca, **kwargs)
            if response.status_code not in (301, 302, 303, 307, 308):
                response.world_url = url  # type: ignore[attr-defined]
                return response
            url = urljoin(url, response.headers["Location"])
            if response.status_code in (301, 302, 303):
                method, kwargs = "GET", {}
        raise HubFailed(f"too many redirects: {self.visited[-12:]}")


class FormParser(html.parser.HTMLParser):
    """The spawn form's action, its profile choices and its _xsrf field."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.profiles: list[str] = []
        self.checked: list[str] = []
        self.xsrf = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == "spawn_form":
            self.action = a.get("action")
        if tag == "input" and a.get("name") == "profile":
            self.profiles.append(a.get("value"))
            if "checked" in a:
                self.checked.append(a.get("value"))
        if tag == "input" and a.get("name") == "_xsrf":
            self.xsrf = a.get("value")


def page_xsrf(page: str) -> str | None:
    """The token JupyterHub's pages give their scripts (window.jhdata.xsrf_token)."""
    match = re.search(r'xsrf_token:\s*"([^"]*)"', page)
    return match.group(1) if match else None


# --- the hub --------------------------------------------------------------------------------------

@dataclass
class Login:
    """Who logs in, through which endpoints: what the stack's authenticator implies."""

    type: str
    endpoints: tuple[str, str, str]  # authorize, token, user info
    callback: str
    user: str
    userinfo: dict
    scopes: list[str] | None  # what the hub asks for (generic-oauth: the stack's scopes)


@dataclass
class RunningHub:
    namespace: str
    node: Node
    hub: Process
    proxy: Process
    provider: Provider
    provider_server: ThreadingHTTPServer
    browser: Browser
    public: str  # the hub's public origin (https://<gateway hostname>)
    login: Login
    secret: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)
    landing: requests.Response | None = None  # where the login ended (once per hub)

    def url(self, path: str) -> str:
        return f"{self.public}{path}"

    def log(self) -> str:
        return self.hub.log.read_text(errors="replace") if self.hub.log.exists() else ""

    def alive(self) -> None:
        for process in (self.hub, self.proxy, self.node.holder):
            if process is not None and not process.alive():
                raise HubFailed(f"{process.name} exited with {process.popen.returncode}:\n{process.tail(40)}")

    def stop(self) -> None:
        self.node.stop()
        self.provider_server.shutdown()


def hub_programs() -> tuple[Path, Path]:
    """(the venv's bin, configurable-http-proxy's bin) of build.py's jupyterhub program."""
    folder = build.folder("jupyterhub")
    if folder is None:
        raise HubFailed("jupyterhub is not built (run: python tests/cluster/build.py)")
    return folder / "venv" / "bin", folder / "proxy" / "node_modules" / ".bin"


def service_hosts(api, namespace: str) -> list[tuple[str, int, int]]:
    """(service, port, target port) of each Service of the namespace, named ports resolved on its pods."""
    out = []
    pods = api.request("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
    for service in api.request("GET", f"/api/v1/namespaces/{namespace}/services")["items"]:
        selector = service["spec"].get("selector") or {}
        chosen = [p for p in pods if selector and all(p["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if isinstance(target, str):
                named = [c["containerPort"] for p in chosen for c in p["spec"]["containers"] for c in c.get("ports", []) if c.get("name") == target]
                if not named:
                    continue
                target = named[0]
            out.append((service["metadata"]["name"], port["port"], target))
    return out


def put_secret(api, namespace: str, name: str, values: dict[str, str]) -> None:
    """The hub's Secret, made out of band as the README says (kubectl create secret generic)."""
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}, "stringData": values}
    try:
        api.request("DELETE", f"/api/v1/namespaces/{namespace}/secrets/{name}")
    except ApiError as error:
        if error.status != 404:
            raise
    api.request("POST", f"/api/v1/namespaces/{namespace}/secrets", body)


def start_hub(cluster, synced, login: Login, public: str, folder: Path, ready_seconds: float = 240) -> RunningHub:
    """Run the synced environment's hub and proxy pods in a node; ready when the hub answers through the proxy."""
    api = cluster.api
    venv_bin, proxy_bin = hub_programs()
    kubelet = Operators(cluster, synced, folder / "pods")  # the operator runner's volumes and environment; it runs nothing here
    hub_deployment, proxy_deployment = kubelet.deployment("hub"), kubelet.deployment("proxy")
    namespace = hub_deployment["metadata"]["namespace"]
    seconds: dict[str, float] = {}
    start = time.monotonic()

    secret_name = next(v["secret"]["secretName"] for v in hub_deployment["spec"]["template"]["spec"]["volumes"] if "secret" in v)
    secret = {"cookie-secret": secrets.token_hex(32), "proxy-token": secrets.token_hex(32),
              "oauth-client-id": f"kfgen-test-{secrets.token_hex(4)}", "oauth-client-secret": secrets.token_hex(16)}
    put_secret(api, namespace, secret_name, secret)

    hub_pod, proxy_pod = deployment_pod(api, hub_deployment), deployment_pod(api, proxy_deployment)
    seconds["pods"] = time.monotonic() - start
    hub_container = next(c for c in hub_pod["spec"]["containers"] if c["name"] == "hub")
    proxy_container = proxy_pod["spec"]["containers"][0]
    mounts = kubelet.project_volumes(hub_container, hub_pod, folder / "volumes" / "hub") + \
        kubelet.project_volumes(proxy_container, proxy_pod, folder / "volumes" / "proxy")
    in_cluster = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}  # what the kubelet adds: the relayed API server

    provider_hosts = sorted({urlparse(u).hostname or "" for u in login.endpoints})
    ca, certificate, key = make_certificate(folder / "provider-tls", provider_hosts)
    provider = Provider(*login.endpoints, client_id=secret["oauth-client-id"], client_secret=secret["oauth-client-secret"],
                        redirect_uri=login.callback, userinfo=login.userinfo)
    server = provider.serve(certificate, key)

    hosts = {host: PROVIDER_ADDRESS for host in provider_hosts}
    ports = service_hosts(api, namespace)
    for service, _, _ in ports:
        for name in (f"{service}.{namespace}.svc.cluster.local", f"{service}.{namespace}.svc", f"{service}.{namespace}"):
            hosts[name] = "127.0.0.1"
    node = Node(folder / "node")
    node.boot(mounts, hosts, ca)
    try:
        node.relay_in(443, ("127.0.0.1", cluster.plane.port))  # KUBERNETES_SERVICE_HOST:PORT
        node.relays.append(_relay_to_host(node, PROVIDER_ADDRESS, 443, server.server_address[1]))
        for _, port, target in ports:
            if port != target:  # a Service's port that is not its pods' port (proxy-public 80 -> 8000)
                node.relays.append(_relay_within(node, port, target))
        base_env = {"PATH": f"{venv_bin}:{proxy_bin}:/usr/local/bin:/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"}
        proxy = node.start("proxy", [*proxy_container.get("command", []), *proxy_container.get("args", [])],
                           {**base_env, "HOME": "/tmp", **in_cluster, **kubelet.container_environment(proxy_container, proxy_pod)}, proxy_container.get("workingDir"))
        hub = node.start("hub", [*hub_container.get("command", []), *hub_container.get("args", [])],
                         {**base_env, "HOME": hub_container.get("workingDir", "/tmp"), **in_cluster, **kubelet.container_environment(hub_container, hub_pod)},
                         hub_container.get("workingDir"))
        public_port = next(port for service, port, _ in ports if service == "proxy-public")
        gateway = node.relay_out(public_port)
        browser = Browser({public: f"http://127.0.0.1:{gateway.port}",
                           **{f"https://{h}": f"https://127.0.0.1:{server.server_address[1]}" for h in provider_hosts}}, ca)
        running = RunningHub(namespace, node, hub, proxy, provider, server, browser, public, login, secret, seconds)
        wait_ready(running, ready_seconds)
        seconds["ready"] = time.monotonic() - start
        return running
    except BaseException:
        node.stop()
        server.shutdown()
        raise


def _relay_to_host(node: Node, address: str, port: int, host_port: int) -> Relay:
    return Relay((node.pid, address, port), (None, "127.0.0.1", host_port))


def _relay_within(node: Node, port: int, target: int) -> Relay:
    return Relay((node.pid, "127.0.0.1", port), (node.pid, "127.0.0.1", target))


def wait_ready(hub: RunningHub, seconds: float) -> None:
    """The hub says it runs (its start is complete: routes added, services started) and its health
    endpoint answers through the proxy, which reaches the hub by its Service's name."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        hub.alive()
        try:
            response = hub.browser.go("GET", hub.url("/notebooks/hub/health"))
            if response.status_code == 200 and "JupyterHub is now running" in hub.log():
                return
            last = f"HTTP {response.status_code}"
        except (requests.RequestException, HubFailed) as error:
            last = str(error)
        time.sleep(1)
    raise HubFailed(f"the hub did not answer through the proxy in {seconds}s ({last}):\nhub:\n{hub.hub.tail(40)}\nproxy:\n{hub.proxy.tail(10)}")

