"""What the Kubeflow training operator (v1.8) and the kubelet decide when a TFJob's replica exits.

Pure decisions, taken from a rendered TFJob, for `kfgen tfjob run-local`:

- restartPolicy per replica type (default Never). The pod gets it as its own restartPolicy, except
  ExitCode, which becomes Never. So the kubelet restarts the container in place on OnFailure
  (exit code != 0) and Always (any exit code, 0 too: such a replica never completes), and the
  restart counts in the container's restartCount. On ExitCode the operator deletes a failed pod and
  creates a new one when the exit code is retryable (128 or more: killed by a signal), and fails
  the job otherwise. On Never a failed replica fails the job, except a Worker with
  enableDynamicWorker: the job continues without it.
- runPolicy.backoffLimit: the job fails once the restartCounts of the running pods of types with
  OnFailure, Always or ExitCode add up to the limit (more than 0 when the limit is 0), and, when the
  limit is 0, as soon as a pod fails.
- Success: with a Chief or Master, when every Chief/Master replica has succeeded; without one,
  when worker 0 has succeeded (successPolicy "", the default) or every Worker has (AllWorkers).
  A job with neither a Chief/Master nor Workers never succeeds.
- runPolicy.activeDeadlineSeconds: the job fails when it has been active that long.

Sources (training-operator v1.8.1): pkg/controller.v1/tensorflow/tfjob_controller.go
(UpdateJobStatus, IsWorker0Completed), pkg/controller.v1/common/job.go (ReconcileJobs),
pkg/controller.v1/common/pod.go (ReconcilePods), pkg/core/job.go (PastBackoffLimit),
pkg/core/pod.go (SetRestartPolicy), pkg/util/train/train_util.go (IsRetryableExitCode),
pkg/apis/kubeflow.org/v1/tensorflow_defaults.go and tensorflow_types.go (defaults).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kfgen.tfconfig import LEADERS, REPLICA_TYPES, replica_counts, replica_specs

RESTART_POLICIES = ("Always", "OnFailure", "Never", "ExitCode")
DEFAULT_RESTART_POLICY = "Never"  # TFJobDefaultRestartPolicy
SUCCESS_POLICIES = ("", "AllWorkers")
COUNTED = ("OnFailure", "Always", "ExitCode")  # the restart policies PastBackoffLimit counts

# What happens to a replica after its process exits.
RESTART = "restart"  # the kubelet restarts the container in the same pod (restartCount + 1)
RECREATE = "recreate"  # the operator deletes the failed pod and creates a new one
SUCCEEDED = "succeeded"
FAILED = "failed"


def is_retryable(code: int) -> bool:
    """ExitCode's retryable exit codes: 128 and above (a signal, e.g. 137 for SIGKILL)."""
    return code >= 128


def pod_outcome(restart_policy: str, code: int) -> str:
    """RESTART, RECREATE, SUCCEEDED or FAILED for a replica whose process exited with `code`."""
    if restart_policy == "Always" or (restart_policy == "OnFailure" and code != 0):
        return RESTART
    if code == 0:
        return SUCCEEDED
    if restart_policy == "ExitCode" and is_retryable(code):
        return RECREATE
    return FAILED


@dataclass(frozen=True)
class JobPolicy:
    """The settings of a TFJob that decide its fate, with the operator's defaults applied."""

    counts: dict[str, int]  # replicas per canonical type
    restart: dict[str, str]  # restartPolicy per canonical type
    success_policy: str
    backoff_limit: int | None
    active_deadline: int | None
    dynamic_workers: bool


