"""Workloads from the stack (or an environment's view of it), defaults applied, with the rules
that concern one workload: pinned images, replica counts, pipeline steps and their inputs,
resources whose requests fit their limits. Part of validation; see kfgen.validate."""

from __future__ import annotations

import difflib
import re
import zoneinfo
from functools import cache
from typing import Any, Callable

from kfgen.components.argo_workflows.pipelines import parameter_variable
from kfgen.images import unpinned
from kfgen.mirror import Mirror
from kfgen.model import (
    Autoscaling,
    ModelVersion,
    REPLICA_TYPES,
    NotebookProfile,
    Pipeline,
    Resources,
    Route,
    RunPolicy,
    ServedModel,
    Step,
    TrainingJob,
    Workloads,
    frozen,
)
from kfgen.quantity import canonical_quantity, parse_quantity

Where = Callable[[tuple], tuple]
Fail = Callable[..., None]
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
PREPACKAGED_PROTOCOL = {"TENSORFLOW_SERVER": "tensorflow", "TRITON_SERVER": "v2", "SKLEARN_SERVER": "seldon",
                        "XGBOOST_SERVER": "seldon", "CUSTOM": "seldon"}
DEFAULT_RESOURCES = {
    "training": ({"cpu": "1", "memory": "2Gi"}, {"cpu": "2", "memory": "4Gi"}),
    "serving": ({"cpu": "500m", "memory": "1Gi"}, {"cpu": "1", "memory": "2Gi"}),
    "step": ({"cpu": "250m", "memory": "512Mi"}, {"cpu": "1", "memory": "1Gi"}),
    "notebook": ({"cpu": "500m", "memory": "1Gi"}, {"cpu": "2", "memory": "4Gi"}),
}


def image_problem(image: str) -> str | None:
    """Why an image reference is not pinned, or None."""
    state = unpinned(image)
    if state == "untagged":
        return f"image {image!r} has no tag; pin a version (e.g. {image}:1.2.3) or a digest"
    if state == "latest":
        return f"image {image!r} uses 'latest'; pin a version or a digest"
    return None


def merged(base: Any, override: Any) -> Any:
    """Mappings merge key by key; anything else in the override replaces the base; null in the
    override unsets the key (the schema allows it only where a field is optional)."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = merged(base.get(key), value) if key in base else without_nulls(value)
        return out
    return without_nulls(override)


def without_nulls(value: Any) -> Any:
    """The data with every null-valued key left out (null means unset, as if it were not written)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    return value


