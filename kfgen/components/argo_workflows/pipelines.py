"""Pipelines as Argo WorkflowTemplates: a DAG whose tasks pass each step's output directory on as
an artifact; a step on an accelerator is its own WorkflowTemplate (`<pipeline>-<step>`, template
`main`) so the accelerator Component can patch it by label. A schedule adds a CronWorkflow."""

from __future__ import annotations

from kfgen.accelerators import image_variant
from kfgen.components.pods import container_security, env_list, shm_volume, workload_security, workload_service_account
from kfgen.context import RenderContext
from kfgen.model import Pipeline, Step
from kfgen.objects import Obj, binding, empty_dir, meta, obj, role, rule
from kfgen.vocabulary import ACCELERATOR_LABEL, ARGO_WORKFLOWS_API, PIPELINE_INPUTS_ENV, PIPELINE_OUTPUT_ENV, WORKLOAD_LABEL

SERVICE_ACCOUNT = "ml-pipelines"
IN_DIR, OUT_DIR = "/work/in", "/work/out"


def pipeline_objects(ctx: RenderContext) -> list[Obj]:
    ns = ctx.workloads.namespace
    pipelines = ctx.workloads.enabled("pipelines")
    if not pipelines:
        return []
    executor = f"{SERVICE_ACCOUNT}-executor"
    objects = [
        workload_service_account(ctx, SERVICE_ACCOUNT, "pipelines", automount=True),  # the executor reports through the API
        # The emissary executor's minimum: report outputs through WorkflowTaskResults.
        role("Role", executor, ns, [rule(["argoproj.io"], ["workflowtaskresults"], ["create", "patch"])]),
        binding("RoleBinding", executor, ns, "Role", executor, [(SERVICE_ACCOUNT, ns)]),
    ]
    argo_version = ctx.component("argo-workflows").version
    for pipeline in pipelines:
        objects += workflow_templates(pipeline, ctx)
        if pipeline.schedule:
            objects.append(cron_workflow(pipeline, ns, argo_version))
    return objects


def parameter_variable(name: str) -> str:
    """The environment variable a pipeline parameter reaches the steps as (learning-rate: PARAM_LEARNING_RATE)."""
    return "PARAM_" + name.upper().replace("-", "_")


def step_template_name(pipeline: Pipeline, step: Step) -> str:
    return f"{pipeline.name}-{step.name}"


def workflow_templates(pipeline: Pipeline, ctx: RenderContext) -> list[Obj]:
    ns = ctx.workloads.namespace
    tasks: list[Obj] = []
    templates: list[Obj] = [{"dag": {"tasks": tasks}, "name": "pipeline"}]
    separate: list[Obj] = []
    for step in pipeline.steps:
        task: Obj = {"name": step.name}
        if step.inputs:
            task["arguments"] = {"artifacts": [{"from": f"{{{{tasks.{source}.outputs.artifacts.output}}}}", "name": source}
                                               for source in step.inputs]}
            task["dependencies"] = list(step.inputs)
        if step.accelerator:
            task["templateRef"] = {"name": step_template_name(pipeline, step), "template": "main"}
            labels = {WORKLOAD_LABEL: pipeline.name, ACCELERATOR_LABEL: step.accelerator}
            separate.append(obj(ARGO_WORKFLOWS_API, "WorkflowTemplate", meta(step_template_name(pipeline, step), ns, labels=labels),
                                spec=_spec(pipeline, [_step_template(pipeline, step, "main", ctx)], None, ctx)))
        else:
            task["template"] = step.name
            templates.append(_step_template(pipeline, step, step.name, ctx))
        tasks.append(task)
    main = obj(ARGO_WORKFLOWS_API, "WorkflowTemplate", meta(pipeline.name, ns, labels={WORKLOAD_LABEL: pipeline.name}),
               spec=_spec(pipeline, templates, "pipeline", ctx))
    return [main, *separate]


def _spec(pipeline: Pipeline, templates: list[Obj], entrypoint: str | None, ctx: RenderContext) -> Obj:
    spec: Obj = {}
    if pipeline.parameters and entrypoint:
        spec["arguments"] = {"parameters": [{"name": k, "value": v} for k, v in pipeline.parameters]}
    if entrypoint:
        spec["entrypoint"] = entrypoint
    pod_labels = {WORKLOAD_LABEL: pipeline.name, **ctx.identity_pod_labels("pipelines")}
    spec["podMetadata"] = {"labels": dict(sorted(pod_labels.items()))}
    spec["securityContext"] = workload_security()
    spec["serviceAccountName"] = SERVICE_ACCOUNT
    spec["templates"] = templates
    return spec


def _step_template(pipeline: Pipeline, step: Step, name: str, ctx: RenderContext) -> Obj:
    env = {parameter_variable(k): f"{{{{workflow.parameters.{k}}}}}" for k, _ in pipeline.parameters}
    env.update({PIPELINE_INPUTS_ENV: IN_DIR, PIPELINE_OUTPUT_ENV: OUT_DIR})
    mounts = [{"mountPath": OUT_DIR, "name": "out"}, {"mountPath": "/tmp", "name": "tmp"}]
    volumes = [empty_dir("out"), empty_dir("tmp")]
    if ctx.shared_memory(step.accelerator):
        mounts.insert(0, {"mountPath": "/dev/shm", "name": "dshm"})
        volumes.insert(0, shm_volume(step.resources))
    container: Obj = {"command": list(step.command), "env": env_list(step.env, env),
                      "image": image_variant(step.image, ctx.accelerator(step.accelerator)), "imagePullPolicy": "IfNotPresent"}
    if step.args:
        container["args"] = list(step.args)
    container["resources"] = step.resources.as_dict()
    container["securityContext"] = container_security()
    container["volumeMounts"] = mounts
    template: Obj = {"container": container, "name": name, "nodeSelector": {"kubernetes.io/os": "linux"},
                     "outputs": {"artifacts": [{"name": "output", "path": OUT_DIR}]}, "volumes": volumes}
    if step.inputs:
        template["inputs"] = {"artifacts": [{"name": source, "path": f"{IN_DIR}/{source}"} for source in step.inputs]}
    return template


def cron_workflow(pipeline: Pipeline, ns: str, argo_version: str) -> Obj:
    spec: Obj = {"concurrencyPolicy": "Forbid", "failedJobsHistoryLimit": 3, "startingDeadlineSeconds": 300,
                 "successfulJobsHistoryLimit": 3, "timezone": pipeline.timezone,
                 "workflowSpec": {"workflowTemplateRef": {"name": pipeline.name}}}
    if argo_version.startswith("v3.5"):
        spec["schedule"] = pipeline.schedule
    else:
        spec["schedules"] = [pipeline.schedule]
    return obj(ARGO_WORKFLOWS_API, "CronWorkflow", meta(pipeline.name, ns, labels={WORKLOAD_LABEL: pipeline.name}), spec=spec)
