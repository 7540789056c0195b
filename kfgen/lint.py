"""kfgen lint: check a rendered tree before Argo CD does.

Schemas: built-in kinds strictly against the Kubernetes JSON schemas of the stack's
kubernetesVersion (bundled by kubernetes-validate, loaded once per kind), custom resources
strictly against CRDs: those given with --crds first (e.g. `kubectl get crd -o yaml` from a real
cluster), then the render's own. Every error, not just the first.

Policies, each with an ID; an object waives one with the annotation `waivers.kfgen.io/<ID>:
<reason>` (kfgen writes it from the stack's spec.waivers).
"""

from __future__ import annotations

import copy
import importlib.util
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Iterator


from kfgen.argocd_lint import POLICIES as ARGOCD_POLICIES, argocd_violations, keep_on_delete
from kfgen.errors import InputError
from kfgen.images import unpinned
from kfgen.jsonschemas import Schema
from kfgen.layout import split_api_version
from kfgen.quantity import parse_quantity
from kfgen.yamlio import load_all

POLICIES = {
    "KFG001": "images are pinned to a version or digest (no latest, no untagged)",
    "KFG002": "every container has resource requests and limits",
    "KFG003": "extended resources (GPUs, TPUs) request exactly what they limit",
    "KFG004": "no privileged containers, hostPath volumes or host network/PID/IPC",
    "KFG005": "pods run as non-root",
    "KFG006": "no Secret carries data in git",
    "KFG007": "namespaces enforce a Pod Security level",
    "KFG008": "every TFJob replica has a container named tensorflow (the training operator's webhook requires it)",
    **ARGOCD_POLICIES,
}
SCHEMA = "SCHEMA"
WAIVER_PREFIX = "waivers.kfgen.io/"
BASIC_RESOURCES = {"cpu", "memory", "ephemeral-storage"}


@dataclass(frozen=True, order=True)
class Violation:
    file: str
    field: str
    policy: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field or '(object)'}: [{self.policy}] {self.message}"

    def as_json(self) -> dict:
        return {"file": self.file, "field": self.field, "policy": self.policy, "message": self.message}


# --- schemas --------------------------------------------------------------------------------

def _k8s_schema_dir(version: str) -> Path:
    # found, not imported: importing kubernetes_validate imports jsonschema (80 ms a render)
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or spec.origin is None:
        raise InputError("kubernetes-validate is not installed: pip install kubernetes-validate")
    root = Path(spec.origin).parent / "kubernetes-json-schema"
    folder = root / f"v{version}.0-local-strict"
    if not folder.is_dir():
        known = sorted(p.name.split("-")[0][1:].rsplit(".", 1)[0] for p in root.glob("v*-local-strict"))
        raise InputError(f"no Kubernetes schemas for {version} (kubernetes-validate has {', '.join(known)})")
    return folder


@cache
def _k8s_definitions(version: str) -> dict:
    return json.loads((_k8s_schema_dir(version) / "_definitions.json").read_text())


@cache
def _k8s_validator(version: str, api_version: str, kind: str) -> Schema | None:
    group, ver = split_api_version(api_version)
    short = group.split(".")[0] if group else ""
    name = f"{kind.lower()}-{short + '-' if short else ''}{ver}.json"
    path = _k8s_schema_dir(version) / name
    if not path.is_file():
        return None
    return Schema(json.loads(path.read_text()), _k8s_definitions(version))


