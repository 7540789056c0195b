"""`kfgen serve-local`: a rendered SeldonDeployment's TensorFlow model on localhost, answering the
requests the cluster answers.

In the cluster a request to `https://<host><route prefix>...` goes through the gateway's Mapping
(the prefix replaced by its rewrite, `/` by default) to the predictor's Service, Seldon's executor
on port 8000, which speaks the SeldonDeployment's protocol:

- `tensorflow`: the executor passes TensorFlow Serving's REST API through to the model server
  (`POST /v1/models/<m>:predict`, `GET /v1/models/<m>`, `.../metadata`); TF Serving runs with
  `--model_name=<graph node name>`, so <m> is the graph's name (the executor's nonstandard
  `/v1/models/:predict` uses it too).
- `seldon`: `POST /api/v1.0/predictions` (and /api/v0.1/) with `{"data": {"ndarray": ...}}`,
  `{"data": {"tensor": ...}}` or `{"jsonData": ...}`, answered by Seldon's tfserving-proxy, which
  sends `{"instances": X, "signature_name": "serving_default"}` to TF Serving and returns
  `numpy.array(predictions)` (a 1-D result gets a leading dimension) in the request's data type,
  with names t:0..t:n-1 and `meta.requestPath` {container: image}.

serve-local answers the same paths at the route's prefix (each Mapping to the predictor) and at
the root (as the predictor Service does), and TF Serving's own /v1/ API at the root when the
protocol is seldon. Sources: SeldonIO/seldon-core v1.17.1 executor/api/rest/server.go and
client.go, executor/predictor/predictor_process.go, servers/tfserving_proxy/TfServingProxy.py,
python/seldon_core/utils.py and flask_utils.py, operator/controllers/seldondeployment_prepackaged_servers.go.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from kfgen.errors import InputError
from kfgen.tfserving import Reply, Servable, ServingError

EXECUTOR_PORT = 8000


@dataclass(frozen=True)
class Route:
    """A gateway Mapping to the predictor: its prefix, its rewrite, the host it answers on."""

    prefix: str
    rewrite: str
    hostname: str | None


@dataclass(frozen=True)
class Predictor:
    """What serve-local needs of a rendered SeldonDeployment."""

    name: str  # the SeldonDeployment
    predictor: str  # the predictor served (one version of the model)
    graph: str  # the graph's node name: TF Serving's model name
    protocol: str  # seldon | tensorflow
    model_uri: str | None
    routes: tuple[Route, ...]
    proxy_image: str | None  # the tfserving-proxy image (protocol seldon)
    others: tuple[str, ...] = ()  # the model's other predictors (a traffic split), not served locally


def find_predictor(objects: list[dict], name: str, env: str, predictor_name: str | None = None) -> Predictor:
    """The rendered SeldonDeployment `name`'s predictor (the one named, else the one with the most
    traffic: with a traffic split, one version is served locally), its routes and its server image;
    InputError when serve-local cannot serve it."""
    deployments = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "SeldonDeployment"}
    if name not in deployments:
        raise InputError(f"no SeldonDeployment {name!r} rendered for environment {env!r} (have: {', '.join(sorted(deployments)) or 'none'})")
    sdep = deployments[name]
    spec = sdep.get("spec") or {}
    predictors = {p.get("name", "default"): p for p in spec.get("predictors") or []}
    if predictor_name is None:
        served = [p for p in predictors.values() if not p.get("shadow")] or list(predictors.values())
        predictor_name = max(served, key=lambda p: p.get("traffic", 100 if len(served) == 1 else 0)).get("name", "default")
    if predictor_name not in predictors:
        raise InputError(f"--predictor {predictor_name}: SeldonDeployment {name} has no such predictor (it has: {', '.join(predictors)})")
    predictor = predictors[predictor_name]
    graph = predictor.get("graph") or {}
    if graph.get("implementation") != "TENSORFLOW_SERVER" or graph.get("children"):
        what = graph.get("implementation") or "a custom server"
        raise InputError(f"SeldonDeployment {name}: serve-local serves one TENSORFLOW_SERVER model (its graph is {what}"
                         f"{' with children' if graph.get('children') else ''})")
    protocol = spec.get("protocol") or "seldon"
    if protocol not in ("seldon", "tensorflow"):
        raise InputError(f"SeldonDeployment {name}: TENSORFLOW_SERVER speaks seldon or tensorflow, not {protocol!r}")
    namespace = sdep["metadata"].get("namespace")
    service = f"{name}-{predictor_name}"
    routes = []
    for mapping in objects:
        if mapping.get("kind") != "Mapping" or not _points_at(mapping, service, namespace):
            continue
        mspec = mapping.get("spec") or {}
        if mspec.get("prefix_regex"):
            continue
        routes.append(Route(mspec["prefix"], mspec.get("rewrite", "/"), mspec.get("hostname")))
    others = tuple(n for n in predictors if n != predictor_name)
    return Predictor(name, predictor_name, graph.get("name", "model"), protocol, graph.get("modelUri"),
                     tuple(sorted(routes, key=lambda r: -len(r.prefix))), _proxy_image(objects), others)


def _points_at(mapping: dict, service: str, namespace: str | None) -> bool:
    target = str((mapping.get("spec") or {}).get("service", ""))
    target = re.sub(r"^https?://", "", target)
    host, _, port = target.partition(":")
    parts = host.split(".")
    same_namespace = len(parts) == 1 and mapping["metadata"].get("namespace") == namespace
    return parts[0] == service and (same_namespace or (len(parts) > 1 and parts[1] == namespace)) and port in ("", str(EXECUTOR_PORT))


def _proxy_image(objects: list[dict]) -> str | None:
    """The tfserving-proxy image from the rendered seldon-config ConfigMap (PREDICTIVE_UNIT_IMAGE)."""
    for obj in objects:
        if obj.get("kind") == "ConfigMap" and obj["metadata"]["name"] == "seldon-config":
            servers = json.loads((obj.get("data") or {}).get("predictor_servers", "{}"))
            seldon = ((servers.get("TENSORFLOW_SERVER") or {}).get("protocols") or {}).get("seldon") or {}
            if seldon.get("image"):
                return f"{seldon['image']}:{seldon.get('defaultImageVersion', 'latest')}"
    return None


def model_dir(predictor: Predictor, given: Path | None, stack_dir: Path) -> Path:
    """--model-dir, else the graph's modelUri when it is a path on this machine."""
    if given is not None:
        return given.resolve()
    uri = predictor.model_uri or ""
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    if uri and "://" not in uri:
        return (stack_dir / uri).resolve()
    raise InputError(f"--model-dir is required: the model's modelUri {uri!r} is not on this machine "
                     "(give the folder run-local wrote, the KFGEN_MODEL_DIR of the training job)")


