"""A small OAuth2 provider (authorization code grant, RFC 6749 section 4.1) for the hub's login.

It serves the three endpoints a stack's authenticator names (its authorize, token and user info
URLs), over TLS with a certificate for their hosts signed by a test CA, and logs in one user. It
checks what an OAuth provider checks (client id and secret, the registered redirect URI, the code,
the token) and keeps every request so that tests can say what the hub sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

from .controlplane import make_ca, make_leaf, serving_extensions


def make_certificate(folder: Path, hosts: list[str]) -> tuple[Path, Path, Path]:
    """(CA, certificate, key): a CA and a serving certificate for `hosts` (and 127.0.0.1)."""
    make_ca(folder, "/CN=kfgen-test-oauth-ca")
    make_leaf(folder, "leaf", f"/CN={hosts[0]}", serving_extensions([*(f"DNS:{h}" for h in hosts), "IP:127.0.0.1"]))
    return folder / "ca.crt", folder / "leaf.crt", folder / "leaf.key"


def pkce_holds(issued: dict, verifier: str) -> bool:
    """RFC 7636 section 4.6: the verifier, hashed as the challenge's method says, is the challenge."""
    if issued.get("code_challenge_method", "plain") == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == issued["code_challenge"]
    return verifier == issued["code_challenge"]


@dataclass
class Provider:
    """The provider's endpoints (full URLs), its one client, the user who logs in and the user info it answers."""

    authorize_url: str
    token_url: str
    userdata_url: str
    client_id: str
    client_secret: str
    redirect_uri: str  # the one registered for the client
    userinfo: dict
    requests: list[dict] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    codes: dict[str, dict] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)

    def serve(self, certificate: Path, key: Path) -> ThreadingHTTPServer:
        """Listen on 127.0.0.1 (a free port) in a thread; stop with .shutdown()."""
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                provider.handle(self, "GET")

            def do_POST(self):
                provider.handle(self, "POST")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(certificate), str(key))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(request.path)
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0)).decode() if method == "POST" else ""
        form = {k: v[0] for k, v in parse_qs(body).items()}
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.requests.append({"method": method, "path": url.path, "query": query, "form": form, "headers": dict(request.headers)})
        if method == "GET" and url.path == urlparse(self.authorize_url).path:
            self.authorize(request, query)
        elif method == "POST" and url.path == urlparse(self.token_url).path:
            self.token(request, form)
        elif method == "GET" and url.path == urlparse(self.userdata_url).path:
            self.user(request)
        else:
            self.refuse(request, 404, f"no endpoint {method} {url.path}")

    def refuse(self, request, status: int, why: str) -> None:
        self.refusals.append(why)
        self.answer(request, status, {"error": "invalid_request", "error_description": why})

    @staticmethod
    def answer(request, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        for k, v in {"Content-Type": "application/json", "Content-Length": str(len(data)), **(headers or {})}.items():
            request.send_header(k, v)
        request.end_headers()
        request.wfile.write(data)

    def authorize(self, request, query: dict) -> None:
        """The user is logged in at the provider and agrees: back to the client's redirect URI with a code."""
        if query.get("response_type") != "code":
            return self.refuse(request, 400, f"response_type {query.get('response_type')!r}")
        if query.get("client_id") != self.client_id:
            return self.refuse(request, 400, f"unknown client_id {query.get('client_id')!r}")
        if query.get("redirect_uri") != self.redirect_uri:
            return self.refuse(request, 400, f"redirect_uri {query.get('redirect_uri')!r} is not the registered {self.redirect_uri!r}")
        code = secrets.token_urlsafe(16)
        self.codes[code] = query
        target = f"{self.redirect_uri}?{urlencode({'code': code, 'state': query.get('state', '')})}"
        request.send_response(302)
        request.send_header("Location", target)
        request.send_header("Content-Length", "0")
        request.end_headers()

    def token(self, request, form: dict) -> None:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            return self.refuse(request, 401, "the client's id or secret is wrong")
        if form.get("grant_type") != "authorization_code":
            return self.refuse(request, 400, f"grant_type {form.get('grant_type')!r}")
        issued = self.codes.pop(form.get("code", ""), None)
        if issued is None:
            return self.refuse(request, 400, "unknown or used code")
        if form.get("redirect_uri") != issued["redirect_uri"]:
            return self.refuse(request, 400, f"redirect_uri {form.get('redirect_uri')!r} differs from the authorization's")
        if "code_challenge" in issued and not pkce_holds(issued, form.get("code_verifier", "")):
            return self.refuse(request, 400, "the code_verifier does not match the authorization's code_challenge (PKCE)")
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        self.answer(request, 200, {"access_token": token, "token_type": "bearer", "scope": issued.get("scope", "")})

    def user(self, request) -> None:
        kind, _, token = request.headers.get("Authorization", "").partition(" ")
        if kind.lower() not in ("bearer", "token") or token not in self.tokens:
            return self.refuse(request, 401, "no valid access token")
        self.answer(request, 200, self.userinfo)