class WorkloadBuilder:
    """Builds Workloads; `fail(path, message, key=False)` records a problem at a document path."""

    def __init__(self, fail: Fail, mirror: Mirror | None = None):
        self.fail = fail
        self.mirror = mirror or Mirror()

    def user_resources(self, data: dict, path: tuple) -> Resources:
        """Resources exactly as written (canonical quantities); defaults are merged by the catalog."""
        requests = {k: canonical_quantity(v) for k, v in (data.get("requests") or {}).items()}
        limits = {k: canonical_quantity(v) for k, v in (data.get("limits") or {}).items()}
        for key in sorted(set(requests) & set(limits)):
            if parse_quantity(requests[key])[0] > parse_quantity(limits[key])[0]:
                self.fail(path + ("requests", key), f"request {requests[key]} is more than the limit {limits[key]}")
        return Resources(frozen(requests), frozen(limits))

    def resources(self, data: dict | None, kind: str, path: tuple) -> Resources:
        """Defaults for the workload kind, overlaid with what is written; a request above the default
        limit raises the limit, a missing request follows the limit."""
        default_requests, default_limits = DEFAULT_RESOURCES[kind]
        written = self.user_resources(data or {}, path)
        requests = {**default_requests, **written.requests}
        limits = {**default_limits, **written.limits}
        for key, value in written.requests.items():
            if key not in written.limits and (key not in limits or parse_quantity(value)[0] > parse_quantity(limits[key])[0]):
                limits[key] = value
        for key, value in written.limits.items():
            if key not in written.requests and (key not in requests or parse_quantity(value)[0] < parse_quantity(requests[key])[0]):
                requests[key] = value
        return Resources(frozen(dict(sorted(requests.items()))), frozen(dict(sorted(limits.items()))))

    # --- workloads ---------------------------------------------------------------------------

    def workloads(self, data: dict, where: Where) -> Workloads:
        training = tuple(self.training_job(n, d, where) for n, d in sorted((data.get("training") or {}).items()))
        serving = tuple(self.served_model(n, d, where) for n, d in sorted((data.get("serving") or {}).items()))
        pipelines = tuple(self.pipeline(n, d, where) for n, d in sorted((data.get("pipelines") or {}).items()))
        notebooks = tuple(self.notebook(n, d, where) for n, d in sorted((data.get("notebooks") or {}).items()))
        defaults = [p for p in notebooks if p.enabled and p.default]
        for extra in defaults[1:]:
            self.fail(where(("workloads", "notebooks", extra.name, "default")),
                      f"only one notebook profile can be the default; {defaults[0].name!r} already is")
        return Workloads(data.get("namespace", "ml"), training, serving, pipelines, notebooks)

    def pinned(self, image: str | None, path: tuple) -> str:
        """The image as the cluster pulls it (through the stack's mirror), after checking it is pinned."""
        if image and (problem := image_problem(image)):
            self.fail(path, problem)
        return self.mirror.rewrite(image) if image else ""

    def training_job(self, name: str, d: dict, where: Where) -> TrainingJob:
        path = ("workloads", "training", name)
        if not DNS1035.match(name):
            self.fail(where(path), f"training job name {name!r} must start with a letter (the operator requires a DNS-1035 label)", key=True)
        written = d.get("replicas") or {}
        replicas = tuple((t, written[t]) for t in REPLICA_TYPES if written.get(t))
        if not replicas:
            self.fail(where(path + ("replicas",)), "the job needs at least one replica (Chief, Worker, PS or Evaluator)")
        longest = max((len(f"{name}-{t.lower()}-{n - 1}") for t, n in replicas), default=0)
        if longest > 63:
            self.fail(where(path), f"pod names of this job would reach {longest} characters; Kubernetes allows 63", key=True)
        policy = d.get("runPolicy") or {}
        return TrainingJob(
            name=name, enabled=d.get("enabled", True),
            image=self.pinned(d.get("image"), where(path + ("image",))),
            command=tuple(d.get("command") or ()), args=tuple(d.get("args") or ()),
            env=_env(d.get("env")), replicas=replicas,
            resources=self.resources(d.get("resources"), "training", where(path + ("resources",))),
            accelerator=d.get("accelerator"), port=d.get("port", 2222), model_dir=d.get("modelDir"),
            image_variant=d.get("imageVariant", True),
            run_policy=RunPolicy(policy.get("cleanPodPolicy", "Running"), policy.get("ttlSecondsAfterFinished"),
                                 policy.get("backoffLimit"), policy.get("activeDeadlineSeconds")),
        )

    def served_model(self, name: str, d: dict, where: Where) -> ServedModel:
        path = ("workloads", "serving", name)
        server = d.get("server", "TENSORFLOW_SERVER")
        if server == "CUSTOM" and not d.get("image"):
            self.fail(where(path), "a CUSTOM server needs an image")
        if server != "CUSTOM" and not d.get("modelUri"):
            self.fail(where(path), f"{server} needs a modelUri (where the model is stored)")
        route = d.get("route") or {}
        versions = self.model_versions(d, where(path + ("versions",)))
        return ServedModel(
            name=name, enabled=d.get("enabled", True), server=server, model_uri=d.get("modelUri"), credentials_secret=d.get("credentialsSecret"),
            image=self.pinned(d.get("image"), where(path + ("image",))) or None,
            protocol=d.get("protocol", PREPACKAGED_PROTOCOL[server]), replicas=d.get("replicas", 1),
            resources=self.resources(d.get("resources"), "serving", where(path + ("resources",))),
            accelerator=d.get("accelerator"), env=_env(d.get("env")),
            route=Route(route.get("enabled", True), route.get("prefix", f"/models/{name}/"), route.get("timeoutMs", 3000)),
            autoscaling=self.autoscaling(d.get("autoscaling"), where(path + ("autoscaling",))), versions=versions,
        )

    def autoscaling(self, d: dict | None, path: tuple) -> Autoscaling | None:
        if d is None:
            return None
        if d.get("minReplicas", 1) > d["maxReplicas"]:
            self.fail(path + ("minReplicas",), f"minReplicas {d.get('minReplicas', 1)} is more than maxReplicas {d['maxReplicas']}")
        metric = d.get("metric")
        cpu = d.get("cpuUtilization", None if metric else 70)
        return Autoscaling(d.get("minReplicas", 1), d["maxReplicas"], cpu,
                           (metric["name"], canonical_quantity(metric["averageValue"])) if metric else None)

    def model_versions(self, d: dict, path: tuple) -> tuple[ModelVersion, ...]:
        """The versions of a model; those taking traffic add up to 100, at most one is a shadow."""
        written = d.get("versions") or {}
        model_image = self.mirror.rewrite(d["image"]) if d.get("image") else None  # checked (pinned) with the model
        versions = tuple(ModelVersion(name, v.get("modelUri", d.get("modelUri")),
                                      self.pinned(v["image"], path + (name, "image")) if "image" in v else model_image,
                                      v.get("replicas", d.get("replicas", 1)), 0 if v.get("shadow") else v.get("traffic", 0),
                                      bool(v.get("shadow", False)))
                         for name, v in sorted(written.items()))
        if not versions:
            return ()
        shadows = [v.name for v in versions if v.shadow]
        for name in shadows[1:]:
            self.fail(path + (name, "shadow"), f"at most one version is a shadow; {shadows[0]!r} already is")
        for name in shadows:
            if "traffic" in written[name]:
                self.fail(path + (name, "traffic"), "a shadow gets a copy of every request: it takes no traffic of its own")
        total = sum(v.traffic for v in versions)
        if total != 100:
            shares = ", ".join(f"{v.name} {v.traffic}" for v in versions if not v.shadow)
            self.fail(path, f"the versions' traffic adds up to {total} ({shares}); it must add up to 100")
        return versions

    def pipeline(self, name: str, d: dict, where: Where) -> Pipeline:
        path = ("workloads", "pipelines", name)
        steps_data = d.get("steps") or {}
        steps = []
        for step_name, s in sorted(steps_data.items()):
            step_path = path + ("steps", step_name)
            image = s.get("image") or d.get("image")
            if not image:
                self.fail(where(step_path), "the step needs an image (here or the pipeline's image)")
            if not s.get("command"):
                self.fail(where(step_path), "the step needs a command")
            for i, source in enumerate(s.get("inputs") or ()):
                if source not in steps_data:
                    hint = difflib.get_close_matches(source, list(steps_data), n=1)
                    self.fail(where(step_path + ("inputs", i)), f"no step {source!r} in this pipeline" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
            if len(f"{name}-{step_name}") > 63:
                self.fail(where(step_path), f"'{name}-{step_name}' is longer than 63 characters", key=True)
            steps.append(Step(
                name=step_name, image=self.pinned(image, where(step_path + ("image",) if s.get("image") else path + ("image",))),
                command=tuple(s.get("command") or ()), args=tuple(s.get("args") or ()), env=_env(s.get("env")),
                inputs=tuple(s.get("inputs") or ()),
                resources=self.resources(merged(d.get("resources") or {}, s.get("resources") or {}), "step", where(step_path + ("resources",))),
                accelerator=s.get("accelerator"),
            ))
        ordered = _topological(steps)
        if ordered is None:
            cycle = _cycle(steps)
            self.fail(where(path + ("steps",)), f"the steps' inputs form a cycle: {' -> '.join(cycle)} (each reads the one before); "
                                                f"remove {cycle[0]!r} from the inputs of {cycle[1]!r}, or another input of the cycle", key=True)
            ordered = steps
        timezone = d.get("timezone", "UTC")
        if timezone not in time_zones() and time_zones():
            hint = difflib.get_close_matches(timezone, sorted(time_zones()), n=1, cutoff=0.6)
            self.fail(where(path + ("timezone",)), f"{timezone!r} is not an IANA time zone" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                      + "; Argo's CronWorkflow needs one, e.g. Europe/Berlin, America/New_York or UTC")
        variables: dict[str, str] = {}
        for parameter in sorted(d.get("parameters") or {}):
            variable = parameter_variable(parameter)
            if variable in variables:
                self.fail(where(path + ("parameters", parameter)), f"parameters {variables[variable]!r} and {parameter!r} would both be "
                                                                   f"{variable} in the steps' environment; rename one", key=True)
            variables.setdefault(variable, parameter)
        return Pipeline(name=name, enabled=d.get("enabled", True), schedule=d.get("schedule"), timezone=timezone,
                        parameters=tuple(sorted((k, _scalar(v)) for k, v in (d.get("parameters") or {}).items())),
                        steps=tuple(ordered))

    def notebook(self, name: str, d: dict, where: Where) -> NotebookProfile:
        path = ("workloads", "notebooks", name)
        return NotebookProfile(
            name=name, enabled=d.get("enabled", True), display_name=d.get("displayName", name),
            description=d.get("description", ""), image=self.pinned(d.get("image"), where(path + ("image",))),
            resources=self.resources(d.get("resources"), "notebook", where(path + ("resources",))),
            accelerator=d.get("accelerator"), default=d.get("default", False), max_age=d.get("maxAge"),
        )

    # --- environments ------------------------------------------------------------------------


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _env(data: dict | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, _scalar(v)) for k, v in (data or {}).items()))


@cache
def time_zones() -> frozenset[str]:
    """The IANA time zone names this machine knows (empty when it has no tz database: then none is checked)."""
    return frozenset(zoneinfo.available_timezones())


def _cycle(steps: list[Step]) -> list[str]:
    """One cycle of the steps' inputs, as step names from an input to the step that reads it, back to the first."""
    inputs = {s.name: sorted(s.inputs) for s in steps}
    for start in sorted(inputs):
        path, seen = [start], {start}
        while True:  # follow the first input that is a step; a cycle shows up within len(steps) moves
            following = next((i for i in inputs[path[-1]] if i in inputs), None)
            if following is None:
                break
            if following in seen:
                cycle = path[path.index(following):]
                return list(reversed(cycle)) + [cycle[-1]]
            path.append(following)
            seen.add(following)
    return sorted(inputs)


def _topological(steps: list[Step]) -> list[Step] | None:
    """Steps with every input before it, ties broken by name; None on a cycle."""
    remaining = {s.name: s for s in steps}
    done: list[Step] = []
    while remaining:
        ready = sorted(n for n, s in remaining.items() if all(i not in remaining for i in s.inputs))
        if not ready:
            return None
        for name in ready:
            done.append(remaining.pop(name))
    return done