# --- the executor ---------------------------------------------------------------------------------

class Executor:
    """Seldon's executor in front of one TF Serving model, for one protocol."""

    def __init__(self, predictor: Predictor, servable: Servable):
        self.predictor, self.servable = predictor, servable

    def handle(self, method: str, path: str, body: bytes, content_type: str) -> Reply:
        """An executor path (after the gateway's rewrite)."""
        if path in ("/ready", "/live"):
            return Reply(200, "")
        if self.predictor.protocol == "tensorflow":
            return self._tensorflow(method, path, body)
        return self._seldon(method, path, body, content_type)

    def _tensorflow(self, method: str, path: str, body: bytes) -> Reply:
        graph = self.predictor.graph
        if method == "POST":
            match = re.fullmatch(r"/v1/models(?:/([^/]+?))?/?:predict", path)
            if match:  # the name in the path overrides the graph's (an empty one does not)
                return self.servable.handle("POST", f"/v1/models/{match.group(1) or graph}:predict", body)
        if method == "GET":
            match = re.fullmatch(r"/v1/models/([^/]+)(/metadata)?", path)
            if match:
                if match.group(1) != graph:
                    return Reply(500, json.dumps({"status": {"code": 500, "info": f"Failed to find model {match.group(1)}", "status": "FAILURE"}}))
                return self.servable.handle("GET", path, b"")
        return Reply(404, "404 page not found\n")

    def _seldon(self, method: str, path: str, body: bytes, content_type: str) -> Reply:
        if method == "GET" and path in ("/api/v1.0/health/status", "/api/v1.0/status"):
            return Reply(200, "")
        if method == "POST" and path in ("/api/v1.0/predictions", "/api/v0.1/predictions"):
            status, answer = seldon_predict(self.servable, body, content_type, self.predictor.graph, self.predictor.proxy_image)
            return Reply(status, json.dumps(answer, sort_keys=True) + "\n")
        return Reply(404, "404 page not found\n")