def job_policy(tfjob: dict) -> JobPolicy:
    """The policy of a rendered TFJob; ValueError names a value the operator would not accept."""
    spec = tfjob.get("spec") or {}
    run_policy = spec.get("runPolicy") or {}
    restart = {}
    for rtype, replica in replica_specs(tfjob).items():
        policy = replica.get("restartPolicy") or DEFAULT_RESTART_POLICY
        if policy not in RESTART_POLICIES:
            raise ValueError(f"spec.tfReplicaSpecs.{rtype}.restartPolicy: {policy!r} is not one of {', '.join(RESTART_POLICIES)}")
        restart[rtype] = policy
    success = spec.get("successPolicy") or ""
    if success not in SUCCESS_POLICIES:
        raise ValueError(f"spec.successPolicy: {success!r} is not one of '', AllWorkers")
    return JobPolicy(replica_counts(tfjob), restart, success, _int_or_none(run_policy.get("backoffLimit")),
                     _int_or_none(run_policy.get("activeDeadlineSeconds")), bool(spec.get("enableDynamicWorker")))


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass
class JobState:
    """What the operator sees of the job's pods: per replica (type, index), its phase and the
    restartCount of its current pod's container."""

    policy: JobPolicy
    phase: dict[tuple[str, int], str] = field(default_factory=dict)  # Running | Succeeded | Failed
    restarts: dict[tuple[str, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rtype in REPLICA_TYPES:
            for index in range(self.policy.counts.get(rtype, 0)):
                self.phase[(rtype, index)] = "Running"
                self.restarts[(rtype, index)] = 0


@dataclass(frozen=True)
class Decision:
    """After an exit: what to do with the replica (RESTART, RECREATE, or leave it) and, once the job
    is finished, its verdict ("Succeeded" or "Failed") and the operator's reason."""

    replica: str  # RESTART, RECREATE, SUCCEEDED or FAILED
    verdict: str | None = None
    reason: str = ""


def after_exit(state: JobState, replica: tuple[str, int], code: int) -> Decision:
    """Record that `replica`'s process exited with `code` and decide, as the kubelet and then the
    operator's next reconcile would."""
    policy = state.policy
    rtype, index = replica
    outcome = pod_outcome(policy.restart[rtype], code)
    if outcome == RESTART:
        state.restarts[replica] += 1
        if _past_backoff_limit(state):
            return Decision(outcome, "Failed", f"it has reached the specified backoff limit ({policy.backoff_limit})")
        return Decision(outcome)
    if outcome == SUCCEEDED:
        state.phase[replica] = "Succeeded"
        return Decision(outcome, *(_success(state) or (None, "")))
    state.phase[replica] = "Failed"
    if policy.backoff_limit == 0:  # a new failure with nothing left to retry: exceedsBackoffLimit
        return Decision(outcome, "Failed", "it has reached the specified backoff limit (0)")
    if outcome == RECREATE:
        state.phase[replica], state.restarts[replica] = "Running", 0  # a new pod
        return Decision(outcome)
    if policy.restart[rtype] == "Never" and policy.dynamic_workers and rtype == "Worker":
        return Decision(outcome)  # "continues regardless ... Worker replica(s) failed as enableDynamicWorker is set true"
    return Decision(outcome, "Failed", f"{rtype} {index} failed with exit code {code} (restartPolicy {policy.restart[rtype]})")


def _past_backoff_limit(state: JobState) -> bool:
    limit = state.policy.backoff_limit
    if limit is None:
        return False
    total = sum(n for (rtype, i), n in state.restarts.items()
                if state.policy.restart[rtype] in COUNTED and state.phase[(rtype, i)] == "Running")
    return total > 0 if limit == 0 else total >= limit


def _success(state: JobState) -> tuple[str, str] | None:
    counts = state.policy.counts
    leaders = [t for t in LEADERS if t in counts]
    if leaders:
        if all(state.phase[(t, i)] == "Succeeded" for t in leaders for i in range(counts[t])):
            return "Succeeded", f"{' and '.join(leaders)} succeeded"
        return None
    workers = counts.get("Worker")
    if workers is None:
        return None
    done = [state.phase[("Worker", i)] == "Succeeded" for i in range(workers)]
    if all(done):
        return "Succeeded", "every Worker succeeded"
    if done and done[0] and state.policy.success_policy != "AllWorkers":
        return "Succeeded", "worker 0 succeeded (successPolicy default)"
    return None


def waiting_for(state: JobState) -> list[tuple[str, int]]:
    """The replicas whose success the job still waits for (to explain a hang)."""
    counts = state.policy.counts
    leaders = [t for t in LEADERS if t in counts]
    if leaders:
        wanted = [(t, i) for t in leaders for i in range(counts[t])]
    elif state.policy.success_policy == "AllWorkers":
        wanted = [("Worker", i) for i in range(counts.get("Worker", 0))]
    else:
        wanted = [("Worker", 0)] if counts.get("Worker") else []
    return [r for r in wanted if state.phase[r] != "Succeeded"]
