"""Notebooks come up (issue 12): the rendered JupyterHub runs against the tier's API server.

For every environment of both examples, the hub of the render runs as its pod would (hub.py): the
`jupyterhub_config.py` of its ConfigMap, the Deployment's command, environment and volumes, the hub
ServiceAccount's token, with JupyterHub 5.5.0, KubeSpawner 7.0.0, OAuthenticator 17.4.0 and
configurable-http-proxy 5.2.0 (the k8s-hub 4.4.0 image's pins). Then:

- the hub starts, behind its proxy, and runs its idle culler;
- a user logs in through the stack's authenticator, against a local OAuth2 provider standing at
  the addresses that authenticator uses (the stack's URLs for generic-oauth; github.com and
  api.github.com for github), which checks the client's credentials and its redirect URI;
- the spawn form offers the environment's profiles, and each spawns a pod that Pod Security admits,
  with the profile's image and resources and its accelerator's scheduling. Expectations come from
  the stack and the accelerator and cloud profiles it names (overlays/, the stack's profiles), never
  from kfgen's output. No kubelet runs the pod: the spawn is cancelled once the pod is there;
- the hub's log has no Forbidden (its ServiceAccount may make every call KubeSpawner makes, the
  culler every call it makes to the hub).
"""

from __future__ import annotations

import re
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from kfgen.workload_specs import merged  # the stack's override rule, tested in tests/test_overrides.py

from .conftest import ROOT, require_tier
from .hub import GITHUB, FormParser, HubFailed, Login, page_xsrf, start_hub
from .operators import PROBLEM
from .sandbox import unavailable

OVERLAYS = ROOT / "overlays"
NOTEBOOK_LABEL = "component=singleuser-server"  # KubeSpawner's component label on notebook pods
HUB_REFUSAL = re.compile(r"\b403 (?:GET|POST|PUT|PATCH|DELETE|HEAD)\b")  # the hub refusing a call (the culler's, the browser's)


# --- what the stack says --------------------------------------------------------------------------

def stack_environment(stack: str, env: str) -> tuple[dict, dict, Path]:
    """(spec with the environment's overrides applied, the environment, the stack's folder)."""
    folder = ROOT / "stacks" / stack
    spec = yaml.safe_load((folder / "stack.yaml").read_text())["spec"]
    environment = spec["environments"][env]
    overrides = environment.get("overrides") or {}
    spec = {**spec, "components": merged(spec["components"], overrides.get("components") or {}),
            "workloads": merged(spec["workloads"], overrides.get("workloads") or {})}
    return spec, environment, folder


def expected_login(spec: dict) -> tuple[Login, str]:
    """The login the stack's hub settings imply, and the hub's public origin (the gateway's host)."""
    gateway = spec["components"]["ambassador"]
    public = f"{'https' if gateway.get('tlsSecret') else 'http'}://{gateway['hostname']}"
    callback = f"{public}/notebooks/hub/oauth_callback"  # the hub is served under /notebooks/ (README)
    auth = spec["components"]["jupyterhub"]["auth"]
    admins = set(auth.get("admins") or ())
    allowed = [u for u in auth.get("allowedUsers") or () if u not in admins]
    user = allowed[0] if allowed else "ada-lovelace"
    if auth["type"] == "github":  # GitHubOAuthenticator's defaults for github.com; its username is `login`
        return Login("github", GITHUB, callback, user, {"login": user, "id": 4242, "email": None, "name": user}, None), public
    if auth["type"] == "generic-oauth":
        oauth = auth["oauth"]
        claim = oauth.get("usernameClaim", "username")  # OAuthenticator's default claim
        return Login("generic-oauth", (oauth["authorizeUrl"], oauth["tokenUrl"], oauth["userdataUrl"]), callback, user,
                     {claim: user, "sub": "f81d4fae-7dec", "email": f"{user}@example.com"}, oauth.get("scopes")), public
    pytest.fail(f"the examples' hubs log in with OAuth; {auth['type']!r} is not covered here")