def seldon_predict(servable: Servable, body: bytes, content_type: str, unit: str, image: str | None) -> tuple[int, dict]:
    """The Seldon protocol's predict, as tfserving-proxy under the Python wrapper answers it."""
    import numpy as np

    try:
        request = _seldon_request(body, content_type)
        if not isinstance(request, dict):
            raise _BadData(f"Invalid request data type: {request}")
        meta = {"requestPath": {unit: image}} if image else {}  # PREDICTIVE_UNIT_ID: the graph node (its container)
        if isinstance(request.get("meta"), dict) and request["meta"].get("puid"):
            meta["puid"] = request["meta"]["puid"]
        if "data" in request:
            datadef = request["data"] or {}
            if "tensor" in datadef:
                features = np.array(datadef["tensor"]["values"]).reshape(datadef["tensor"]["shape"])
            elif "ndarray" in datadef:
                features = np.array(datadef["ndarray"])
            else:
                raise _BadData("serve-local answers data.ndarray, data.tensor and jsonData")
            reply = _tf_serving(servable, {"instances": features.tolist(), "signature_name": "serving_default"})
            if not isinstance(reply, dict) or "predictions" not in reply:
                return 200, {"jsonData": reply, "meta": meta}  # the proxy returns TF Serving's error as data
            result = np.array(reply["predictions"])
            if result.ndim == 1:
                result = np.expand_dims(result, axis=0)
            kind = "tensor" if np.issubdtype(result.dtype, np.number) and "tensor" in datadef else "ndarray"
            data: dict[str, Any] = ({"tensor": {"values": result.ravel().tolist(), "shape": list(result.shape)}} if kind == "tensor"
                                    else {"ndarray": result.tolist()})
            data["names"] = [f"t:{i}" for i in range(result.shape[1])] if result.ndim > 1 else []
            return 200, {"data": data, "meta": meta}
        if "jsonData" in request:
            return 200, {"jsonData": _tf_serving(servable, request["jsonData"]), "meta": meta}
        raise _BadData(f"Invalid request data type: {request}")
    except _BadData as exc:
        return 400, {"status": {"status": 1, "info": str(exc), "code": -1, "reason": "MICROSERVICE_BAD_DATA"}}


class _BadData(Exception):
    """seldon_core's SeldonMicroserviceException (400, MICROSERVICE_BAD_DATA)."""


def _seldon_request(body: bytes, content_type: str) -> Any:
    """seldon_core.flask_utils.get_request: a form's `json` field, else the body as JSON when the
    Content-Type says so (werkzeug < 2.3's get_json() refuses any other)."""
    mimetype = content_type.split(";")[0].strip().lower()
    if mimetype == "application/x-www-form-urlencoded":
        field = parse_qs(body.decode("utf-8", errors="replace")).get("json")
        if field:
            try:
                return json.loads(field[0])
            except ValueError:
                raise _BadData("Can't find JSON in data") from None
    if mimetype != "application/json" and not (mimetype.startswith("application/") and mimetype.endswith("+json")):
        raise _BadData("Can't find JSON in data")
    try:
        return json.loads(body)
    except ValueError:
        raise _BadData("Can't find JSON in data") from None


def _tf_serving(servable: Servable, request: Any) -> Any:
    """What the proxy's POST to TF Serving's REST port returns, parsed."""
    reply = servable.handle("POST", f"/v1/models/{servable.name}:predict", json.dumps(request).encode())
    return json.loads(reply.body)


# --- HTTP ------------------------------------------------------------------------------------------

class Gateway:
    """Routes a local request as the cluster would: a route's prefix to the executor (rewritten),
    the root to the executor too, and /v1/ at the root to TF Serving itself when the protocol is seldon."""

    def __init__(self, executor: Executor):
        self.executor = executor

    def handle(self, method: str, target: str, body: bytes, content_type: str) -> Reply:
        path = urlsplit(target).path
        for route in self.executor.predictor.routes:
            if path.startswith(route.prefix):
                rewritten = route.rewrite + path[len(route.prefix):] if route.rewrite else path
                return self.executor.handle(method, rewritten, body, content_type)
        if self.executor.predictor.protocol == "seldon" and re.match(r"(?i)/v1/", path):
            return self.executor.servable.handle(method, path, body)
        return self.executor.handle(method, path, body, content_type)


class LocalServer(ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1 whose requests go to `gateway` (set once the model is loaded)."""

    daemon_threads = True
    gateway: Gateway | None = None


def make_server(port: int, log: Callable[[str], None]) -> LocalServer:
    """Bind 127.0.0.1:port (0: any free port) before the model loads; InputError when the port is taken."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server: LocalServer

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            gateway = self.server.gateway
            try:
                reply = gateway.handle(self.command, self.path, body, self.headers.get("Content-Type") or "") if gateway else Reply(503, "")
            except ServingError as exc:
                reply = Reply.error(exc.status, str(exc))
            data = reply.body.encode()
            self.send_response(reply.status)
            if data:
                self.send_header("Content-Type", "application/json" if data.lstrip().startswith((b"{", b"[")) else "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (BaseHTTPRequestHandler's signature)
            log(f"kfgen: {self.command} {self.path} {args[1] if len(args) > 1 else ''}".rstrip())

    try:
        return LocalServer(("127.0.0.1", port), Handler)
    except OSError as exc:
        raise InputError(f"--port {port}: {exc.strerror}; choose another port") from None


def serve(server: LocalServer, ready: str, out=sys.stdout) -> None:
    """Print the ready line, then answer until interrupted (the caller stops cleanly)."""
    print(ready, file=out, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
