"""Secure by default (kfgen/risks.py and the packages' rules): every switch that opens access is
refused until the stack accepts its risk in writing, and the acceptance shows on the objects.
Plan-level: each test is the stack a pull request would contain, validated and planned in memory
(no kustomize), asserting the exact refusal or the safe output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kfgen.errors import InputError
from kfgen.sources import read_sources
from kfgen.validate import validate
from kfgen.yamlio import load

STACK = """\
apiVersion: kfgen.io/v1alpha1
kind: Stack
metadata:
  name: t
spec:
  gitops:
    repoURL: https://example.com/r.git
  components:
    ambassador:
      hostname: ml.example.com
      tlsSecret: ml-tls
    jupyterhub:
      auth:
        type: github
        allowedUsers: [alice]
  environments:
    dev:
      cloud: kind
    prod:
      cloud: gke
      exposure: external
  workloads:
    serving:
      iris:
        modelUri: gs://models/iris
"""


def planned(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    return validate(read_sources(path, "stack.yaml"))[1]


def refused(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(InputError) as info:
        planned(tmp_path, text)
    return info.value.lines()


def at(text: str, line_text: str, column: int) -> str:
    """`stack.yaml:<line>:<column>` of the line that is exactly `line_text`."""
    return f"stack.yaml:{text.splitlines().index(line_text) + 1}:{column}"


def with_gateway_auth(text: str) -> str:
    return text.replace("      tlsSecret: ml-tls\n", "      tlsSecret: ml-tls\n      auth: {service: oauth2-proxy.auth:4180}\n")


def accept(text: str, risk: str, envs: str = "", reason: str = "a reason written by the platform team") -> str:
    scope = f", environments: [{envs}]" if envs else ""
    return text.replace("  environments:\n", f"  acceptedRisks:\n    - {{risk: {risk}{scope}, reason: {reason}}}\n  environments:\n", 1)


def rendered(tree: dict[str, str], env: str, path: str) -> dict:
    """An object as the environment's overrides leave it: the base file with the env's JSON 6902 patch applied."""
    import jsonpatch

    obj = load(tree[f"base/{path}"])
    patch = tree.get(f"envs/{env}/overrides/patches/{_patch_name(obj)}")
    return jsonpatch.apply_patch(obj, load(patch)) if patch else obj


def _patch_name(obj: dict) -> str:
    m = obj["metadata"]
    return f"{obj['kind'].lower()}-{m['namespace'] + '-' if m.get('namespace') else ''}{m['name']}.yaml"


def test_the_safe_stack_renders(tmp_path):
    assert planned(tmp_path, with_gateway_auth(STACK))


def test_a_hub_without_a_chosen_login_is_refused(tmp_path):
    text = with_gateway_auth(STACK).replace("      auth:\n        type: github\n        allowedUsers: [alice]\n", "      userStorage: 5Gi\n")
    assert refused(tmp_path, text) == [f"{at(text, '      userStorage: 5Gi', 7)}: spec.components.jupyterhub.auth: the hub needs a login (auth.type): github "
                                       "or generic-oauth with allowedUsers, or dummy in a throwaway environment that accepts the risk "
                                       "hub-dummy-login"]


def test_the_dummy_login_needs_an_acceptance_per_environment_and_never_goes_external(tmp_path):
    text = with_gateway_auth(STACK).replace("        type: github\n        allowedUsers: [alice]\n", "        type: dummy\n")
    where = at(text, "        type: dummy", 15)
    assert refused(tmp_path, text) == [
        f"{where}: spec.components.jupyterhub.auth.type: the dummy login is never allowed with external exposure (environment "
        "'prod'); choose github or generic-oauth",
        f"{where}: spec.components.jupyterhub.auth.type: the hub's dummy login lets in any user name with any password: refused "
        "unless spec.acceptedRisks accepts 'hub-dummy-login' for environment 'dev', with the reason it is acceptable there",
        f"{where}: spec.components.jupyterhub.auth.type: the hub's dummy login lets in any user name with any password: refused "
        "unless spec.acceptedRisks accepts 'hub-dummy-login' for environment 'prod', with the reason it is acceptable there",
    ]
    accepted = accept(text, "hub-dummy-login", "dev")  # dev accepts it; prod can never
    assert [line.split(": ", 2)[2] for line in refused(tmp_path, accepted)] == [
        "the dummy login is never allowed with external exposure (environment 'prod'); choose github or generic-oauth",
        "the hub's dummy login lets in any user name with any password: refused unless spec.acceptedRisks accepts "
        "'hub-dummy-login' for environment 'prod', with the reason it is acceptable there"]


def test_an_environment_override_cannot_open_the_hub_unnoticed(tmp_path):
    text = with_gateway_auth(STACK).replace("      cloud: kind\n", "      cloud: kind\n      overrides:\n        components:\n"
                                            "          jupyterhub: {auth: {type: dummy}}\n")
    assert refused(tmp_path, text) == [
        f"{at(text, '          jupyterhub: {auth: {type: dummy}}', 37)}: spec.environments.dev.overrides.components.jupyterhub.auth.type: "
        "the hub's dummy login lets in any user name with any password: refused unless spec.acceptedRisks accepts 'hub-dummy-login' "
        "for environment 'dev', with the reason it is acceptable there"]
    tree = planned(tmp_path, accept(text, "hub-dummy-login", "dev", "kind on a laptop and port-forward only"))
    hub = rendered(tree, "dev", "jupyterhub/jupyterhub/deployment-hub.yaml")
    assert hub["metadata"]["annotations"]["risks.kfgen.io/hub-dummy-login"] == "kind on a laptop and port-forward only"
    assert "risks.kfgen.io/hub-dummy-login" not in rendered(tree, "prod", "jupyterhub/jupyterhub/deployment-hub.yaml")["metadata"]["annotations"]


def test_allow_all_is_a_risk_and_never_silently_drops_a_list(tmp_path):
    text = with_gateway_auth(STACK).replace("        allowedUsers: [alice]\n", "        allowAll: true\n")
    where = at(text, "        allowAll: true", 19)
    assert refused(tmp_path, text) == [
        f"{where}: spec.components.jupyterhub.auth.allowAll: allowAll lets in every account of the login provider: refused unless "
        f"spec.acceptedRisks accepts 'hub-open-login' for environment '{env}', with the reason it is acceptable there" for env in ("dev", "prod")]
    both = text.replace("        allowAll: true\n", "        allowAll: true\n        allowedUsers: [alice]\n")
    assert f"{at(both, '        allowedUsers: [alice]', 23)}: spec.components.jupyterhub.auth.allowedUsers: has no effect with allowAll: true, " \
           "which lets everyone in; remove one of them" in refused(tmp_path, accept(both, "hub-open-login"))
    tree = planned(tmp_path, accept(text, "hub-open-login", reason="every account of our GitHub Enterprise is an employee"))
    settings = json.loads(load(tree["base/jupyterhub/jupyterhub/configmap-hub-config.yaml"])["data"]["settings.json"])
    assert settings["auth"]["allowAll"] is True


def test_an_acceptance_nothing_takes_is_refused(tmp_path):
    text = accept(with_gateway_auth(STACK), "argo-server-auth-mode-server")
    assert refused(tmp_path, text) == [f"{at(text, '    - {risk: argo-server-auth-mode-server, reason: a reason written by the platform team}', 7)}: "
                                       "spec.acceptedRisks[0]: accepts the risk 'argo-server-auth-mode-server', which any environment does "
                                       "not take; remove it"]


def test_the_argo_server_handing_out_its_service_account_is_a_risk(tmp_path):
    text = with_gateway_auth(STACK).replace("  components:\n", "  components:\n    argo-workflows:\n      server: {authModes: [server, client]}\n")
    where = at(text, "      server: {authModes: [server, client]}", 27)
    assert refused(tmp_path, text)[0] == (f"{where}: spec.components.argo-workflows.server.authModes: in `server` auth mode every caller "
                                          "of the Argo server acts with its ServiceAccount: refused unless spec.acceptedRisks accepts "
                                          "'argo-server-auth-mode-server' for environment 'dev', with the reason it is acceptable there")
    tree = planned(tmp_path, accept(text, "argo-server-auth-mode-server", reason="the UI is reachable only from the bastion host"))
    server = rendered(tree, "prod", "argo-workflows/argo/deployment-argo-server.yaml")
    assert server["metadata"]["annotations"]["risks.kfgen.io/argo-server-auth-mode-server"] == "the UI is reachable only from the bastion host"


def test_external_exposure_needs_tls_and_route_authentication(tmp_path):
    plain = STACK.replace("      tlsSecret: ml-tls\n", "")
    exposure = at(plain, "      exposure: external", 17)
    assert refused(tmp_path, plain) == [
        f"{exposure}: spec.environments.prod.exposure: an externally exposed gateway without TLS sends logins and data in clear: refused "
        "unless spec.acceptedRisks accepts 'plain-http' for environment 'prod', with the reason it is acceptable there",
        f"{exposure}: spec.environments.prod.exposure: routes on an externally exposed gateway without authentication are open to the "
        "internet: refused unless spec.acceptedRisks accepts 'public-routes' for environment 'prod', with the reason it is acceptable there"]
    tree = planned(tmp_path, with_gateway_auth(STACK))
    auth = load(tree["base/ambassador/emissary/authservice-gateway-auth.yaml"])
    assert auth["spec"] == {"auth_service": "oauth2-proxy.auth:4180", "failure_mode_allow": False, "proto": "http",
                            "status_on_error": {"code": 503}, "timeout_ms": 5000}
    hub_route = load(tree["base/jupyterhub/jupyterhub/mapping-jupyterhub.yaml"])
    assert hub_route["spec"]["bypass_auth"] is True  # the hub logs its users in itself
    assert "bypass_auth" not in load(tree["base/seldon-core/ml/mapping-model-iris.yaml"])["spec"]


@pytest.mark.parametrize("prefix, relation", [
    ("/notebooks/", "is also the route of the notebook hub"),
    ("/notebooks/hub/", "is inside /notebooks/, the route of the notebook hub"),
    ("/", "contains /notebooks/, the route of the notebook hub"),
])
def test_a_model_route_cannot_shadow_the_hub(tmp_path, prefix, relation):
    text = with_gateway_auth(STACK).replace("        modelUri: gs://models/iris\n", f"        modelUri: gs://models/iris\n        route: {{prefix: '{prefix}'}}\n")
    lines = refused(tmp_path, text)
    assert lines[0] == (f"{at(text, f'        route: {{prefix: {prefix!r}}}', 25)}: spec.workloads.serving.iris.route.prefix: route {prefix} of "
                        f"model iris {relation}, in environment 'dev' (Emissary matches prefixes as text: one route would take the other's "
                        "requests); give model iris a prefix of its own, e.g. route.prefix: /models/iris/")


def test_two_models_cannot_share_a_route_nor_take_the_gateways_own(tmp_path):
    text = with_gateway_auth(STACK).replace("        modelUri: gs://models/iris\n", "        modelUri: gs://models/iris\n"
                                            "      iris-v2:\n        modelUri: gs://models/iris-v2\n        route: {prefix: /models/iris/}\n"
                                            "      diag:\n        modelUri: gs://models/diag\n        route: {prefix: /ambassador/diag/}\n")
    lines = refused(tmp_path, text)
    assert f"{at(text, '        route: {prefix: /ambassador/diag/}', 25)}: spec.workloads.serving.diag.route.prefix: route /ambassador/diag/ " \
           "is inside /ambassador/, the gateway's own (diagnostics); choose another prefix, e.g. route.prefix: /models/diag/" in lines
    assert f"{at(text, '        route: {prefix: /models/iris/}', 25)}: spec.workloads.serving.iris-v2.route.prefix: route /models/iris/ of " \
           "model iris-v2 is also the route of model iris, in environment 'dev' (Emissary matches prefixes as text: one route would " \
           "take the other's requests); give model iris-v2 a prefix of its own, e.g. route.prefix: /models/iris-v2/" in lines


def test_notebook_profile_text_reaches_the_spawn_page_escaped(tmp_path):
    text = with_gateway_auth(STACK) + ("    notebooks:\n      cpu:\n        image: quay.io/jupyter/scipy-notebook:2024-10-07\n"
                                       "        displayName: '<img src=x onerror=alert(1)>'\n        description: R&D <b>only</b>\n")
    tree = planned(tmp_path, text)
    (profile,) = json.loads(load(tree["base/jupyterhub/jupyterhub/configmap-hub-config.yaml"])["data"]["profiles.json"])
    assert profile["display_name"] == "&lt;img src=x onerror=alert(1)&gt;"
    assert profile["description"] == "R&amp;D &lt;b&gt;only&lt;/b&gt;"


def test_notebooks_never_get_the_default_cloud_identity(tmp_path):
    text = with_gateway_auth(STACK).replace("      exposure: external\n", "      exposure: external\n"
                                            "      identity: {default: ml-work@acme-prod.iam.gserviceaccount.com}\n")
    tree = planned(tmp_path, text)
    notebook = rendered(tree, "prod", "jupyterhub/jupyterhub/serviceaccount-notebook.yaml")
    assert "annotations" not in notebook["metadata"]
    serving = rendered(tree, "prod", "seldon-core/ml/serviceaccount-ml-serving.yaml")
    assert serving["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": "ml-work@acme-prod.iam.gserviceaccount.com"}
    own = text.replace("{default: ml-work@acme-prod.iam.gserviceaccount.com}", "{default: ml-work@acme-prod.iam.gserviceaccount.com, notebooks: notebooks@acme-prod.iam.gserviceaccount.com}")
    notebook = rendered(planned(tmp_path, own), "prod", "jupyterhub/jupyterhub/serviceaccount-notebook.yaml")
    assert notebook["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": "notebooks@acme-prod.iam.gserviceaccount.com"}


def test_a_generic_oauth_hub_has_its_providers_endpoints(tmp_path):
    text = with_gateway_auth(STACK).replace("        type: github\n", "        type: generic-oauth\n")
    assert refused(tmp_path, text) == [f"{at(text, '        type: generic-oauth', 9)}: spec.components.jupyterhub.auth: generic-oauth needs the provider's "
                                       "endpoints: auth.oauth.authorizeUrl, tokenUrl and userdataUrl"]
    text = text.replace("        allowedUsers: [alice]\n", "        allowedUsers: [alice]\n        oauth:\n"
                        "          authorizeUrl: https://sso.example/auth\n          tokenUrl: https://sso.example/token\n"
                        "          userdataUrl: https://sso.example/userinfo\n          usernameClaim: preferred_username\n")
    settings = json.loads(load(planned(tmp_path, text)["base/jupyterhub/jupyterhub/configmap-hub-config.yaml"])["data"]["settings.json"])
    assert settings["auth"]["oauth"] == {"authorizeUrl": "https://sso.example/auth", "tokenUrl": "https://sso.example/token",
                                         "userdataUrl": "https://sso.example/userinfo", "usernameClaim": "preferred_username"}