def profile_data(folder: Path, kind: str, name: str, stack_folder: Path, spec: dict) -> dict:
    """A built-in profile (overlays/<kind>/<name>.yaml) or the stack's own of that name, which replaces it."""
    for profiles in spec.get("profiles") or ():
        own = stack_folder / profiles / kind / f"{name}.yaml"
        if own.is_file():
            return yaml.safe_load(own.read_text())
    return yaml.safe_load((folder / kind / f"{name}.yaml").read_text())


def expected_profiles(spec: dict, environment: dict, stack_folder: Path) -> dict[str, dict]:
    """{name: what its pod must have}: the stack's enabled notebook profiles with their accelerator's scheduling."""
    out = {}
    cloud = profile_data(OVERLAYS, "clouds", environment["cloud"], stack_folder, spec)
    for name, profile in spec["workloads"].get("notebooks", {}).items():
        if profile.get("enabled", True) is False:
            continue
        want = {"image": profile["image"], "resources": profile.get("resources") or {}, "maxAge": profile.get("maxAge"),
                "nodeSelector": {"kubernetes.io/os": "linux"}, "tolerations": [], "instanceTypes": None, "extended": {}}
        if profile.get("accelerator"):
            accelerator_class = environment["accelerators"][profile["accelerator"]]
            want.update(accelerator_expectations(accelerator_class, cloud, environment, stack_folder, spec, profile["image"]))
        out[name] = want
    return out


def accelerator_expectations(klass: dict, cloud: dict, environment: dict, stack_folder: Path, spec: dict, image: str) -> dict:
    """Scheduling of a pod on an accelerator class, from the accelerator and cloud profiles (README,
    "Node selection"): the strategy's placement (a cloud profile's own placement replaces it), the
    profile's and the placement's tolerations, the extended resource (MIG: GKE's partition label
    with nvidia.com/gpu; elsewhere the device plugin's mixed-strategy resource)."""
    accelerator = profile_data(OVERLAYS, "accelerators", klass["type"], stack_folder, spec)
    scheme = cloud["scheme"]
    strategy = klass.get("nodeSelection") or environment.get("nodeSelection") or cloud.get("nodeSelection") \
        or ("managed" if scheme in ("gke", "eks", "aks") else "feature-discovery")
    placement = (cloud.get("accelerators") or {}).get(klass["type"]) \
        or accelerator["placement"][scheme if strategy == "managed" else strategy]
    selector = {"kubernetes.io/os": "linux", **(placement.get("nodeSelector") or {})}
    resource, count = accelerator["resource"], str(klass.get("count", 1))
    if klass.get("mig"):
        if scheme == "gke":
            selector["cloud.google.com/gke-gpu-partition-size"] = klass["mig"]
        else:
            resource = f"nvidia.com/mig-{klass['mig']}"
    variant = image
    for v in accelerator.get("imageVariants") or ():
        repository, _, tag = image.rpartition(":")
        if repository in (v["repository"], f"docker.io/{v['repository']}", f"docker.io/library/{v['repository']}"):
            variant = f"{repository}:{tag}{v['tagSuffix']}"
    return {"image": variant, "nodeSelector": selector, "extended": {resource: count},
            "tolerations": [*(accelerator.get("tolerations") or ()), *(placement.get("tolerations") or ())],
            "instanceTypes": placement.get("instanceTypes") or None}


