"""The idle culler in the hub, and a per-profile limit on how long a server runs.

The hub's real configuration (jupyterhub_config.py with the settings kfgen renders next to it in the
hub-config ConfigMap) is executed with a recording stand-in for JupyterHub's config object, so the
test sees what the hub would load. The expectations are zero-to-jupyterhub 4.4.0's: its cull values
(chart values.yaml: timeout 3600, every 600, concurrency 10, maxAge 0, users false, adminUsers true)
and how its hub configuration turns them into the service's command and role (chart
files/hub/jupyterhub_config.py: `python3 -m jupyterhub_idle_culler --url=http://localhost:8081<base
url>hub/api --timeout=... --cull-every=... --concurrency=...`, `--max-age` only when set; the role
`jupyterhub-idle-culler` with list:users, read:users:activity, read:servers, delete:servers), in
../shared/upstream-installs/jupyterhub/4.4.0/chart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED
from in_memory import plan_of

from kfgen.yamlio import load_all

CHART = SHARED / "upstream-installs/jupyterhub/4.4.0/chart"


class Section:
    """A stand-in for one traitlets config section: attributes set, anything else a new section."""

    def __getattr__(self, name: str):
        value = Section()
        setattr(self, name, value)
        return value


def hub_sees(tree: dict, tmp_path: Path, env: str | None = None) -> Section:
    """Run the hub's jupyterhub_config.py over the rendered ConfigMap's files (and an env's additions)."""
    (config_map,) = load_all(tree["base/jupyterhub/jupyterhub/configmap-hub-config.yaml"])
    folder = tmp_path / "config"
    folder.mkdir(parents=True)
    for name, text in config_map["data"].items():
        (folder / name).write_text(text)
    secret = tmp_path / "secret"
    secret.mkdir()
    for name in ("proxy-token", "cookie-secret", "oauth-client-id", "oauth-client-secret"):
        (secret / name).write_text("x")
    code = (folder / "jupyterhub_config.py").read_text()
    assert 'SECRET = Path("/usr/local/etc/jupyterhub/secret")' in code
    code = code.replace('SECRET = Path("/usr/local/etc/jupyterhub/secret")', f"SECRET = Path({str(secret)!r})")
    c = Section()
    exec(compile(code, str(folder / "jupyterhub_config.py"), "exec"), {"get_config": lambda: c, "__file__": str(folder / "jupyterhub_config.py")})
    return c


def stack(hub: str = "", notebooks: str = "") -> str:
    return f"""\
apiVersion: kfgen.io/v1alpha1
kind: Stack
metadata: {{name: hub}}
spec:
  gitops: {{repoURL: https://example.com/r.git}}
  components:
    ambassador: {{hostname: ml.example.com}}
    jupyterhub: {{auth: {{type: github, allowedUsers: [alice]}}{hub}}}
  environments:
    dev: {{cloud: kind}}
  workloads:
    notebooks:
      cpu: {{displayName: CPU, image: quay.io/jupyter/scipy-notebook:2024-10-07{notebooks}}}
"""


def test_the_chart_defaults_are_what_this_test_expects():
    values = (CHART / "values.yaml").read_text()
    cull = values.split("\ncull:\n", 1)[1].split("\n\n", 1)[0]
    assert [line.split("#")[0].strip() for line in cull.splitlines()] == [
        "enabled: true", "users: false", "adminUsers: true", "removeNamedServers: false", "timeout: 3600", "every: 600",
        "concurrency: 10", "maxAge: 0"]
    config = (CHART / "files/hub/jupyterhub_config.py").read_text()
    for scope in ("list:users", "read:users:activity", "read:servers", "delete:servers"):
        assert f'"{scope}"' in config
    assert 'cull_cmd = ["python3", "-m", "jupyterhub_idle_culler"]' in config


def test_the_idle_culler_runs_by_default_as_the_chart_runs_it(tmp_path):
    _, tree = plan_of(stack())
    c = hub_sees(tree, tmp_path)
    assert c.JupyterHub.services == [{"name": "jupyterhub-idle-culler", "command": [
        "python3", "-m", "jupyterhub_idle_culler", "--url=http://localhost:8081/notebooks/hub/api",
        "--timeout=3600", "--cull-every=600", "--concurrency=10"]}]
    assert c.JupyterHub.load_roles == [{"name": "jupyterhub-idle-culler", "services": ["jupyterhub-idle-culler"],
                                        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]}]


def test_the_culler_follows_the_stack_and_can_be_turned_off(tmp_path):
    _, tree = plan_of(stack(hub=", culler: {timeout: 1800, every: 300, concurrency: 5, maxAge: 86400}"))
    (service,) = hub_sees(tree, tmp_path / "on").JupyterHub.services
    assert service["command"][3:] == ["--url=http://localhost:8081/notebooks/hub/api", "--timeout=1800", "--cull-every=300",
                                      "--concurrency=5", "--max-age=86400"]
    _, tree = plan_of(stack(hub=", culler: {enabled: false}"))
    off = hub_sees(tree, tmp_path / "off")
    assert (off.JupyterHub.services, off.JupyterHub.load_roles) == ([], [])


def test_a_profile_limits_how_long_its_servers_run(tmp_path):
    _, tree = plan_of(stack(notebooks=", maxAge: 28800"))
    (profile,) = hub_sees(tree, tmp_path).KubeSpawner.profile_list
    # KubeSpawner merges extra_pod_config into the pod spec; the kubelet fails the pod after activeDeadlineSeconds
    assert profile["kubespawner_override"]["extra_pod_config"] == {"activeDeadlineSeconds": 28800}
    _, tree = plan_of(stack())
    (profile,) = json.loads(load_all(tree["base/jupyterhub/jupyterhub/configmap-hub-config.yaml"])[0]["data"]["profiles.json"])
    assert "extra_pod_config" not in profile["kubespawner_override"]


@pytest.mark.parametrize("value, message", [
    ("60", "stack.yaml:13:89: spec.workloads.notebooks.cpu.maxAge: 60 is too small: at least 300"),
])
def test_a_limit_too_short_to_start_a_server(value, message):
    from kfgen.errors import InputError

    with pytest.raises(InputError) as info:
        plan_of(stack(notebooks=f", maxAge: {value}"))
    assert info.value.lines() == [message]
