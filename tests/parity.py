"""Parity with upstream: load upstream's install of a release (a plain manifest, or a Helm chart
templated by the real helm), and compare it with kfgen's install object by object, field by field
where it matters. A difference is (kind, name, field path, upstream value, kfgen value); a
component's declared deviations say which differences are on purpose, and why.

Both sides are normalized the same way first: the API server's defaults are filled in (a port's
protocol TCP, a probe's timeoutSeconds 1, ...), so a default written out on one side only is no
difference. Field paths read like `spec.template.spec.containers[manager].args`: lists of named
things are keyed by name (containers, env, ports by containerPort, volumes, mounts by path,
webhooks, CRD versions), map keys holding a dot or a slash are bracketed (`labels[app.kubernetes.io/name]`),
and RBAC rules are flattened to `rules[<group>:<resource>]` -> verbs (core group written `core`).
"""

from __future__ import annotations

import copy
import functools
import glob
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pytest
import yaml

from kfgen.components.package import ComponentPackage, Deviation, Release

CLUSTER_KINDS = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass",
                 "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "PersistentVolume"}
Key = tuple[str, str, str]  # kind, namespace, name
MISSING = "<absent>"
PRESENT = "present"
HELM_CACHE = Path(os.environ.get("KFGEN_CLUSTER_CACHE") or Path.home() / ".cache" / "kfgen-cluster")
VALUES = Path(__file__).parent / "parity"  # the Helm values kfgen's choices correspond to, one file per chart


@dataclass(frozen=True)
class Difference:
    kind: str
    name: str
    field: str
    upstream: Any
    kfgen: Any

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}: {self.field}: upstream {_short(self.upstream)}, kfgen {_short(self.kfgen)}"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 160 else text[:157] + "..."


# --- helm ---------------------------------------------------------------------------------------


def find_helm() -> str | None:
    """helm v3: $KFGEN_HELM, else `helm` on PATH, else the one tests/cluster/build.py builds into the cache."""
    if os.environ.get("KFGEN_HELM"):
        return os.environ["KFGEN_HELM"]
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    built = sorted(glob.glob(str(HELM_CACHE / "helm-*" / "bin" / "helm")))
    return built[-1] if built else None


def require_helm() -> str:
    """helm, or skip (fail in CI) with one line naming what is missing."""
    helm = find_helm()
    if helm is None:
        message = (f"helm v3 not found (KFGEN_HELM, `helm` on PATH, or {HELM_CACHE}/helm-*/bin/helm): "
                   "build it with `GOBIN=... go install helm.sh/helm/v3/cmd/helm@<v3 version>`")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return helm


# --- upstream -----------------------------------------------------------------------------------


def upstream_objects(shared: Path, package: ComponentPackage, release: Release, kubernetes_version: str) -> list[dict]:
    """Upstream's install of a release: its manifest file, every manifest at the top of its folder,
    or its Helm chart templated with tests/parity/<component>.values.yaml."""
    return copy.deepcopy(_upstream_objects(shared, package.name, package.namespace, release.upstream, kubernetes_version))


@functools.cache
def _upstream_objects(shared: Path, name: str, namespace: str, upstream: str, kubernetes_version: str) -> list[dict]:
    source = shared / "upstream-installs" / upstream
    if source.is_file():
        return _load(source.read_text())
    if (source / "Chart.yaml").is_file():
        values = VALUES / f"{name}.values.yaml"
        done = subprocess.run([require_helm(), "template", name, str(source), "--namespace", namespace,
                               "--kube-version", kubernetes_version, "-f", str(values)],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"helm template {source}: {done.stderr}"
        objects = _load(done.stdout)
        for o in objects:  # as `helm install --namespace` places them
            if o["kind"] not in CLUSTER_KINDS:
                o["metadata"].setdefault("namespace", namespace)
        return objects
    return [o for f in sorted(source.glob("*.yaml")) for o in _load(f.read_text())]


def _load(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict) and d.get("kind")]