def quantity(text) -> Decimal:
    """A Kubernetes quantity as a number (the suffixes these stacks use)."""
    text = str(text)
    for suffix, factor in (("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30), ("Ti", 2**40), ("m", Decimal("0.001")),
                           ("k", 10**3), ("M", 10**6), ("G", 10**9)):
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * factor
    return Decimal(text)


# --- the running hub ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def hub(cluster, environment, tmp_path_factory):
    """The environment's hub and proxy, running; stopped when the environment changes."""
    require_tier()
    lack = unavailable()
    if lack:
        pytest.skip(lack)
    stack, env = environment
    spec, _, _ = stack_environment(stack, env)
    login, public = expected_login(spec)
    synced = cluster.synced(stack, env)
    start = time.monotonic()
    running = start_hub(cluster, synced, login, public, tmp_path_factory.mktemp(f"hub-{stack}-{env}"))
    cluster.seconds[f"hub {stack}/{env}"] = time.monotonic() - start
    try:
        yield running
    finally:
        running.stop()
        cluster.dirty()  # the Secret, the user's volume claim: the next user starts from a clean cluster


def logged_in(hub):
    """Log the user in (once per hub) and return the page the hub sends them to."""
    if hub.landing is None:
        page = hub.browser.go("GET", hub.url("/notebooks/hub/login"))
        assert page.status_code == 200, f"login page: HTTP {page.status_code}"
        assert "oauth_login" in page.text, "the login page has no link to the OAuth login"
        landing = hub.browser.go("GET", hub.url("/notebooks/hub/oauth_login?next="))
        assert landing.status_code == 200, (f"HTTP {landing.status_code} at {landing.world_url}; provider refused: "
                                            f"{hub.provider.refusals}\n{hub.hub.tail(30)}")
        hub.landing = landing
    return hub.landing


def test_hub_starts_behind_its_proxy_with_its_culler(hub):
    hub.alive()
    health = hub.browser.go("GET", hub.url("/notebooks/hub/health"))
    assert health.status_code == 200
    log = hub.log()
    assert "JupyterHub is now running" in log
    assert "Starting service 'jupyterhub-idle-culler'" in log, "the idle culler service was not started"
    deadline = time.monotonic() + 60  # the culler lists users as soon as it starts
    while not re.search(r"200 GET /notebooks/hub/api/users\S* .*\(jupyterhub-idle-culler@", hub.log()):
        assert "Service jupyterhub-idle-culler exited" not in hub.log(), hub.hub.tail(30)
        assert time.monotonic() < deadline, f"the culler made no successful call to the hub in 60s:\n{hub.hub.tail(30)}"
        time.sleep(1)


def test_login_through_the_stacks_authenticator(hub):
    landing = logged_in(hub)
    login = hub.login
    assert "/notebooks/hub/spawn" in landing.world_url, landing.world_url  # a logged-in user with no server yet
    assert login.user in landing.text
    seen: dict[str, list[dict]] = {}
    for request in hub.provider.requests:
        seen.setdefault(request["path"], []).append(request)
    authorize, token, user = (seen.get(urlparse(url).path, []) for url in login.endpoints)
    assert authorize and token and user, f"the provider saw {sorted(seen)}"
    query = authorize[0]["query"]
    assert query["redirect_uri"] == login.callback
    assert query["client_id"] == hub.secret["oauth-client-id"]
    if login.scopes is not None:
        assert sorted(query.get("scope", "").split()) == sorted(login.scopes)
    assert not hub.provider.refusals, hub.provider.refusals


def test_each_profile_spawns_an_admitted_pod_as_the_stack_says(hub, cluster, environment):
    spec, env_data, folder = stack_environment(*environment)
    want = expected_profiles(spec, env_data, folder)
    landing = logged_in(hub)
    api = cluster.api
    namespace = hub.namespace
    enforce = api.request("GET", f"/api/v1/namespaces/{namespace}")["metadata"]["labels"].get("pod-security.kubernetes.io/enforce")
    assert enforce == "restricted"
    form = FormParser()
    form.feed(hub.browser.go("GET", hub.url("/notebooks/hub/spawn")).text)
    assert sorted(form.profiles) == sorted(want), f"the spawn form offers {form.profiles}, the stack {sorted(want)}"
    problems = []
    for name, expected in want.items():
        pod = spawn(hub, api, form, name)
        problems += [f"{name}: {p}" for p in pod_problems(pod, expected)]
        stop(hub, api, landing)
    assert not problems, "\n".join(problems)
    assert_no_forbidden(hub)


def test_hub_log_has_no_forbidden(hub):
    assert_no_forbidden(hub)


def assert_no_forbidden(hub) -> None:
    lines = [line for line in hub.log().splitlines() if PROBLEM.search(line) or HUB_REFUSAL.search(line)]
    assert not lines, "\n".join(lines[:20])


def spawn(hub, api, form: FormParser, profile: str) -> dict:
    """Choose the profile in the form and start; the pod KubeSpawner creates (admitted: it exists)."""
    before = len(hub.log())
    response = hub.browser.go("POST", hub.url(form.action), data={"_xsrf": form.xsrf, "profile": profile})  # the action carries _xsrf
    assert response.status_code == 200, f"spawn {profile}: HTTP {response.status_code} at {response.world_url}"
    deadline = time.monotonic() + 120
    while True:
        pods = api.request("GET", f"/api/v1/namespaces/{hub.namespace}/pods", query={"labelSelector": NOTEBOOK_LABEL})["items"]
        live = [p for p in pods if "deletionTimestamp" not in p["metadata"]]
        if live:
            return live[0]
        hub.alive()
        failed = re.findall(r".*(?:Failed to spawn|Error starting|Unhandled error).*", hub.log()[before:])
        if failed or time.monotonic() > deadline:
            raise HubFailed(f"no notebook pod for {profile}: {failed}\n{hub.hub.tail(40)}")
        time.sleep(0.5)


def stop(hub, api, landing) -> None:
    """Cancel the pending spawn as the spawn-pending page's button does (the API, with the page's xsrf token)."""
    home = hub.browser.go("GET", hub.url("/notebooks/hub/home"))
    xsrf = page_xsrf(home.text) or page_xsrf(landing.text)
    user = hub.login.user
    response = hub.browser.go("DELETE", hub.url(f"/notebooks/hub/api/users/{user}/server"), api=True, xsrf=xsrf)
    assert response.status_code in (202, 204), f"stop: HTTP {response.status_code}: {response.text}"
    deadline = time.monotonic() + 120
    while True:
        pods = api.request("GET", f"/api/v1/namespaces/{hub.namespace}/pods", query={"labelSelector": NOTEBOOK_LABEL})["items"]
        model = hub.browser.go("GET", hub.url(f"/notebooks/hub/api/users/{user}"), api=True, xsrf=xsrf)
        servers = model.json().get("servers", {}) if model.status_code == 200 else {"?": model.status_code}
        if not pods and not servers:
            return
        if time.monotonic() > deadline:
            raise HubFailed(f"the server did not stop: pods {[p['metadata']['name'] for p in pods]}, servers {servers}")
        time.sleep(1)


def pod_problems(pod: dict, want: dict) -> list[str]:
    spec = pod["spec"]
    container = spec["containers"][0]
    out = []
    if container["image"] != want["image"]:
        out.append(f"image {container['image']}, the stack's {want['image']}")
    resources = container.get("resources", {})
    for kind in ("requests", "limits"):
        for key, value in (want["resources"].get(kind) or {}).items():
            got = resources.get(kind, {}).get(key)
            if got is None or quantity(got) != quantity(value):
                out.append(f"{kind}.{key} {got}, the stack's {value}")
    for key in ("cpu", "memory"):
        request, limit = resources.get("requests", {}).get(key), resources.get("limits", {}).get(key)
        if request is None or limit is None or quantity(request) > quantity(limit):
            out.append(f"{key}: request {request}, limit {limit}")
    for resource, count in want["extended"].items():
        for kind in ("requests", "limits"):
            if resources.get(kind, {}).get(resource) != count:
                out.append(f"{kind}.{resource} {resources.get(kind, {}).get(resource)}, the class's {count}")
    extra = {k for kind in ("requests", "limits") for k in resources.get(kind, {})} - {"cpu", "memory", *want["extended"]}
    if extra:
        out.append(f"extended resources {sorted(extra)} the class does not have")
    if spec.get("nodeSelector") != want["nodeSelector"]:
        out.append(f"nodeSelector {spec.get('nodeSelector')}, the profiles' {want['nodeSelector']}")
    for toleration in want["tolerations"]:
        if toleration not in spec.get("tolerations", []):
            out.append(f"no toleration {toleration} (has {spec.get('tolerations')})")
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    types = [e["values"] for t in required.get("nodeSelectorTerms", []) for e in t.get("matchExpressions", [])
             if e["key"] == "node.kubernetes.io/instance-type" and e["operator"] == "In"]
    if want["instanceTypes"] and [sorted(v) for v in types] != [sorted(want["instanceTypes"])]:
        out.append(f"instance types {types}, the profile's {want['instanceTypes']}")
    if not want["instanceTypes"] and types:
        out.append(f"instance types {types}, the profile has none")
    if spec.get("activeDeadlineSeconds") != want["maxAge"]:
        out.append(f"activeDeadlineSeconds {spec.get('activeDeadlineSeconds')}, the stack's maxAge {want['maxAge']}")
    return out