def strict_schema(node: Any) -> Any:
    """A CRD's OpenAPI v3 schema as strict JSON Schema: objects that do not preserve unknown fields
    reject them, as `kubectl apply --validate=strict` does."""
    if isinstance(node, list):
        return [strict_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_schema(v) for k, v in node.items()}
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        for key in ("apiVersion", "kind"):
            props.setdefault(key, {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def crd_validators(crds: list[dict]) -> dict[tuple[str, str, str], Schema]:
    """(group, version, kind) -> validator, for every version of every CRD given (first one wins)."""
    found: dict[tuple[str, str, str], Schema] = {}
    for crd in crds:
        spec = crd.get("spec") or {}
        for version in spec.get("versions") or []:
            if version.get("served") is False:  # the API server refuses objects of a version it does not serve
                continue
            schema = ((version.get("schema") or {}).get("openAPIV3Schema"))
            key = (spec.get("group", ""), version.get("name", ""), (spec.get("names") or {}).get("kind", ""))
            if schema is None or key in found:
                continue
            strict = strict_schema(copy.deepcopy(schema))
            strict.setdefault("properties", {})
            for field in ("apiVersion", "kind"):
                strict["properties"].setdefault(field, {"type": "string"})
            strict["properties"]["metadata"] = {"type": "object"}
            found[key] = Schema(strict)
    return found


def read_crds(paths: list[Path]) -> list[dict]:
    """CRDs from files or folders of YAML (a `kind: List` from kubectl is unpacked)."""
    crds: list[dict] = []
    for path in paths:
        files = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
        if not files or not all(f.is_file() for f in files):
            raise InputError(f"--crds {path}: no such file or folder of YAML")
        for file in files:
            try:
                docs = load_all(file.read_text())
            except Exception as exc:  # unreadable input: one line, exit 2
                raise InputError(f"{file}: not valid YAML ({str(exc).splitlines()[0]})") from None
            for doc in docs:
                items = doc.get("items", []) if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
                crds.extend(d for d in items if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition")
    return crds


def schema_violations(file: str, obj: dict, k8s_version: str, crds: dict, missing_ok: bool = False) -> list[Violation]:
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    group, version = split_api_version(api_version)
    validator = crds.get((group, version, kind))
    if validator is None and ("." not in group or group.endswith(".k8s.io")):
        validator = _k8s_validator(k8s_version, api_version, kind)
    if validator is None:
        if missing_ok:
            return []
        return [Violation(file, "", SCHEMA, f"no schema for {api_version} {kind} (not built in, no CRD in the render or --crds)")]
    found = []
    for error in sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path]):
        found.append(Violation(file, _path(error.absolute_path), SCHEMA, error.message[:300]))
    return found


def _path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


# --- policies -------------------------------------------------------------------------------

def pod_specs(obj: dict) -> Iterator[tuple[str, dict, dict | None]]:
    """(field path, pod spec, pod-level security context) of every pod an object makes."""
    spec, kind = obj.get("spec") or {}, obj.get("kind")
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        pod = (spec.get("template") or {}).get("spec") or {}
        yield "spec.template.spec", pod, pod.get("securityContext")
    elif kind == "CronJob":
        pod = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
        yield "spec.jobTemplate.spec.template.spec", pod, pod.get("securityContext")
    elif kind == "Pod":
        yield "spec", spec, spec.get("securityContext")
    elif kind == "TFJob":
        for rtype, replica in sorted((spec.get("tfReplicaSpecs") or {}).items()):
            pod = (replica.get("template") or {}).get("spec") or {}
            yield f"spec.tfReplicaSpecs.{rtype}.template.spec", pod, pod.get("securityContext")
    elif kind == "SeldonDeployment":
        for i, predictor in enumerate(spec.get("predictors") or []):
            for j, component in enumerate(predictor.get("componentSpecs") or []):
                pod = component.get("spec") or {}
                yield f"spec.predictors[{i}].componentSpecs[{j}].spec", pod, pod.get("securityContext")
    elif kind in ("WorkflowTemplate", "Workflow", "ClusterWorkflowTemplate"):
        for i, template in enumerate(spec.get("templates") or []):
            if "container" in template:
                yield f"spec.templates[{i}]", {"containers": [template["container"]], "volumes": template.get("volumes", [])}, spec.get("securityContext")


def policy_violations(file: str, obj: dict) -> list[Violation]:
    found: list[Violation] = []
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    if kind == "Secret" and (obj.get("data") or obj.get("stringData")):
        found.append(Violation(file, "data" if obj.get("data") else "stringData", "KFG006", "a Secret with data in git; reference a Secret created out of band"))
    if kind == "Namespace" and not (meta.get("labels") or {}).get("pod-security.kubernetes.io/enforce"):
        found.append(Violation(file, "metadata.labels", "KFG007", "no pod-security.kubernetes.io/enforce label"))
    if kind == "TFJob":
        found.extend(_tfjob_violations(file, obj))
    for path, pod, pod_security in pod_specs(obj):
        found.extend(_pod_violations(file, path, pod, pod_security or {}))
    found.extend(Violation(*v) for v in keep_on_delete(file, obj))
    waived = {k.removeprefix(WAIVER_PREFIX) for k in (meta.get("annotations") or {}) if k.startswith(WAIVER_PREFIX)}
    return [v for v in found if v.policy not in waived]


def _tfjob_violations(file: str, obj: dict) -> Iterator[Violation]:
    """The operator's webhook (validateTFReplicaSpecs, v1.8.1) rejects a replica spec without a
    container named `tensorflow`; it is also the only container that gets TF_CONFIG."""
    for rtype, replica in sorted(((obj.get("spec") or {}).get("tfReplicaSpecs") or {}).items()):
        containers = (((replica or {}).get("template") or {}).get("spec") or {}).get("containers") or []
        if not any(c.get("name") == "tensorflow" for c in containers):
            names = ", ".join(repr(c.get("name")) for c in containers) or "none"
            yield Violation(file, f"spec.tfReplicaSpecs.{rtype}.template.spec.containers", "KFG008",
                            f"no container named 'tensorflow' (has: {names}); the training operator's webhook rejects the TFJob")


def _pod_violations(file: str, path: str, pod: dict, pod_security: dict) -> Iterator[Violation]:
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            yield Violation(file, f"{path}.{flag}", "KFG004", f"{flag} gives the pod the node's namespaces")
    for i, volume in enumerate(pod.get("volumes") or []):
        if "hostPath" in volume:
            yield Violation(file, f"{path}.volumes[{i}].hostPath", "KFG004", "a hostPath volume exposes the node's filesystem")
    for group in ("initContainers", "containers"):
        for i, c in enumerate(pod.get(group) or []):
            where = f"{path}.{group}[{i}]" if not path.startswith("spec.templates[") else f"{path}.container"
            image = str(c.get("image", ""))
            state = unpinned(image) if image else None
            if state:
                yield Violation(file, f"{where}.image", "KFG001", f"{image!r} {'has no tag' if state == 'untagged' else 'uses latest'}")
            resources = c.get("resources") or {}
            requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
            if not requests or not limits:
                missing = " and ".join(k for k, v in (("requests", requests), ("limits", limits)) if not v)
                yield Violation(file, f"{where}.resources", "KFG002", f"no resource {missing}")
            for name in sorted((set(requests) | set(limits)) - BASIC_RESOURCES):
                if name.startswith("hugepages-"):
                    continue
                if name not in limits or (name in requests and _amount(requests[name]) != _amount(limits[name])):
                    yield Violation(file, f"{where}.resources", "KFG003",
                                    f"{name}: requests {requests.get(name)} and limits {limits.get(name)} must be equal, in limits")
            security = c.get("securityContext") or {}
            if security.get("privileged"):
                yield Violation(file, f"{where}.securityContext.privileged", "KFG004", "a privileged container")
            non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
            uid = security.get("runAsUser", pod_security.get("runAsUser"))
            if not non_root and not (isinstance(uid, int) and uid > 0):
                yield Violation(file, f"{where}.securityContext", "KFG005", "may run as root (set runAsNonRoot)")


def _amount(value: Any) -> Any:
    try:
        return parse_quantity(value)[0]
    except ValueError:
        return value


# --- the tree -------------------------------------------------------------------------------

def lint_tree(out: Path, extra_crds: list[Path] | None = None, missing_ok: bool = False) -> list[Violation]:
    """Every violation in <out>/rendered and <out>/argocd; InputError when the tree is not a kfgen render.
    Argo CD's objects are checked against Argo CD's CRDs when --crds gives them (they are not in the render)."""
    provenance = out / "provenance.json"
    try:
        record = json.loads(provenance.read_text())
        k8s_version = record["kubernetesVersion"]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"{out}: not a kfgen render (no readable provenance.json)") from None
    crds = read_crds(extra_crds or [])
    found = lint_objects(_documents(out, "rendered"), k8s_version, crds, missing_ok)
    argocd = _documents(out, "argocd")
    validators = crd_validators(crds)
    for file, obj in argocd:
        found.extend(schema_violations(file, obj, k8s_version, validators, missing_ok=True))
    found.extend(Violation(*v) for v in argocd_violations(out, argocd, str(record.get("repositoryPath", ""))))
    return sorted(set(found))


