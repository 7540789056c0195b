"""Training jobs as Kubeflow TFJobs (the container is `tensorflow` with port `tfjob-port`, as the
operator's webhook and TF_CONFIG expect)."""

from __future__ import annotations

from kfgen.accelerators import image_variant
from kfgen.components.pods import container_security, env_list, shm_volume, workload_security, workload_service_account
from kfgen.context import RenderContext
from kfgen.model import TrainingJob
from kfgen.objects import Obj, empty_dir, meta, network_policy, obj
from kfgen.vocabulary import MODEL_DIR_ENV, REPLICA_ACCELERATOR_PREFIX, WORKLOAD_LABEL

SERVICE_ACCOUNT = "ml-training"
TFJOB_ACCELERATED = ("Chief", "Master", "Worker", "Evaluator")  # parameter servers never get the accelerator


def replica_label(replica_type: str) -> str:
    return f"{REPLICA_ACCELERATOR_PREFIX}{replica_type.lower()}"


def training_objects(ctx: RenderContext) -> list[Obj]:
    jobs = ctx.workloads.enabled("training")
    if not jobs:
        return []
    objects = [workload_service_account(ctx, SERVICE_ACCOUNT, "training")]
    if any(sum(n for _, n in job.replicas) > 1 for job in jobs):  # replicas of a distributed job talk to each other
        replicas = {"matchLabels": {"training.kubeflow.org/operator-name": "tfjob-controller"}}  # the operator's label on its pods
        objects.append(network_policy("allow-tfjob-replicas", ctx.workloads.namespace, replicas, ingress=[{"from": [{"podSelector": replicas}]}]))
    objects += [tfjob(job, ctx) for job in jobs]
    return objects


def tfjob(job: TrainingJob, ctx: RenderContext) -> Obj:
    labels = {WORKLOAD_LABEL: job.name}
    specs: Obj = {}
    for replica_type, count in job.replicas:
        accelerator = job.accelerator_of(replica_type)
        if accelerator:
            labels[replica_label(replica_type)] = accelerator
        specs[replica_type] = {"replicas": count, "restartPolicy": "OnFailure", "template": _template(job, accelerator, ctx)}
    run_policy: Obj = {"cleanPodPolicy": job.run_policy.clean_pod_policy}
    for key, value in (("ttlSecondsAfterFinished", job.run_policy.ttl_seconds_after_finished),
                       ("backoffLimit", job.run_policy.backoff_limit),
                       ("activeDeadlineSeconds", job.run_policy.active_deadline_seconds)):
        if value is not None:
            run_policy[key] = value
    return obj("kubeflow.org/v1", "TFJob", meta(job.name, ctx.workloads.namespace, labels=labels),
               spec={"runPolicy": run_policy, "tfReplicaSpecs": specs})


def _template(job: TrainingJob, accelerator: str | None, ctx: RenderContext) -> Obj:
    klass = ctx.accelerator(accelerator)
    image = image_variant(job.image, klass) if job.image_variant else job.image
    env = env_list(job.env, {MODEL_DIR_ENV: job.model_dir} if job.model_dir else None)
    mounts = [{"mountPath": "/tmp", "name": "tmp"}]
    volumes = [empty_dir("tmp")]
    if ctx.shared_memory(accelerator):
        mounts.insert(0, {"mountPath": "/dev/shm", "name": "dshm"})
        volumes.insert(0, shm_volume(job.resources))
    main: Obj = {"name": "tensorflow", "image": image, "imagePullPolicy": "IfNotPresent"}
    if job.command:
        main["command"] = list(job.command)
    if job.args:
        main["args"] = list(job.args)
    if env:
        main["env"] = env
    main["ports"] = [{"containerPort": job.port, "name": "tfjob-port", "protocol": "TCP"}]
    main["resources"] = job.resources.as_dict()
    main["securityContext"] = container_security()
    main["volumeMounts"] = mounts
    pod_labels = {WORKLOAD_LABEL: job.name, **ctx.identity_pod_labels("training")}
    return {
        "metadata": {"annotations": {"sidecar.istio.io/inject": "false"}, "labels": dict(sorted(pod_labels.items()))},
        "spec": {"automountServiceAccountToken": False, "containers": [main], "nodeSelector": {"kubernetes.io/os": "linux"},
                 "securityContext": workload_security(), "serviceAccountName": SERVICE_ACCOUNT, "volumes": volumes},
    }
