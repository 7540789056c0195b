# JupyterHub configuration rendered by kfgen. Settings are data: kfgen writes settings.json and
# profiles.json into the hub's ConfigMap, and each environment's accelerator Components add
# accelerator.<class>.json (and storage-class) there. Secrets are read from the mounted Secret.
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECRET = Path("/usr/local/etc/jupyterhub/secret")
settings = json.loads((HERE / "settings.json").read_text())
namespace = settings["namespace"]

c = get_config()  # noqa: F821 (provided by JupyterHub)

# Hub and its external proxy (configurable-http-proxy runs as its own Deployment).
c.JupyterHub.base_url = settings["baseUrl"]
c.JupyterHub.bind_url = "http://:8000" + settings["baseUrl"]
c.JupyterHub.hub_bind_url = "http://:8081"
c.JupyterHub.hub_connect_url = f"http://hub.{namespace}.svc:8081"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.db_url = "sqlite:////srv/jupyterhub/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = str(SECRET / "cookie-secret")
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = f"http://proxy-api.{namespace}.svc:8001"
c.ConfigurableHTTPProxy.auth_token = (SECRET / "proxy-token").read_text().strip()

# Login.
auth = settings["auth"]
c.Authenticator.admin_users = set(auth["admins"])
c.Authenticator.allowed_users = set(auth["allowedUsers"])
# allowAll is off unless the stack accepts the risk hub-open-login; the dummy login (accepted as
# hub-dummy-login, never with external exposure) admits any name unless allowedUsers lists them.
c.Authenticator.allow_all = auth["allowAll"] or (auth["type"] == "dummy" and not auth["allowedUsers"])
if auth["type"] == "dummy":
    c.JupyterHub.authenticator_class = "dummy"
else:
    c.JupyterHub.authenticator_class = "github" if auth["type"] == "github" else "generic-oauth"
    authenticator = c.GitHubOAuthenticator if auth["type"] == "github" else c.GenericOAuthenticator
    authenticator.client_id = (SECRET / "oauth-client-id").read_text().strip()
    authenticator.client_secret = (SECRET / "oauth-client-secret").read_text().strip()
    authenticator.oauth_callback_url = settings["oauthCallbackUrl"]
    oauth = auth["oauth"]  # generic-oauth: the provider's endpoints
    for trait, key in (("authorize_url", "authorizeUrl"), ("token_url", "tokenUrl"), ("userdata_url", "userdataUrl"),
                       ("username_claim", "usernameClaim"), ("scope", "scopes")):
        if key in oauth:
            setattr(authenticator, trait, oauth[key])

# The idle culler: a hub-managed service (in this pod) with a role scoped to what it needs.
c.JupyterHub.services = []
c.JupyterHub.load_roles = []
culler = settings["culler"]
if culler:
    c.JupyterHub.services.append({"name": culler["name"], "command": culler["command"]})
    c.JupyterHub.load_roles.append({"name": culler["name"], "scopes": culler["scopes"], "services": [culler["name"]]})

# Notebook pods.
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.namespace = namespace
c.KubeSpawner.service_account = "notebook"
c.KubeSpawner.automount_service_account_token = settings["automountToken"]
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
c.KubeSpawner.port = 8888  # the notebooks NetworkPolicy lets the hub and the proxy in here
c.KubeSpawner.start_timeout = 600
c.KubeSpawner.uid = 1000
c.KubeSpawner.gid = 100
c.KubeSpawner.fs_gid = 100
c.KubeSpawner.pod_security_context = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 100}
c.KubeSpawner.container_security_context = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
c.KubeSpawner.extra_labels = settings["podLabels"]
c.KubeSpawner.node_selector = {"kubernetes.io/os": "linux"}
c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.storage_capacity = settings["userStorage"]
c.KubeSpawner.storage_access_modes = ["ReadWriteOnce"]
c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
if (HERE / "storage-class").exists():
    c.KubeSpawner.storage_class = (HERE / "storage-class").read_text().strip()

# Profiles, each merged with the overrides of its accelerator class in this environment.
profiles = []
for profile in json.loads((HERE / "profiles.json").read_text()):
    accelerator = profile.pop("accelerator", None)
    if accelerator:
        overrides = HERE / f"accelerator.{accelerator}.json"
        if not overrides.exists():
            continue  # the class is not offered here; kfgen's validation prevents this
        profile["kubespawner_override"].update(json.loads(overrides.read_text()))
    profiles.append(profile)
c.KubeSpawner.profile_list = profiles