def _documents(out: Path, folder: str) -> list[tuple[str, dict]]:
    documents: list[tuple[str, dict]] = []
    for file in sorted((out / folder).rglob("*")):
        if file.is_symlink() or not file.is_file():
            continue
        relative = str(file.relative_to(out))
        try:
            docs = load_all(file.read_text())
        except Exception as exc:
            raise InputError(f"{relative}: not valid YAML ({str(exc).splitlines()[0]})") from None
        documents.extend((relative, d) for d in docs if isinstance(d, dict))
    return documents


def lint_objects(documents: list[tuple[str, dict]], k8s_version: str, extra_crds: list[dict], missing_ok: bool = False) -> list[Violation]:
    """Every violation of the objects; with `missing_ok`, kinds with no schema anywhere are not checked
    (custom resources of components installed outside kfgen, whose CRDs live in the cluster). An
    object listed under several files (the same object in several environments) is checked once."""
    own = [d for _, d in documents if d.get("kind") == "CustomResourceDefinition"]
    validators = crd_validators(extra_crds + own)
    found: list[Violation] = []
    by_object: dict[int, list[tuple[str, str, str]]] = {}
    for file, obj in documents:
        known = by_object.get(id(obj))
        if known is None:
            known = [(v.field, v.policy, v.message) for v in
                     schema_violations("", obj, k8s_version, validators, missing_ok) + policy_violations("", obj)]
            by_object[id(obj)] = known
        found.extend(Violation(file, *v) for v in known)
    return sorted(set(found))


def as_json(violations: list[Violation]) -> str:
    return json.dumps({"violations": [v.as_json() for v in violations], "count": len(violations)}, indent=2) + "\n"