# --- comparing ----------------------------------------------------------------------------------


def key(o: dict) -> Key:
    m = o.get("metadata") or {}
    return (o["kind"], m.get("namespace") or "", m["name"])


def compare(upstream: list[dict], kfgen: list[dict], deviations: Iterable[Deviation] = ()) -> list[Difference]:
    """Every difference between the two installs (upstream objects renamed as the deviations say)."""
    renames = {(d.kind, d.upstream_name): d.name for d in deviations if d.upstream_name}
    up = {}
    for o in _resolve_aggregation(upstream):
        k = key(o)
        up[(k[0], k[1], renames.get((k[0], k[2]), k[2]))] = o
    ours = {key(o): o for o in kfgen}
    found: list[Difference] = []
    for k in sorted(set(up) | set(ours)):
        kind, _, name = k
        if k not in ours:
            found.append(Difference(kind, name, "*", PRESENT, MISSING))
            continue
        if k not in up:
            found.append(Difference(kind, name, "*", MISSING, PRESENT))
            continue
        a, b = facts(up[k]), facts(ours[k])
        # an element (a container, a webhook, a CRD version...) that only one side has is one difference
        lone = [p for p in set(a) ^ set(b) if (a.get(p) or b.get(p)) == PRESENT]
        for path in sorted(set(a) | set(b)):
            if any(path.startswith(e) and path[len(e):len(e) + 1] in (".", "[") for e in lone):
                continue
            if a.get(path, MISSING) != b.get(path, MISSING):
                found.append(Difference(kind, name, path, a.get(path, MISSING), b.get(path, MISSING)))
    return found


def covering(difference: Difference, deviations: Iterable[Deviation]) -> Deviation | None:
    """The declared deviation that covers a difference, if any: `*` matches anything, a field covers
    what is below it."""
    for d in deviations:
        if _matches(difference.kind, d.kind) and _matches(difference.name, d.name) and (
                d.field == "*" or _matches(difference.field, d.field, below=True)):
            return d
    return None


def _matches(text: str, pattern: str, below: bool = False) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex + (r"([.\[].*)?" if below else ""), text) is not None


def _resolve_aggregation(objects: list[dict]) -> list[dict]:
    """An aggregated ClusterRole's rules are the rules of the roles it selects (as the API server fills them)."""
    out = []
    for o in objects:
        rule = o.get("aggregationRule")
        if o["kind"] == "ClusterRole" and rule:
            o = copy.deepcopy(o)
            selected = [r for r in objects if r["kind"] == "ClusterRole" and r is not o and any(
                all((r["metadata"].get("labels") or {}).get(k) == v for k, v in (s.get("matchLabels") or {}).items())
                for s in rule.get("clusterRoleSelectors") or [])]
            o["rules"] = [x for r in selected for x in r.get("rules") or []]
        out.append(o)
    return out


