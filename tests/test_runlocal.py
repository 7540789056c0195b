"""`kfgen tfjob run-local` with stand-in replicas (tests/tfjob_replica.py): the training operator's
decisions, signals, --only, --print-env, logs, the deadline and the hang diagnosis.

Every expected outcome is the training operator v1.8.1's (kubeflow/training-operator at v1.8.1):
- success: pkg/controller.v1/tensorflow/tfjob_controller.go, UpdateJobStatus: with a Chief/Master,
  `expected == 0` of the Chief; else, for Workers, `expected == 0 || (worker0Completed &&
  *tfJob.Spec.SuccessPolicy != kubeflowv1.SuccessPolicyAllWorkers)`; the defaulter sets successPolicy
  "" (tensorflow_defaults.go) and restartPolicy Never (TFJobDefaultRestartPolicy, tensorflow_types.go).
- restarts: pkg/core/pod.go SetRestartPolicy (ExitCode becomes the pod's Never, the others are the
  pod's own: the kubelet restarts OnFailure on a non-zero exit and Always on any exit);
  pkg/controller.v1/common/pod.go ReconcilePods (a failed ExitCode pod with a retryable code is
  deleted and created again, a non-retryable one fails the job); pkg/util/train/train_util.go
  IsRetryableExitCode (`exitCode >= 128`).
- backoffLimit: pkg/core/job.go PastBackoffLimit (the restartCounts of running pods of OnFailure,
  Always and ExitCode types, `result >= limit`, or `> 0` for 0) and pkg/controller.v1/common/job.go
  ReconcileJobs (`exceedsBackoffLimit`: a new failed pod with `previousRetry+1 > backoffLimit`,
  previousRetry being 0: the TFJob reconciler's WorkQueue is util.FakeWorkQueue).
- a failed Worker with enableDynamicWorker: "continues regardless" (UpdateJobStatus).
- activeDeadlineSeconds: PastActiveDeadline fails the job.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, copy_stack

from kfgen.render import render
from kfgen.tfoperator import FAILED, RECREATE, RESTART, SUCCEEDED, JobState, after_exit, job_policy, pod_outcome
from kfgen.yamlio import dump

REPLICA = Path(__file__).with_name("tfjob_replica.py")
TFJOB_FILE = "deploy/rendered/dev/training-operator/ml/tfjob-{}.yaml"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """The example with its committed render (run-local reads it: same stack digest)."""
    stack = copy_stack("example", tmp_path_factory.mktemp("rendered"))
    render(stack)
    return stack.parent


@pytest.fixture
def stack(rendered, tmp_path) -> Path:
    shutil.copytree(rendered, tmp_path / "example", symlinks=True)
    return tmp_path / "example" / "stack.yaml"


def tfjob(replicas: dict, plan: dict, *, name: str = "job", restart: str | dict = "Never", success: str | None = None,
          backoff: int | None = None, deadline: int | None = None, dynamic: bool = False, command: list | None = None) -> dict:
    container = {"name": "tensorflow", "image": "python:3.11", "command": command or ["python", str(REPLICA)],
                 "env": [{"name": "PLAN", "value": json.dumps(plan)}]}
    specs = {}
    for rtype, count in replicas.items():
        spec: dict = {"replicas": count, "template": {"spec": {"containers": [container]}}}
        policy = restart.get(rtype) if isinstance(restart, dict) else restart
        if policy:
            spec["restartPolicy"] = policy
        specs[rtype] = spec
    run_policy = {k: v for k, v in (("backoffLimit", backoff), ("activeDeadlineSeconds", deadline)) if v is not None}
    spec = {"runPolicy": run_policy, "tfReplicaSpecs": specs}
    if success is not None:
        spec["successPolicy"] = success
    if dynamic:
        spec["enableDynamicWorker"] = True
    return {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": name, "namespace": "ml"}, "spec": spec}


def plant(stack: Path, job: dict) -> None:
    (stack.parent / TFJOB_FILE.format(job["metadata"]["name"])).write_text(dump(job))


def attempts(work: Path) -> dict[str, int]:
    return {p.name.removesuffix(".attempts"): int(p.read_text()) for p in sorted((work / "checkpoints").glob("*.attempts"))}


def run_local(kfgen, stack: Path, job: dict, work: Path, *extra):
    plant(stack, job)
    return kfgen("tfjob", "run-local", stack, "--env", "dev", "--job", job["metadata"]["name"], "--work-dir", work, *extra)


def verdict(run) -> str:
    return next(line for line in run.err.splitlines() if line.startswith("kfgen: job "))


# --- success policy ---------------------------------------------------------------------------------

@pytest.mark.kustomize
def test_default_success_policy_worker_0_completes_the_job(kfgen, stack, tmp_path):
    run = run_local(kfgen, stack, tfjob({"Worker": 2}, {"worker-0": [0], "worker-1": ["hang"]}), tmp_path / "w")
    assert run.code == 0, run.err
    assert verdict(run) == "kfgen: job succeeded: worker 0 succeeded (successPolicy default); stopping the others (worker-1)"


@pytest.mark.kustomize
def test_all_workers_success_policy_waits_for_every_worker(kfgen, stack, tmp_path):
    plan = {"worker-0": [0], "worker-1": ["wait:worker-0"]}
    run = run_local(kfgen, stack, tfjob({"Worker": 2}, plan, success="AllWorkers"), tmp_path / "all")
    assert run.code == 0, run.err
    assert verdict(run) == "kfgen: job succeeded: every Worker succeeded; stopping the others (none)"
    assert (tmp_path / "all/checkpoints/worker-1.exited").read_text() == "0"
    run = run_local(kfgen, stack, tfjob({"Worker": 2}, plan), tmp_path / "default")
    assert verdict(run).endswith("stopping the others (worker-1)")  # still running when worker 0 completed the job


@pytest.mark.kustomize
def test_with_a_chief_the_job_succeeds_with_the_chief_not_with_worker_0(kfgen, stack, tmp_path):
    plan = {"chief-0": ["wait:worker-0"], "worker-0": [0], "worker-1": ["hang"], "ps-0": ["hang"]}
    run = run_local(kfgen, stack, tfjob({"Chief": 1, "PS": 1, "Worker": 2}, plan), tmp_path / "w")
    assert run.code == 0, run.err
    assert "kfgen: worker-0 succeeded" in run.err.splitlines()
    assert verdict(run) == "kfgen: job succeeded: Chief succeeded; stopping the others (ps-0, worker-1)"
    assert (tmp_path / "w/checkpoints/chief-0.exited").read_text() == "0"


# --- restart policies and the backoff limit ------------------------------------------------------

@pytest.mark.kustomize
def test_on_failure_restarts_in_place_until_the_replica_succeeds(kfgen, stack, tmp_path):
    run = run_local(kfgen, stack, tfjob({"Worker": 2}, {"worker-0": [1, 1, 0], "worker-1": ["hang"]}, restart="OnFailure", backoff=3),
                    tmp_path / "w")
    assert run.code == 0, run.err
    assert attempts(tmp_path / "w") == {"worker-0": 3, "worker-1": 1}
    assert "kfgen: worker-0 exited with 1; restarting it (restartPolicy OnFailure, 2 restarts)" in run.err.splitlines()
    log = (tmp_path / "w/logs/worker-0.log").read_text().splitlines()
    assert [line for line in log if "attempt" in line] == [
        "worker-0 attempt 1: 1", "--- kfgen: attempt 2 (exit 1, restartPolicy OnFailure) ---", "worker-0 attempt 2: 1",
        "--- kfgen: attempt 3 (exit 1, restartPolicy OnFailure) ---", "worker-0 attempt 3: 0"]
    assert "[worker-1] worker-1 waiting for the others" in run.out.splitlines()


@pytest.mark.kustomize
def test_the_backoff_limit_counts_the_restarts_of_every_replica(kfgen, stack, tmp_path):
    run = run_local(kfgen, stack, tfjob({"Worker": 2}, {"worker-0": [1, "hang"], "worker-1": [1, 1, "hang"]}, restart="OnFailure", backoff=3),
                    tmp_path / "w")
    assert run.code == 1
    assert verdict(run).startswith("kfgen: job failed: it has reached the specified backoff limit (3); stopping the others (")
    # three failures in all, whatever their order: the first two restarted, the third ends the job.
    # Counted from kfgen's own markers (written before each restart), not the replicas' counters: on a
    # busy machine the last restarted replica may be stopped before it writes its own.
    restarts = [line for log in sorted((tmp_path / "w/logs").glob("*.log")) for line in log.read_text().splitlines()
                if line.startswith("--- kfgen: attempt ")]
    assert len(restarts) == 2, restarts
    assert len([line for line in run.err.splitlines() if "; restarting it (restartPolicy OnFailure" in line]) == 2, run.err


@pytest.mark.kustomize
def test_always_restarts_a_replica_that_exits_0_so_it_never_completes(kfgen, stack, tmp_path):
    run = run_local(kfgen, stack, tfjob({"Worker": 2}, {"worker-0": [0], "worker-1": ["hang"]}, restart="Always", backoff=2), tmp_path / "w")
    assert run.code == 1
    assert "kfgen: worker-0 exited with 0; restarting it (restartPolicy Always, 1 restart)" in run.err.splitlines()
    assert verdict(run) == "kfgen: job failed: it has reached the specified backoff limit (2); stopping the others (worker-1)"
    assert attempts(tmp_path / "w")["worker-0"] == 2


@pytest.mark.kustomize
def test_never_fails_the_job_on_the_first_failure(kfgen, stack, tmp_path):
    run = run_local(kfgen, stack, tfjob({"Worker": 2}, {"worker-0": ["hang"], "worker-1": [7]}, backoff=3), tmp_path / "w")
    assert run.code == 1
    assert verdict(run) == "kfgen: job failed: Worker 1 failed with exit code 7 (restartPolicy Never); stopping the others (worker-0)"


@pytest.mark.kustomize
def test_a_failed_worker_with_dynamic_workers_lets_the_job_continue(kfgen, stack, tmp_path):
    plan = {"worker-0": ["wait:worker-1"], "worker-1": [7]}
    run = run_local(kfgen, stack, tfjob({"Worker": 2}, plan, dynamic=True), tmp_path / "w")
    assert run.code == 0, run.err
    assert "kfgen: worker-1 failed with exit code 7; the job continues without it (enableDynamicWorker)" in run.err.splitlines()
    assert verdict(run).startswith("kfgen: job succeeded: worker 0 succeeded")


@pytest.mark.kustomize
def test_exit_code_recreates_on_retryable_codes_only(kfgen, stack, tmp_path):
    plan = {"worker-0": ["wait:worker-1"], "worker-1": ["kill", "kill", 0]}
    run = run_local(kfgen, stack, tfjob({"Worker": 2}, plan, restart="ExitCode", backoff=1), tmp_path / "retry")
    assert run.code == 0, run.err
    assert "kfgen: worker-1 exited with 137; recreating it (restartPolicy ExitCode, a retryable exit code)" in run.err.splitlines()
    assert attempts(tmp_path / "retry") == {"worker-0": 1, "worker-1": 3}  # recreated pods have no restarts to count
    run = run_local(kfgen, stack, tfjob({"Worker": 2}, {"worker-0": ["hang"], "worker-1": [3]}, restart="ExitCode"), tmp_path / "final")
    assert verdict(run) == "kfgen: job failed: Worker 1 failed with exit code 3 (restartPolicy ExitCode); stopping the others (worker-0)"
    run = run_local(kfgen, stack, tfjob({"Worker": 2}, {"worker-0": ["hang"], "worker-1": ["kill"]}, restart="ExitCode", backoff=0),
                    tmp_path / "zero")
    assert verdict(run) == "kfgen: job failed: it has reached the specified backoff limit (0); stopping the others (worker-0)"


@pytest.mark.parametrize("policy, code, outcome", [
    ("Always", 0, RESTART), ("Always", 1, RESTART), ("OnFailure", 0, SUCCEEDED), ("OnFailure", 2, RESTART),
    ("Never", 0, SUCCEEDED), ("Never", 137, FAILED), ("ExitCode", 0, SUCCEEDED), ("ExitCode", 127, FAILED),
    ("ExitCode", 128, RECREATE), ("ExitCode", 143, RECREATE),
])
def test_what_happens_to_a_pod_after_an_exit(policy, code, outcome):
    assert pod_outcome(policy, code) == outcome


def test_restarts_of_a_replica_that_succeeded_no_longer_count():
    state = JobState(job_policy(tfjob({"Worker": 3}, {}, restart="OnFailure", backoff=2, success="AllWorkers")))
    assert after_exit(state, ("Worker", 1), 1).verdict is None  # 1 restart
    assert after_exit(state, ("Worker", 1), 0).verdict is None  # worker 1 succeeded: its restart leaves the count
    decision = after_exit(state, ("Worker", 2), 1)  # 1 restart among running pods: under the limit of 2
    assert (decision.replica, decision.verdict) == (RESTART, None)
    assert after_exit(state, ("Worker", 0), 1).verdict == "Failed"  # 2 restarts among running pods


def test_a_job_with_neither_chief_nor_workers_never_succeeds():
    state = JobState(job_policy(tfjob({"PS": 1, "Evaluator": 1}, {})))
    assert after_exit(state, ("Evaluator", 0), 0).verdict is None


@pytest.mark.kustomize
def test_an_unknown_restart_policy_is_bad_input(kfgen, stack, tmp_path):
    run = run_local(kfgen, stack, tfjob({"Worker": 2}, {}, restart="Sometimes"), tmp_path / "w")
    assert (run.code, run.err) == (2, "TFJob job: spec.tfReplicaSpecs.Worker.restartPolicy: 'Sometimes' is not one of Always, OnFailure, Never, ExitCode\n")


# --- deadline, diagnosis, options ------------------------------------------------------------------

@pytest.mark.kustomize
def test_active_deadline_is_the_default_timeout_and_the_hang_is_explained(kfgen, stack, tmp_path):
    run = run_local(kfgen, stack, tfjob({"Chief": 1, "Worker": 1}, {"chief-0": ["hang"], "worker-0": ["hang"]}, deadline=4), tmp_path / "w")
    assert run.code == 1
    lines = run.err.splitlines()
    assert lines[-3:] == [
        "kfgen: job failed: active longer than its deadline (activeDeadlineSeconds 4)",
        "kfgen: at the timeout; still running: chief-0 (last line: 'chief-0 waiting for the others'), "
        "worker-0 (last line: 'worker-0 waiting for the others')",
        "kfgen: the job was waiting for chief-0 to succeed"]
    run = run_local(kfgen, stack, tfjob({"Worker": 1}, {"only": ["hang"]}, deadline=600), tmp_path / "t", "--timeout", "3")
    assert run.err.splitlines()[-3:] == ["kfgen: job failed: still running after --timeout 3s",
                                         "kfgen: at the timeout; still running: worker-0 (last line: 'only waiting for the others')",
                                         "kfgen: the job was waiting for worker-0 to succeed"]


@pytest.mark.kustomize
def test_only_runs_one_replica_with_the_whole_cluster_in_its_tf_config(kfgen, stack, tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["elsewhere:1"]}, "task": {"type": "worker", "index": 0}}')
    run = run_local(kfgen, stack, tfjob({"Chief": 1, "Worker": 2}, {"worker-1": [0]}), tmp_path / "w", "--only", "worker:1")
    assert run.code == 0, run.err
    assert attempts(tmp_path / "w") == {"worker-1": 1}
    config = json.loads(next(line for line in run.out.splitlines() if line.startswith("[worker-1] TF_CONFIG=")).split("=", 1)[1])
    assert config["task"] == {"type": "worker", "index": 1}
    assert [len(config["cluster"][t]) for t in ("chief", "worker")] == [1, 2]
    lines = run.err.splitlines()
    assert lines[0] == "kfgen: running worker-1 only; start the others with:"
    others = lines[1:3]  # the commands to start chief-0 and worker-0 by hand, with the same addresses
    for line, (rtype, index) in zip(others, [("chief", 0), ("worker", 0)]):
        assert line.startswith(f"  cd {stack.parent} && env KFGEN_CHECKPOINT_DIR=")  # the shell's TF_CONFIG replaced
        assert f'"task":{{"type":"{rtype}","index":{index}}}' in line
        assert json.dumps(config["cluster"], separators=(",", ":")) in line
    assert verdict(run) == "kfgen: job succeeded: worker-1 succeeded; stopping the others (none)"
    bad = kfgen("tfjob", "run-local", stack, "--env", "dev", "--job", "job", "--only", "ps:0")
    assert (bad.code, bad.err) == (2, "--only ps:0: job has no such replica (it has: chief-0, worker-0, worker-1)\n")


@pytest.mark.kustomize
def test_print_env_shows_each_replica_exactly_and_runs_nothing(kfgen, stack, tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "from-the-shell")
    monkeypatch.setenv("KFGEN_STEPS", "999")
    plant(stack, tfjob({"Worker": 2}, {}))
    work = tmp_path / "w"
    run = kfgen("tfjob", "run-local", stack, "--env", "dev", "--job", "job", "--work-dir", work, "--print-env", "--model-dir", tmp_path / "m")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0::2] == ["# worker-0", "# worker-1"]
    for index, line in enumerate(lines[1::2]):
        head, _, config = line.partition(" TF_CONFIG='")
        assert head == (f"cd {stack.parent} && env -u KFGEN_STEPS KFGEN_CHECKPOINT_DIR={work}/checkpoints KFGEN_MODEL_DIR={tmp_path}/m "
                        f"KFGEN_TENSORBOARD_DIR={work}/tensorboard PLAN='{{}}' PYTHONUNBUFFERED=1")
        config, _, tail = config.partition("' ")
        assert json.loads(config)["task"] == {"type": "worker", "index": index}
        assert tail == f"TF_CPP_MIN_LOG_LEVEL=2 {sys.executable} {REPLICA}"
    assert attempts(work) == {}  # nothing ran


@pytest.mark.kustomize
def test_a_tf_config_in_the_shell_never_reaches_a_replica(kfgen, stack, tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["elsewhere:1"]}, "task": {"type": "worker", "index": 0}}')
    run = run_local(kfgen, stack, tfjob({"Worker": 1}, {}), tmp_path / "single")
    assert run.code == 0, run.err
    assert "[worker-0] TF_CONFIG=unset" in run.out.splitlines()  # a single replica gets none, as from the operator
    run = run_local(kfgen, stack, tfjob({"Worker": 2}, {"worker-0": ["wait:worker-1"], "worker-1": [0]}), tmp_path / "two")
    configs = [json.loads(line.split("=", 1)[1]) for line in run.out.splitlines() if "] TF_CONFIG=" in line]
    assert {c["task"]["index"] for c in configs} == {0, 1} and all(h.startswith("localhost:") for c in configs for h in c["cluster"]["worker"])


@pytest.mark.kustomize
def test_commands_expand_variables_as_kubernetes_does(kfgen, stack, tmp_path):
    job = tfjob({"Worker": 1}, {}, command=["python", "-c", "import sys; print('args', sys.argv[1:])",
                                              "$(KFGEN_MODEL_DIR)", "$$(PLAN)", "$(UNDEFINED)"])
    run = run_local(kfgen, stack, job, tmp_path / "w", "--model-dir", tmp_path / "m")
    assert f"[worker-0] args ['{tmp_path}/m', '$(PLAN)', '$(UNDEFINED)']" in run.out.splitlines()


# --- signals -------------------------------------------------------------------------------------

def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.kustomize
@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_a_signal_to_run_local_stops_every_replica(stack, tmp_path, sig, code, word):
    plan = {"chief-0": ["hang"], "ps-0": ["hang"], "worker-0": ["hang"], "worker-1": ["hang"]}
    plant(stack, tfjob({"Chief": 1, "PS": 1, "Worker": 2}, plan))
    work = tmp_path / "w"
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    process = subprocess.Popen([sys.executable, "-m", "kfgen", "tfjob", "run-local", str(stack), "--env", "dev", "--job", "job",
                                "--work-dir", str(work)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    waiting = set()
    while len(waiting) < len(plan):  # kfgen relayed each replica's last line: each and its grandchild started
        line = process.stdout.readline()
        assert line, process.communicate()
        if line.rstrip().endswith("waiting for the others"):
            waiting.add(line.split("]")[0])
    pids = [int(pid) for name in plan for pid in (work / f"checkpoints/{name}.pids").read_text().split()]
    assert len(pids) == 2 * len(plan)
    assert all(alive(pid) for pid in pids)
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert [line for line in err.splitlines() if line][-3:] == [
        "kfgen: stopping every replica; still running: chief-0 (last line: 'chief-0 waiting for the others'), "
        "ps-0 (last line: 'ps-0 waiting for the others'), worker-0 (last line: 'worker-0 waiting for the others'), "
        "worker-1 (last line: 'worker-1 waiting for the others')", "kfgen: the job was waiting for chief-0 to succeed", f"kfgen: {word}"]
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:  # orphans are reaped by init
        time.sleep(0.05)
    assert [pid for pid in pids if alive(pid)] == []
