"""From a schema-valid stack document to the frozen Stack: defaults, per-environment overrides and
the rules a JSON Schema cannot express. Pure: it only reads the in-memory Sources.

Every problem points at the line where the deciding value was written: an environment's override
when there is one, else the stack's own value.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import replace
from typing import Any, MutableMapping

from kfgen import gitops_settings
from kfgen.accelerators import offered_strategies, resolve_class, strategy_problem
from kfgen.components import COMPONENTS, PACKAGES, RUNS_ON
from kfgen.errors import InputError, Problem
from kfgen.load import format_path
from kfgen.mirror import Mirror
from kfgen.model import AcceptedRisk, Artifacts, Component, Environment, Patch, Stack, Waiver, Workloads, frozen
from kfgen.plan import Tree, plan
from kfgen.profiles import profile_index
from kfgen.risks import refusal
from kfgen.schema import schema_at
from kfgen.sources import Sources, normalized
from kfgen.workload_specs import Where, WorkloadBuilder, merged, without_nulls

GATEWAY_RESERVED = "/ambassador/"
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")  # and every kube-*


def validate(sources: Sources, memo: MutableMapping[str, dict] | None = None) -> tuple[Stack, Tree]:
    """The one validation stage: the validated Stack and its planned tree, or InputError with every
    problem of the stack. A stack that passes here never fails a render for input reasons. `memo`:
    environment plans of earlier renders (kfgen.plan.plan)."""
    stack = build_stack(sources)
    return stack, plan(stack, memo)


def build_stack(sources: Sources) -> Stack:
    """The validated Stack, or InputError listing every problem of the file: what reading it found
    (sources.problems) and the cross-field rules' problems, less those that follow from the former."""
    builder = _Builder(sources)
    try:
        stack = builder.build()
    except Exception:
        if sources.problems:  # the rules met data a schema problem left unusual: that problem comes first
            raise InputError(sources.problems) from None
        raise
    problems = sources.problems + [p for p in builder.problems if not _follows(p.path, sources.schema_spots)]
    if problems:
        raise InputError(problems)
    return stack


def _follows(path: str, spots: list[str]) -> bool:
    """Whether a rule's problem at `path` is about a value the schema already refused: the same path,
    a part of it, or the object that holds it."""
    for spot in spots:
        if path == spot or path.startswith((spot + ".", spot + "[")) or path == re.sub(r"(\.[^.\[]+|\[\d+\])$", "", spot):
            return True
    return False