# --- the facts of an object that matter, flattened to {path: value} ------------------------------

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def facts(o: dict) -> dict[str, Any]:
    kind = o["kind"]
    out: dict[str, Any] = {}
    meta = o.get("metadata") or {}
    _flatten(out, "metadata.labels", meta.get("labels") or {})
    if kind in ("ClusterRole", "Role"):
        for path, verbs in _rules(o.get("rules") or []).items():
            out[path] = verbs
        if o.get("aggregationRule"):
            out["aggregationRule"] = o["aggregationRule"]
    elif kind in ("ClusterRoleBinding", "RoleBinding"):
        out["roleRef"] = o["roleRef"]
        out["subjects"] = sorted(((s["kind"], s["name"], s.get("namespace", "")) for s in o.get("subjects") or []))
    elif kind == "ServiceAccount":
        out["automountServiceAccountToken"] = o.get("automountServiceAccountToken", True)
    elif kind in WORKLOAD_KINDS:
        spec = o["spec"]
        out["spec.replicas"] = spec.get("replicas", 1)
        out["spec.selector"] = spec.get("selector")
        if kind == "Deployment":
            out["spec.strategy.type"] = (spec.get("strategy") or {}).get("type", "RollingUpdate")
        _pod_template(out, "spec.template", spec["template"])
    elif kind == "Job":
        _pod_template(out, "spec.template", o["spec"]["template"])
    elif kind == "Service":
        spec = o["spec"]
        out["spec.type"] = spec.get("type", "ClusterIP")
        out["spec.selector"] = spec.get("selector")
        if spec.get("clusterIP") == "None":
            out["spec.clusterIP"] = "None"
        for p in spec.get("ports") or []:
            _element(out, f"spec.ports[{p.get('name') or p['port']}]",
                     {"port": p["port"], "targetPort": p.get("targetPort", p["port"]), "protocol": p.get("protocol", "TCP")})
    elif kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for w in o.get("webhooks") or []:
            _element(out, f"webhooks[{w['name']}]", _webhook(w))
    elif kind == "CustomResourceDefinition":
        _crd(out, o["spec"])
    elif kind == "ConfigMap":
        for name, value in sorted((o.get("data") or {}).items()):
            _flatten(out, f"data{_key(name)}", _parsed(value))
    elif kind == "Secret":
        out["type"] = o.get("type", "Opaque")
        for name in sorted({**(o.get("data") or {}), **(o.get("stringData") or {})}):
            out[f"data{_key(name)}"] = "set"
    elif kind == "PriorityClass":
        out["value"] = o.get("value")
    elif kind == "PersistentVolumeClaim":
        out["spec.accessModes"] = o["spec"].get("accessModes")
        out["spec.resources"] = o["spec"].get("resources")
    elif kind != "Namespace":
        _flatten(out, "spec", o.get("spec") or {})
    return out


def _key(name: str) -> str:
    return f"[{name}]" if any(c in name for c in "./[]") else f".{name}"


def _flatten(out: dict, path: str, value: Any) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(out, path + _key(str(k)), v)
    elif isinstance(value, dict):
        return  # an empty map is no value
    else:
        out[path] = value


def _element(out: dict, path: str, value: Any) -> None:
    """One element of a keyed list: its presence, then its fields."""
    out[path] = PRESENT
    _flatten(out, path, value)


def _parsed(value: str) -> Any:
    """ConfigMap values that are JSON compare as data (key order and spacing do not matter)."""
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _rules(rules: list[dict]) -> dict[str, list[str]]:
    found: dict[str, set[str]] = {}
    for r in rules:
        for group in r.get("apiGroups") or [""]:
            for resource in r.get("resources") or []:
                for name in r.get("resourceNames") or [""]:
                    path = f"rules[{group or 'core'}:{resource}{'/' + name if name else ''}]"
                    found.setdefault(path, set()).update(r.get("verbs") or [])
    return {p: sorted(v) for p, v in sorted(found.items())}


def _pod_template(out: dict, path: str, template: dict) -> None:
    meta = template.get("metadata") or {}
    _flatten(out, f"{path}.metadata.labels", meta.get("labels") or {})
    _flatten(out, f"{path}.metadata.annotations", meta.get("annotations") or {})
    spec = template["spec"]
    p = f"{path}.spec"
    out[f"{p}.serviceAccountName"] = spec.get("serviceAccountName", "default")
    out[f"{p}.automountServiceAccountToken"] = spec.get("automountServiceAccountToken", True)
    out[f"{p}.hostNetwork"] = spec.get("hostNetwork", False)
    out[f"{p}.terminationGracePeriodSeconds"] = spec.get("terminationGracePeriodSeconds", 30)
    out[f"{p}.restartPolicy"] = spec.get("restartPolicy", "Always")
    for field in ("priorityClassName", "nodeSelector", "tolerations", "affinity"):
        if spec.get(field):
            out[f"{p}.{field}"] = spec[field]
    _flatten(out, f"{p}.securityContext", spec.get("securityContext") or {})
    for v in spec.get("volumes") or []:
        _element(out, f"{p}.volumes[{v['name']}]", _volume(v))
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or []:
            _container(out, f"{p}.{group}[{c['name']}]", c)


