"""From a schema-valid stack document to the frozen Stack: defaults, per-environment overrides and
the rules a JSON Schema cannot express. Pure: it only reads the in-memory Sources.

Every problem points at the line where the deciding value was written: an environment's override
when there is one, else the stack's own value.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import replace
from typing import Any

from kfgen.accelerators import resolve_class
from kfgen.components import COMPONENTS, PACKAGES, RUNS_ON
from kfgen.errors import InputError, Problem
from kfgen.model import AcceptedRisk, Artifacts, Component, Environment, GitOps, Patch, Stack, Sync, Waiver, Workloads, frozen
from kfgen.plan import Tree, plan
from kfgen.profiles import profile_index
from kfgen.risks import refusal
from kfgen.schema import schema_at
from kfgen.sources import Sources, normalized
from kfgen.workload_specs import Where, WorkloadBuilder, merged

PROD_NAMES = ("prod", "production")
GATEWAY_RESERVED = "/ambassador/"
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")  # and every kube-*


def validate(sources: Sources) -> tuple[Stack, Tree]:
    """The one validation stage: the validated Stack and its planned tree, or InputError with every
    problem of the stack. A stack that passes here never fails a render for input reasons."""
    stack = build_stack(sources)
    return stack, plan(stack)


def build_stack(sources: Sources) -> Stack:
    """The validated Stack, or InputError listing every problem of the file."""
    builder = _Builder(sources)
    stack = builder.build()
    if builder.problems:
        raise InputError(builder.problems)
    return stack


class _Builder:
    def __init__(self, sources: Sources):
        self.sources = sources
        self.doc = sources.doc
        self.spec = self.doc.data["spec"]
        self.problems: list[Problem] = []
        self.clouds, self.accelerators = profile_index(sources.profiles)
        self.specs = WorkloadBuilder(self.fail)
        self.acceptances = tuple(AcceptedRisk(r["risk"], tuple(r["environments"]) if "environments" in r else None, r["reason"],
                                              ("spec", "acceptedRisks", i))
                                 for i, r in enumerate(self.spec.get("acceptedRisks") or []))
        self.used_acceptances: set[AcceptedRisk] = set()

    def fail(self, path: tuple, message: str, *, key: bool = False) -> None:
        self.problems.append(self.doc.problem(path, message, key=key))

    def build(self) -> Stack:
        spec = self.spec
        def stack_where(rel: tuple) -> tuple:
            return ("spec",) + rel

        components = self.components(spec.get("components") or {}, stack_where)
        workloads = self.specs.workloads(spec.get("workloads") or {}, stack_where)
        self.check_namespaces(components, workloads, stack_where)
        environments = tuple(self.environment(name, env) for name, env in sorted(spec["environments"].items()))
        for acceptance in self.acceptances:
            if acceptance not in self.used_acceptances:
                where = f"environment {', '.join(acceptance.environments)}" if acceptance.environments else "any environment"
                self.fail(acceptance.written_at, f"accepts the risk {acceptance.risk!r}, which {where} does not take; remove it")
        gitops = spec["gitops"]
        if ".." in gitops.get("path", "deploy").split("/"):
            self.fail(("spec", "gitops", "path"), "must stay inside the repository (no '..')")
        return Stack(
            name=self.doc.data["metadata"]["name"],
            kubernetes_version=spec.get("kubernetesVersion", _default("spec.kubernetesVersion")),
            gitops=GitOps(gitops["repoURL"], gitops.get("targetRevision", "main"), gitops.get("path", "deploy"),
                          gitops.get("argocdNamespace", "argocd")),
            components=frozen(components),
            workloads=workloads,
            environments=environments,
            waivers=tuple(Waiver(w["policy"], w["kind"], w["name"], w.get("namespace"), w["reason"],
                                 (self.doc.file, *self.doc.position(("spec", "waivers", i))))
                          for i, w in enumerate(spec.get("waivers") or [])),
            accepted_risks=self.acceptances,
            files=frozen(dict(self.sources.files)),
            digest=self.sources.digest(),
        )

    # --- components ------------------------------------------------------------------------

    def components(self, data: dict, where: Where) -> dict[str, Component]:
        return {name: self.component(name, data.get(name) or {}, where) for name in COMPONENTS}

    def component(self, name: str, data: dict, where: Where) -> Component:
        path = ("components", name)
        package = PACKAGES[name]
        component = Component(
            name=name,
            enabled=data.get("enabled", True),
            install=data.get("install", "kfgen"),
            version=data.get("version", _default(f"spec.components.{name}.version")),
            namespace=data.get("namespace", _default(f"spec.components.{name}.namespace")),
            replicas=data.get("replicas"),
            resources=self.specs.user_resources(data["resources"], where(path + ("resources",))) if data.get("resources") else None,
            image_registry=data.get("imageRegistry"),
            extra_resources=tuple(normalized(r) for r in data.get("extraResources") or ()),
            patches=tuple(Patch(normalized(p["path"]), frozen(p.get("target")) if p.get("target") else None) for p in data.get("patches") or ()),
            settings=package.settings(data),
        )
        package.check(component, lambda rel, message: self.fail(where(path + rel), message))
        return component

    def check_namespaces(self, components: dict[str, Component], workloads: Workloads, where: Where) -> None:
        """Each component and the workloads own a namespace of their own; never one the cluster or Argo CD
        owns (kfgen's render creates, labels and, through Argo CD, prunes what is in its namespaces)."""
        owners: dict[str, str] = {}
        argocd = (self.spec.get("gitops") or {}).get("argocdNamespace", "argocd")
        for name, path, ns in [(n, ("components", n, "namespace"), components[n].namespace) for n in COMPONENTS if components[n].enabled] + \
                [("workloads", ("workloads", "namespace"), workloads.namespace)]:
            if ns in RESERVED_NAMESPACES or ns.startswith("kube-") or ns == argocd:
                owner = "Argo CD" if ns == argocd else "the cluster"
                self.fail(where(path), f"namespace {ns!r} belongs to {owner}; kfgen would own it (its Pod Security level, and Argo CD "
                                       "pruning what kfgen does not render): choose a namespace of its own")
        for name in COMPONENTS:
            component = components[name]
            if not component.enabled:
                continue
            if component.namespace in owners:
                self.fail(where(("components", name, "namespace")),
                          f"namespace {component.namespace!r} is also used by {owners[component.namespace]}; each component owns "
                          "its namespace (Namespace object, Pod Security level, Argo CD application)")
            owners.setdefault(component.namespace, name)
        if workloads.namespace in owners:
            self.fail(where(("workloads", "namespace")), f"namespace {workloads.namespace!r} is used by {owners[workloads.namespace]}; "
                      "workloads need a namespace of their own")

    # --- resources ---------------------------------------------------------------------------

    def environment(self, name: str, d: dict) -> Environment:
        env_path = ("spec", "environments", name)
        overrides = d.get("overrides") or {}
        override_root = env_path + ("overrides",)

        def where(rel: tuple) -> tuple:
            candidate = override_root + rel
            return candidate if candidate in self.doc.values else ("spec",) + rel

        self.check_override_targets(overrides.get("workloads") or {}, override_root)
        components = self.components(merged(self.spec.get("components") or {}, overrides.get("components") or {}), where)
        workloads = self.specs.workloads(merged(self.spec.get("workloads") or {}, overrides.get("workloads") or {}), where)
        self.check_namespaces(components, workloads, where)

        cloud = self.clouds.get(d["cloud"])
        if cloud is None:
            self.fail(env_path + ("cloud",), _unknown("cloud profile", d["cloud"], list(self.clouds)))
            cloud = self.clouds["kind"]
        classes = []
        for class_name, spec in sorted((d.get("accelerators") or {}).items()):
            resolved, problems = resolve_class(class_name, spec, cloud, self.accelerators)
            for rel, message in problems:
                self.fail(env_path + ("accelerators", class_name) + rel, message)
            if resolved:
                classes.append(resolved)
        env = Environment(
            name=name, cloud=cloud, destination=frozen(d.get("destination") or {"server": "https://kubernetes.default.svc"}),
            exposure=d.get("exposure", "internal"), identity=frozen(dict(d.get("identity") or {})),
            artifacts=self.artifacts(name, d.get("artifacts"), cloud, env_path),
            accelerators=tuple(classes), sync=_sync(name, d.get("sync") or {}),
            components=frozen(components), workloads=workloads,
        )
        self.check_identity(env, env_path)
        self.check_environment_workloads(env, where, env_path)
        self.check_routes(env, where)
        return replace(env, accepted_risks=frozen(self.accepted_risks(env, where)))

    def check_routes(self, env: Environment, where: Where) -> None:
        """No route through the gateway may contain another (Emissary matches prefixes as strings, so
        the shorter one would take the longer one's requests), nor Emissary's own /ambassador/."""
        if not env.components["ambassador"].enabled:
            return
        routes = [r for name, p in PACKAGES.items() if env.components[name].enabled for r in p.routes(env.components[name], env)]
        routes.sort(key=lambda r: r.where[0] != "components")  # the platform's own routes first: a workload's route is the one to move
        for i, route in enumerate(routes):
            if route.prefix.startswith(GATEWAY_RESERVED):
                self.fail(where(route.where), f"route {route.prefix} is inside {GATEWAY_RESERVED}, the gateway's own (diagnostics); "
                                              "choose another prefix")
            for other in routes[:i]:
                if route.prefix.startswith(other.prefix) or other.prefix.startswith(route.prefix):
                    self.fail(where(route.where), f"route {route.prefix} of {route.what} overlaps {other.prefix} of {other.what} "
                                                  f"in environment {env.name!r}: the shorter prefix would take the other's requests; "
                                                  "give each a prefix of its own (e.g. /models/<name>/)")

    def accepted_risks(self, env: Environment, where: Where) -> dict[str, str]:
        """Each package's environment rules, and the risks it takes here: {risk: reason} when the
        stack accepts them, a problem at the switch when it does not."""
        accepted: dict[str, str] = {}
        for name, package in PACKAGES.items():
            component = env.components[name]
            if not component.enabled:
                continue
            package.check_environment(component, env, lambda rel, message: self.fail(where(rel), message))
            for taken in package.risks(component, env):
                acceptance = next((a for a in self.acceptances if a.risk == taken.risk
                                   and (a.environments is None or env.name in a.environments)), None)
                if acceptance is None:
                    self.fail(where(taken.where), refusal(taken.risk, env.name))
                else:
                    self.used_acceptances.add(acceptance)
                    accepted[taken.risk] = acceptance.reason
        return accepted

    def check_override_targets(self, overrides: dict, root: tuple) -> None:
        declared = self.spec.get("workloads") or {}
        for kind, entries in sorted(overrides.items()):
            for entry in sorted(entries or {}):
                if entry not in (declared.get(kind) or {}):
                    self.fail(root + ("workloads", kind, entry),
                              _unknown(f"{kind} workload", entry, list(declared.get(kind) or {}), where=f"spec.workloads.{kind}"), key=True)

    def artifacts(self, env: str, d: dict | None, cloud, env_path: tuple) -> Artifacts | None:
        if not d:
            return None
        provider = cloud.artifacts or "s3"
        if provider == "s3" and not cloud.identity_annotation:
            for key in ("endpoint", "credentialsSecret"):
                if not d.get(key):
                    self.fail(env_path + ("artifacts",), f"an S3-compatible store on {cloud.name} needs {key} (no workload identity there)")
        return Artifacts(provider, d["bucket"], d.get("keyPrefix", self.doc.data["metadata"]["name"]), d.get("endpoint"),
                         d.get("region"), bool(d.get("insecure", False)), d.get("credentialsSecret"))

    def check_identity(self, env: Environment, env_path: tuple) -> None:
        for role, value in sorted(env.identity.items()):
            path = env_path + ("identity", role)
            if not env.cloud.identity_annotation:
                self.fail(path, f"cloud {env.cloud.name!r} has no workload identity; use Secrets there (e.g. artifacts.credentialsSecret)")
            elif env.cloud.identity_format and not re.match(env.cloud.identity_format, value):
                self.fail(path, f"{value!r} is not a {env.cloud.name} identity (e.g. {env.cloud.identity_example})")

    def check_environment_workloads(self, env: Environment, where: Where, env_path: tuple) -> None:
        for kind, component in RUNS_ON.items():
            for workload in env.workloads.enabled(kind):
                if not env.components[component].enabled:
                    self.fail(where(("workloads", kind, workload.name)),
                              f"{component} is disabled in environment {env.name!r}, which this {kind} workload needs", key=True)
        if env.workloads.enabled("pipelines") and env.components["argo-workflows"].enabled and env.artifacts is None:
            self.fail(env_path, "pipelines pass artifacts between steps: this environment needs `artifacts` (a bucket)", key=True)
        for model in env.workloads.enabled("serving"):
            if model.route.enabled and not env.components["ambassador"].enabled:
                self.fail(where(("workloads", "serving", model.name, "route")),
                          f"the route needs ambassador, which is disabled in environment {env.name!r}; set route.enabled: false")
        for kind, name, accelerator in env.workloads.accelerator_uses():
            if accelerator is None:
                continue
            rel = _accelerator_path(kind, name)
            klass = env.accelerator(accelerator)
            if klass is None:
                offered = ", ".join(a.name for a in env.accelerators) or "none"
                self.fail(where(rel), f"accelerator class {accelerator!r} is not offered by environment {env.name!r} (it offers: {offered})")
            elif klass.hosts > 1:
                self.check_multi_host(env, kind, name, klass, where, rel)

    def check_multi_host(self, env, kind, name, klass, where, rel) -> None:
        if kind != "training":
            self.fail(where(rel), f"{klass.name!r} is a multi-host TPU slice ({klass.hosts} hosts); only training jobs can span hosts")
            return
        job = next(j for j in env.workloads.training if j.name == name)
        accelerated = sum(n for t, n in job.replicas if job.accelerator_of(t))
        if accelerated != klass.hosts:
            self.fail(where(("workloads", "training", name, "replicas")),
                      f"TPU slice {klass.topology} of {klass.profile.name} has {klass.hosts} hosts: the job needs {klass.hosts} "
                      f"TPU replicas (Chief + Worker + Evaluator), it has {accelerated} in environment {env.name!r}")


def _accelerator_path(kind: str, name: str) -> tuple:
    if kind == "pipelines":
        pipeline, step = name.split(".", 1)
        return ("workloads", "pipelines", pipeline, "steps", step, "accelerator")
    return ("workloads", kind, name, "accelerator")


def _unknown(what: str, name: str, known: list[str], where: str = "") -> str:
    hint = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    message = f"no {what} {name!r}" + (f" in {where}" if where else "")
    if hint:
        return message + f" (did you mean {hint[0]!r}?)"
    return message + (f" (known: {', '.join(sorted(known))})" if known else "")


def _default(dotted: str) -> Any:
    return schema_at(dotted)[1]["default"]


def _sync(env: str, d: dict) -> Sync:
    automated = d.get("automated", env not in PROD_NAMES)
    return Sync(automated, d.get("prune", True), d.get("selfHeal", True), d.get("source", "rendered"))