class _Builder:
    def __init__(self, sources: Sources):
        self.sources = sources
        self.doc = sources.doc
        self.spec = self.doc.data["spec"]
        self.problems: list[Problem] = []
        self.clouds, self.accelerators = profile_index(sources.profiles)
        self.mirror = Mirror.of_stack(self.spec.get("images"))
        self.specs = WorkloadBuilder(self.fail, self.mirror)
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

        components = self.components(without_nulls(spec.get("components") or {}), stack_where)
        workloads = self.specs.workloads(without_nulls(spec.get("workloads") or {}), stack_where)
        self.check_namespaces(components, workloads, stack_where)
        self.gitops = gitops_settings.gitops(self.doc, self.sources.folder_in_repo, self.fail)
        for path, message in gitops_settings.argocd_namespace_problems(self.gitops, {
                **{("spec", "components", n, "namespace"): c.namespace for n, c in components.items() if c.enabled},
                ("spec", "workloads", "namespace"): workloads.namespace}):
            self.fail(path, message)
        environments = tuple(self.environment(name, env) for name, env in sorted(spec["environments"].items()))
        for acceptance in self.acceptances:
            if acceptance not in self.used_acceptances:
                where = f"environment {', '.join(acceptance.environments)}" if acceptance.environments else "any environment"
                self.fail(acceptance.written_at, f"accepts the risk {acceptance.risk!r}, which {where} does not take; remove it")
        for source in sorted((spec.get("images") or {}).get("rewrites") or {}):
            host = source.split("/", 1)[0]
            if not ("." in host or ":" in host or host == "localhost"):
                self.fail(("spec", "images", "rewrites", source), f"{source!r} does not start with a registry host; name the registry as "
                                                                  "image references do (docker.io, quay.io, ghcr.io/acme, ...)", key=True)
        return Stack(
            name=self.doc.data["metadata"]["name"],
            kubernetes_version=spec.get("kubernetesVersion", _default("spec.kubernetesVersion")),
            gitops=self.gitops,
            components=frozen(components),
            workloads=workloads,
            environments=environments,
            waivers=tuple(Waiver(w["policy"], w["kind"], w["name"], w.get("namespace"), w["reason"],
                                 (self.doc.file, *self.doc.position(("spec", "waivers", i))))
                          for i, w in enumerate(spec.get("waivers") or [])),
            accepted_risks=self.acceptances,
            files=frozen(dict(self.sources.files)),
            digest=self.sources.digest(),
            written_at=frozen({**self.extra_positions(), **gitops_settings.project_positions(self.doc)}),
        )

    def extra_positions(self) -> dict[str, tuple[str, int, int]]:
        """Where each environment and extraResources entry was written: the plan reports problems it finds there
        (objects the Argo CD project does not grant, two environments whose Argo CD objects share a name)."""
        found = {f"spec.environments.{name}": (self.doc.file, *self.doc.position(("spec", "environments", name), key=True))
                 for name in self.spec["environments"]}
        entries: list[tuple[tuple, dict]] = [(("spec", "components", name), component)
                                             for name, component in (self.spec.get("components") or {}).items()]
        entries += [(("spec", "environments", env, "overrides", "components", name), component)  # an environment's own extras
                    for env, d in self.spec["environments"].items()
                    for name, component in ((d.get("overrides") or {}).get("components") or {}).items()]
        for base, component in sorted(entries, key=lambda e: e[0]):
            for i, _ in enumerate((component or {}).get("extraResources") or ()):
                path = base + ("extraResources", i)
                found[format_path(path)] = (self.doc.file, *self.doc.position(path))
        return found

    # --- components ------------------------------------------------------------------------

    def components(self, data: dict, where: Where, own: dict | None = None, own_path: tuple = ()) -> dict[str, Component]:
        """Every component, from its merged settings; `own`: an environment's overrides of the components,
        whose extraResources and patches come after the stack's (at `own_path` in the document)."""
        return {name: self.component(name, data.get(name) or {}, where, (own or {}).get(name) or {}, own_path + (name,))
                for name in COMPONENTS}

    def component(self, name: str, data: dict, where: Where, own: dict | None = None, own_path: tuple = ()) -> Component:
        path = ("components", name)
        package = PACKAGES[name]
        extras = [normalized(r) for r in data.get("extraResources") or ()]
        patches = [Patch(normalized(p["path"]), frozen(p.get("target")) if p.get("target") else None, ("spec", *path, "patches", i))
                   for i, p in enumerate(data.get("patches") or ())]
        for i, ref in enumerate((own or {}).get("extraResources") or ()):
            if normalized(ref) in extras:
                self.fail(own_path + ("extraResources", i), f"{ref!r} is already in spec.components.{name}.extraResources, "
                                                            "which every environment has")
            extras.append(normalized(ref))
        for i, p in enumerate((own or {}).get("patches") or ()):
            patch = Patch(normalized(p["path"]), frozen(p.get("target")) if p.get("target") else None, own_path + ("patches", i))
            if any((q.path, q.target) == (patch.path, patch.target) for q in patches):
                self.fail(own_path + ("patches", i), f"this patch is already in spec.components.{name}.patches, which every environment has")
            patches.append(patch)
        component = Component(
            name=name,
            enabled=data.get("enabled", True),
            install=data.get("install", "kfgen"),
            version=data.get("version", _default(f"spec.components.{name}.version")),
            namespace=data.get("namespace", _default(f"spec.components.{name}.namespace")),
            replicas=data.get("replicas"),
            resources=self.specs.user_resources(data["resources"], where(path + ("resources",))) if data.get("resources") else None,
            mirror=self.mirror.for_component(data.get("imageRegistry")),
            extra_resources=tuple(extras),
            patches=tuple(patches),
            settings=package.settings(data),
        )
        package.check(component, lambda rel, message: self.fail(where(path + rel), message))
        return component

    def check_namespaces(self, components: dict[str, Component], workloads: Workloads, where: Where) -> None:
        """Each component and the workloads own a namespace of their own; never one the cluster owns
        (kfgen's render creates, labels and, through Argo CD, prunes what is in its namespaces; Argo CD's
        own namespace is refused with the gitops settings)."""
        owners: dict[str, str] = {}
        for name, path, ns in [(n, ("components", n, "namespace"), components[n].namespace) for n in COMPONENTS if components[n].enabled] + \
                [("workloads", ("workloads", "namespace"), workloads.namespace)]:
            if ns in RESERVED_NAMESPACES or ns.startswith("kube-"):
                self.fail(where(path), f"namespace {ns!r} belongs to the cluster; kfgen would own it (its Pod Security level, and Argo CD "
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
        own = overrides.get("components") or {}  # its own extraResources and patches add to the stack's
        for component_name, entry in sorted(own.items()):
            for key in ("namespace", "install"):
                if key in (entry or {}):
                    self.fail(override_root + ("components", component_name, key),
                              f"{key} cannot be overridden per environment; set it in spec.components.{component_name}", key=True)
        settings = {n: {k: v for k, v in (c or {}).items() if k not in ("extraResources", "patches")} for n, c in own.items()}
        components = self.components(merged(without_nulls(self.spec.get("components") or {}), settings), where, own,
                                     override_root + ("components",))
        workloads = self.specs.workloads(merged(without_nulls(self.spec.get("workloads") or {}), overrides.get("workloads") or {}), where)
        self.check_namespaces(components, workloads, where)

        cloud = self.clouds.get(d["cloud"])
        known_cloud = cloud is not None
        if cloud is None:
            # what depends on the cloud is not checked (no second error for one mistake)
            if d["cloud"] not in self.sources.broken_profiles:
                self.fail(env_path + ("cloud",), _unknown("cloud profile", d["cloud"], list(self.clouds)))
            cloud = self.clouds["kind"]
        strategy = d.get("nodeSelection")
        if known_cloud and strategy and strategy not in offered_strategies(cloud):
            self.fail(env_path + ("nodeSelection",), strategy_problem(strategy, cloud))
            strategy = None
        classes, unresolved = [], set()
        for class_name, spec in sorted((d.get("accelerators") or {}).items()):
            if not known_cloud or spec["type"] in self.sources.broken_profiles:
                unresolved.add(class_name)
                continue
            resolved, problems = resolve_class(class_name, spec, cloud, self.accelerators, strategy)
            for rel, message in problems:
                self.fail(env_path + ("accelerators", class_name) + rel, message)
            if resolved:
                classes.append(resolved)
            else:
                unresolved.add(class_name)  # its own problem says why; the workloads that use it are not reported again
        env = Environment(
            name=name, cloud=cloud, destination=frozen(d.get("destination") or {"server": "https://kubernetes.default.svc"}),
            exposure=d.get("exposure", "internal"), identity=frozen(dict(d.get("identity") or {})),
            artifacts=self.artifacts(name, d.get("artifacts"), cloud if known_cloud else None, env_path),
            accelerators=tuple(classes), sync=gitops_settings.environment_sync(name, d, self.gitops, self.fail),
            components=frozen(components), workloads=workloads,
            clusters=gitops_settings.environment_clusters(name, d, self.fail),
        )
        if known_cloud:
            self.check_identity(env, env_path)
        self.check_environment_workloads(env, where, env_path, unresolved)
        self.check_routes(env, where)
        return replace(env, accepted_risks=frozen(self.accepted_risks(env, where)))

    def check_routes(self, env: Environment, where: Where) -> None:
        """No route through the gateway may contain another (Emissary matches prefixes as strings, so
        the shorter one would take the longer one's requests), nor Emissary's own /ambassador/."""
        if not env.components["ambassador"].enabled:
            return
        routes = [r for name, p in PACKAGES.items() if env.components[name].enabled for r in p.routes(env.components[name], env)]
        routes.sort(key=lambda r: r.where[0] != "components")  # the platform's own routes first: a workload's route is the one to move
        taken = [r.prefix for r in routes] + [GATEWAY_RESERVED]
        for i, route in enumerate(routes):
            if route.prefix.startswith(GATEWAY_RESERVED):
                self.fail(where(route.where), f"route {route.prefix} is inside {GATEWAY_RESERVED}, the gateway's own (diagnostics); "
                                              f"choose another prefix{_suggested_prefix(route, taken)}")
            for other in routes[:i]:
                if route.prefix == other.prefix:
                    relation = f"is also the route of {other.what}"
                elif route.prefix.startswith(other.prefix):
                    relation = f"is inside {other.prefix}, the route of {other.what}"
                elif other.prefix.startswith(route.prefix):
                    relation = f"contains {other.prefix}, the route of {other.what}"
                else:
                    continue
                self.fail(where(route.where), f"route {route.prefix} of {route.what} {relation}, in environment {env.name!r} (Emissary "
                                              "matches prefixes as text: one route would take the other's requests); give "
                                              f"{route.what} a prefix of its own{_suggested_prefix(route, taken)}")

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
        """The environment's artifact store (`cloud` None: unknown, its rules are not checked)."""
        if not d:
            return None
        provider = (cloud.artifacts if cloud else None) or "s3"
        if cloud and provider == "s3" and not cloud.identity_annotation:
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

    def check_environment_workloads(self, env: Environment, where: Where, env_path: tuple, unresolved: set[str]) -> None:
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
            if klass is None and accelerator in unresolved:
                continue  # the class's own problem is reported
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


def _suggested_prefix(route, taken: list[str]) -> str:
    """`, e.g. /models/<name>/` with a prefix no route overlaps, for a model's route; nothing for other routes."""
    if route.where[:2] != ("workloads", "serving"):
        return ""
    name = route.where[2]
    taken = list(taken)
    taken.remove(route.prefix)  # its own, once: another route's equal prefix stays taken
    for candidate in [f"/models/{name}/", *(f"/models/{name}-{n}/" for n in range(2, 10))]:
        if not any(candidate.startswith(p) or p.startswith(candidate) for p in taken):
            return f", e.g. route.prefix: {candidate}"
    return ""


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