def _volume(v: dict) -> dict:
    v = {k: copy.deepcopy(x) for k, x in v.items() if k != "name"}
    for source in ("secret", "configMap"):
        if source in v:
            v[source].setdefault("defaultMode", 0o644)
    if "emptyDir" in v and not v["emptyDir"]:
        v["emptyDir"] = "{}"
    return v


def image_repository(image: str) -> str:
    """An image's repository, without tag or digest, with Docker Hub's implicit host and library/ written out."""
    name = image.split("@")[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    first = name.split("/")[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    return name


def _container(out: dict, path: str, c: dict) -> None:
    out[path] = PRESENT
    out[f"{path}.image"] = image_repository(c["image"])
    for field in ("command", "args", "workingDir"):
        if c.get(field):
            out[f"{path}.{field}"] = c[field]
    for e in c.get("env") or []:
        value = copy.deepcopy({k: v for k, v in e.items() if k != "name"})
        field_ref = (value.get("valueFrom") or {}).get("fieldRef")
        if field_ref:
            field_ref.setdefault("apiVersion", "v1")
        _element(out, f"{path}.env[{e['name']}]", value)
    for port in c.get("ports") or []:
        _element(out, f"{path}.ports[{port['containerPort']}]", {"name": port.get("name", MISSING), "protocol": port.get("protocol", "TCP")})
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if c.get(probe):
            _element(out, f"{path}.{probe}", _probe(c[probe]))
    _flatten(out, f"{path}.securityContext", c.get("securityContext") or {})
    for m in c.get("volumeMounts") or []:
        _element(out, f"{path}.volumeMounts[{m['mountPath']}]", {"name": m["name"], "readOnly": m.get("readOnly", False),
                                                                  **({"subPath": m["subPath"]} if m.get("subPath") else {})})


def _probe(probe: dict) -> dict:
    p = copy.deepcopy(probe)
    for field, default in (("initialDelaySeconds", 0), ("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                           ("failureThreshold", 3)):
        p.setdefault(field, default)
    if "httpGet" in p:
        p["httpGet"].setdefault("scheme", "HTTP")
    return p


def _webhook(w: dict) -> dict:
    service = dict(w["clientConfig"].get("service") or {})
    service.setdefault("port", 443)
    return {"clientConfig": {"service": service}, "rules": w.get("rules"), "failurePolicy": w.get("failurePolicy", "Fail"),
            "sideEffects": w.get("sideEffects"), "admissionReviewVersions": w.get("admissionReviewVersions"),
            "matchPolicy": w.get("matchPolicy", "Equivalent"), "timeoutSeconds": w.get("timeoutSeconds", 10),
            "namespaceSelector": w.get("namespaceSelector") or MISSING, "objectSelector": w.get("objectSelector") or MISSING}


def _crd(out: dict, spec: dict) -> None:
    out["spec.group"] = spec["group"]
    out["spec.scope"] = spec["scope"]
    names = spec["names"]
    for field in ("kind", "plural", "singular", "listKind", "shortNames", "categories"):
        out[f"spec.names.{field}"] = names.get(field, MISSING)
    out["spec.conversion.strategy"] = (spec.get("conversion") or {}).get("strategy", "None")
    for v in spec["versions"]:
        p = f"spec.versions[{v['name']}]"
        out[p] = PRESENT
        out[f"{p}.served"] = v["served"]
        out[f"{p}.storage"] = v["storage"]
        out[f"{p}.deprecated"] = v.get("deprecated", False)
        _flatten(out, f"{p}.subresources", {k: (x or "{}") for k, x in (v.get("subresources") or {}).items()})
        out[f"{p}.additionalPrinterColumns"] = v.get("additionalPrinterColumns") or MISSING
        # the schema's content is compared as a whole: kfgen's CRDs carry their own structural schemas
        out[f"{p}.schema"] = _digest(v.get("schema"))


def _digest(value: Any) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]
