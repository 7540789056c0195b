"""The TensorFlow side: TF_CONFIG as the training operator v1.8.1 computes it (pkg/controller.v1/tensorflow/
tensorflow.go, tfjob_controller.go SetClusterSpec), `tfjob list` and `tf-config` from the rendered TFJobs, the
parameter-server example run locally, the pipeline steps."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT, copy_stack, edit

from kfgen.tfconfig import tf_config
from kfgen.yamlio import dump


def job(replicas: dict, name="mnist", namespace="kubeflow", port=None, **spec) -> dict:
    def template(rtype):
        container = {"name": "tensorflow", "image": "tf:1"}
        if port:
            container["ports"] = [{"containerPort": port, "name": "tfjob-port"}]
        return {"spec": {"containers": [{"name": "sidecar", "ports": [{"containerPort": 9999, "name": "tfjob-port"}]}, container]}}
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {**spec, "tfReplicaSpecs": {t: {"replicas": n, "template": template(t)} for t, n in replicas.items()}}}


def test_the_reference_example_byte_for_byte():
    assert tf_config(job({"PS": 1, "Worker": 2}), "Worker", 1) == (
        '{"cluster":{"ps":["mnist-ps-0.kubeflow.svc:2222"],"worker":["mnist-worker-0.kubeflow.svc:2222","mnist-worker-1.kubeflow.svc:2222"]},'
        '"task":{"type":"worker","index":1},"environment":"cloud"}')


def test_chief_worker_ps_evaluator_mix_with_a_custom_port_and_cluster_domain():
    tfjob = job({"Worker": 2, "Chief": 1, "Evaluator": 1, "PS": 2}, name="big", namespace="ml", port=2345)
    assert json.loads(tf_config(tfjob, "evaluator", 0, cluster_domain="cluster.local")) == {
        "cluster": {"chief": ["big-chief-0.ml.svc.cluster.local:2345"],
                    "evaluator": ["big-evaluator-0.ml.svc.cluster.local:2345"],
                    "ps": ["big-ps-0.ml.svc.cluster.local:2345", "big-ps-1.ml.svc.cluster.local:2345"],
                    "worker": ["big-worker-0.ml.svc.cluster.local:2345", "big-worker-1.ml.svc.cluster.local:2345"]},
        "task": {"type": "evaluator", "index": 0}, "environment": "cloud"}
    assert tf_config(tfjob, "PS", 1).index('"chief"') < tf_config(tfjob, "PS", 1).index('"evaluator"')  # keys sorted, as Go writes them


def test_single_replica_jobs_get_no_tf_config():  # isDistributed() in util.go
    assert tf_config(job({"Worker": 1}), "Worker", 0) is None
    assert tf_config(job({"Chief": 1}), "Chief", 0) is None
    assert tf_config(job({"Chief": 1, "Worker": 0}), "Chief", 0) is None
    assert tf_config(job({"Chief": 1, "Worker": 1}), "Chief", 0) is not None


def test_an_unset_replica_count_is_one_and_the_default_port_is_2222():
    tfjob = {"metadata": {"name": "j", "namespace": "n"},
             "spec": {"tfReplicaSpecs": {"Worker": {"template": {"spec": {"containers": [{"name": "tensorflow"}]}}},
                                         "PS": {"replicas": 1, "template": {"spec": {"containers": [{"name": "tensorflow"}]}}}}}}
    assert json.loads(tf_config(tfjob, "worker", 0))["cluster"] == {"ps": ["j-ps-0.n.svc:2222"], "worker": ["j-worker-0.n.svc:2222"]}


def test_dynamic_workers_get_the_sparse_form_under_cluster():
    # tensorflow.go at v1.8.1: SparseTFConfig{Cluster SparseClusterSpec `json:"cluster"`; Task TaskSpec `json:"task"`} (no
    # environment), SparseClusterSpec{Worker map[int32]string `json:"worker"`; PS []string `json:"ps"`}, built by
    # convertClusterSpecToSparseClusterSpec: a worker gets itself and every PS, a PS only itself (upstream's own
    # TestConvertClusterSpecToSparseClusterSpec: 2 PS and 2 workers), any other type {Worker: {}, PS: []}. Go writes a
    # map's int keys as strings, a nil slice (no PS in the job) as null.
    tfjob = job({"PS": 2, "Worker": 2, "Chief": 1}, enableDynamicWorker=True)
    ps = '["mnist-ps-0.kubeflow.svc:2222","mnist-ps-1.kubeflow.svc:2222"]'
    assert tf_config(tfjob, "Worker", 0) == f'{{"cluster":{{"worker":{{"0":"mnist-worker-0.kubeflow.svc:2222"}},"ps":{ps}}},"task":{{"type":"worker","index":0}}}}'
    assert tf_config(tfjob, "PS", 0) == '{"cluster":{"worker":{},"ps":["mnist-ps-0.kubeflow.svc:2222"]},"task":{"type":"ps","index":0}}'
    assert tf_config(tfjob, "Chief", 0) == '{"cluster":{"worker":{},"ps":[]},"task":{"type":"chief","index":0}}'
    assert tf_config(job({"Worker": 2}, enableDynamicWorker=True), "Worker", 1) == (
        '{"cluster":{"worker":{"1":"mnist-worker-1.kubeflow.svc:2222"},"ps":null},"task":{"type":"worker","index":1}}')


def test_tensorflow_reads_the_sparse_cluster(tmp_path):
    """Real TensorFlow's TF_CONFIG resolver sees the sparse cluster kfgen prints (and nothing under the old key)."""
    config = tf_config(job({"PS": 2, "Worker": 3}, enableDynamicWorker=True), "Worker", 2)
    script = textwrap.dedent("""
        import json, os, sys
        import tensorflow as tf
        out = []
        for value in sys.argv[1:]:
            os.environ["TF_CONFIG"] = value
            resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
            out.append([resolver.cluster_spec().as_dict(), resolver.task_type, resolver.task_id])
        print(json.dumps(out))
    """)
    old = config.replace('"cluster"', '"sparseCluster"')
    done = subprocess.run([sys.executable, "-c", script, config, old], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    sparse, legacy = json.loads(done.stdout.strip().splitlines()[-1])
    assert sparse == [{"ps": ["mnist-ps-0.kubeflow.svc:2222", "mnist-ps-1.kubeflow.svc:2222"],
                       "worker": {"2": "mnist-worker-2.kubeflow.svc:2222"}}, "worker", 2]
    assert legacy[0] == {}  # what TensorFlow saw with kfgen's old "sparseCluster" key: no cluster at all


@pytest.mark.kustomize
def test_only_the_tensorflow_container_gets_a_tf_config(kfgen, example):
    renamed = job({"Worker": 2})
    for spec in renamed["spec"]["tfReplicaSpecs"].values():
        spec["template"]["spec"]["containers"][1]["name"] = "trainer"
    assert tf_config(renamed, "Worker", 0) is None  # SetClusterSpec only adds TF_CONFIG to the container named tensorflow
    edit(example, "      namespace: kubeflow\n", "      namespace: kubeflow\n      extraResources: [renamed.yaml]\n")
    (example.parent / "renamed.yaml").write_text(dump(tfjob_resource("renamed", {"Worker": 2}, container="trainer")))
    run = kfgen("render", example)
    assert run.code == 1  # lint at the end of the render: the operator's webhook would reject it
    assert ("rendered/dev/training-operator/ml/tfjob-renamed.yaml: spec.tfReplicaSpecs.Worker.template.spec.containers: [KFG008] "
            "no container named 'tensorflow' (has: 'trainer'); the training operator's webhook rejects the TFJob") in run.err.splitlines()
    edit(example, "  workloads:\n    namespace: ml\n", "  waivers:\n    - {policy: KFG008, kind: TFJob, name: renamed, namespace: ml, "
                  "reason: the operator runs without its webhook here}\n  workloads:\n    namespace: ml\n")
    run = kfgen("tfjob", "tf-config", example, "--env", "dev", "--job", "renamed", "--replica", "worker:1")
    assert (run.code, run.out) == (0, "")
    assert run.err == ("kfgen: Worker of renamed has no container named 'tensorflow': the operator injects no TF_CONFIG "
                       "(and its webhook rejects the TFJob; kfgen lint reports KFG008)\n")
    run = kfgen("tfjob", "run-local", example, "--env", "dev", "--job", "renamed", "--print-env")
    assert (run.code, run.err) == (2, "TFJob renamed: Worker has no container named 'tensorflow'; the operator's webhook rejects the job (kfgen lint: KFG008)\n")


@pytest.mark.kustomize
def test_tf_config_comes_from_the_rendered_tfjob(kfgen, example, tmp_path):
    run = kfgen("tfjob", "tf-config", example, "--env", "prod", "--job", "iris", "--replica", "worker:3")
    assert run.code == 0, run.err
    assert json.loads(run.out)["cluster"]["worker"][3] == "iris-worker-3.ml.svc:2222"  # prod overrides to 4 workers
    # a hand edit of the committed render shows: it tells what is deployed
    assert kfgen("render", example).code == 0
    rendered = example.parent / "deploy/rendered/dev/training-operator/ml/tfjob-iris.yaml"
    edit(rendered, "containerPort: 2222", "containerPort: 3333", count=1)
    out = json.loads(kfgen("tfjob", "tf-config", example, "--env", "dev", "--job", "iris", "--replica", "worker:0").out)
    assert out["cluster"]["worker"] == ["iris-worker-0.ml.svc:3333", "iris-worker-1.ml.svc:3333"]
    bad = kfgen("tfjob", "tf-config", example, "--env", "dev", "--job", "iris", "--replica", "chief:0")
    assert (bad.code, bad.err) == (2, "--replica chief:0: the job has no Chief replicas (it has: Worker)\n")
    # once the stack changes, the committed render is stale: a fresh render answers
    edit(example, "        replicas: {Worker: 2}", "        replicas: {Worker: 3}")
    run = kfgen("tfjob", "tf-config", example, "--env", "dev", "--job", "iris", "--replica", "worker:2")
    assert json.loads(run.out)["cluster"]["worker"] == [f"iris-worker-{i}.ml.svc:2222" for i in range(3)]
    assert run.err.startswith("kfgen: note: the committed render was made from another version of ")
    assert kfgen("tfjob", "tf-config", example, "--job", "iris", "--replica", "worker:0").err == (
        "--env is required: the stack has environments dev, prod\n")


@pytest.mark.kustomize
def test_tfjob_list(kfgen):
    run = kfgen("tfjob", "list", ROOT / "stacks/multicloud/stack.yaml", "--env", "eks-a100")
    assert run.out == "bert-finetune\tChief=1 Worker=1\taccelerator=train (nvidia-a100-40gb x2)\timage=tensorflow/tensorflow:2.18.0-gpu\n"
    run = kfgen("tfjob", "list", ROOT / "stacks/example/stack.yaml")
    assert run.out.splitlines() == [
        "dev\tiris\tWorker=2\taccelerator=cpu\timage=ghcr.io/acme/iris-trainer:0.1.0",
        "dev\tiris-ps\tChief=1 PS=1 Worker=2\taccelerator=cpu\timage=ghcr.io/acme/iris-trainer:0.1.0",
        "prod\tiris\tWorker=4\taccelerator=gpu (nvidia-l4 x1)\timage=ghcr.io/acme/iris-trainer:0.1.0-gpu",
        "prod\tiris-ps\tChief=1 PS=1 Worker=2\taccelerator=cpu\timage=ghcr.io/acme/iris-trainer:0.1.0"]


def tfjob_resource(name: str, replicas: dict, *, container: str = "tensorflow", command: list | None = None) -> dict:
    """A TFJob as a user would add it with extraResources (lint-clean but for what a test changes)."""
    main = {"name": container, "image": "tensorflow/tensorflow:2.18.0", "command": command or ["python", "-c", "print('hello')"],
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}},
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False}}
    template = {"spec": {"containers": [main], "securityContext": {"runAsNonRoot": True}}}
    return {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": name, "namespace": "ml"},
            "spec": {"tfReplicaSpecs": {t: {"replicas": n, "restartPolicy": "Never", "template": template} for t, n in replicas.items()}}}


@pytest.mark.kustomize
def test_patches_and_extra_resources_reach_list_tf_config_and_run_local(kfgen, example, tmp_path):
    (example.parent / "iris-patch.yaml").write_text(dump([
        {"op": "replace", "path": "/spec/tfReplicaSpecs/Worker/replicas", "value": 3},
        {"op": "add", "path": "/spec/enableDynamicWorker", "value": True},
        {"op": "add", "path": "/spec/tfReplicaSpecs/Worker/template/spec/containers/0/env/-", "value": {"name": "FROM_PATCH", "value": "yes"}}]))
    (example.parent / "hello.yaml").write_text(dump(tfjob_resource("hello", {"Worker": 1}, command=["python", "-c", "import os; print('hello', os.environ.get('TF_CONFIG'))"])))
    edit(example, "      namespace: kubeflow\n", "      namespace: kubeflow\n      extraResources: [hello.yaml]\n"
                  "      patches:\n        - {path: iris-patch.yaml, target: {kind: TFJob, name: iris}}\n")
    run = kfgen("tfjob", "list", example, "--env", "dev")
    assert run.code == 0, run.err
    assert run.out.splitlines()[:2] == ["hello\tWorker=1\taccelerator=cpu\timage=tensorflow/tensorflow:2.18.0",
                                        "iris\tWorker=3\taccelerator=cpu\timage=ghcr.io/acme/iris-trainer:0.1.0"]
    config = kfgen("tfjob", "tf-config", example, "--env", "dev", "--job", "iris", "--replica", "worker:2").out
    assert config == '{"cluster":{"worker":{"2":"iris-worker-2.ml.svc:2222"},"ps":null},"task":{"type":"worker","index":2}}\n'
    printed = kfgen("tfjob", "run-local", example, "--env", "dev", "--job", "iris", "--print-env", "--work-dir", tmp_path / "w").out.splitlines()
    assert printed[0::2] == ["# worker-0", "# worker-1", "# worker-2"]
    assert all(" FROM_PATCH=yes " in line and '"ps":null' in line for line in printed[1::2])
    run = kfgen("tfjob", "run-local", example, "--env", "dev", "--job", "hello", "--work-dir", tmp_path / "hello")
    assert run.code == 0, run.err
    assert "[worker-0] hello None" in run.out.splitlines()


@pytest.mark.parametrize("command", [["tfjob", "run-local", "--job", "iris"], ["serve-local", "--model", "iris"]])
def test_without_tensorflow_the_local_commands_say_how_to_install_it(example, command):
    blocked = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "tensorflow":
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, Block())
        from kfgen.cli import main
        raise SystemExit(main({[*command[:-2], str(example), *command[-2:]]!r}))
    """)
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (3, "tensorflow is not installed: pip install 'kfgen[tensorflow]'\n")


def test_the_example_pipeline_steps_chain_their_artifacts(tmp_path):
    stack = copy_stack("example", tmp_path)
    env = {"KFGEN_STEPS": "30", "PARAM_OUTLIER_THRESHOLD": "3.0", "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"}
    for step, inputs in [("load", []), ("clean", ["load"]), ("split", ["clean"]), ("train", ["split"]), ("evaluate", ["split", "train"])]:
        step_in = tmp_path / "in" / step
        for source in inputs:
            (step_in / source).parent.mkdir(parents=True, exist_ok=True)
            (step_in / source).symlink_to(tmp_path / "out" / source, target_is_directory=True)
        done = subprocess.run([sys.executable, "-m", "trainer.pipeline", step], cwd=stack.parent, capture_output=True, text=True,
                              env={**env, "KFGEN_INPUTS": str(step_in), "KFGEN_OUTPUT": str(tmp_path / "out" / step)}, timeout=300)
        assert done.returncode == 0, done.stderr
    cleaned = (tmp_path / "out/clean/data.csv").read_text().count("\n")
    assert cleaned < (tmp_path / "out/load/data.csv").read_text().count("\n")  # outliers dropped
    assert json.loads((tmp_path / "out/evaluate/metrics.json").read_text())["accuracy"] > 0.8


@pytest.mark.kustomize
def test_the_parameter_server_example_runs_locally(kfgen, tmp_path):
    stack = copy_stack("example", tmp_path)
    model = tmp_path / "model"
    run = kfgen("tfjob", "run-local", stack, "--job", "iris-ps", "--env", "dev", "--steps", "20", "--model-dir", model,
                "--work-dir", tmp_path / "work", "--timeout", "300")
    assert run.code == 0, run.out[-3000:] + run.err
    out = run.out.splitlines()
    assert {'[ps-0] {"serving": "ps-0"}', '[worker-0] {"serving": "worker-0"}', '[worker-1] {"serving": "worker-1"}'} <= set(out)
    assert any(line.startswith('[chief-0] {"step": 20, "loss": ') for line in out)
    result = json.loads(next(line for line in out if line.startswith('[chief-0] {"saved_model"')).split("] ", 1)[1])
    assert result["saved_model"] == f"{model}/1" and result["eval_accuracy"] > 0.8  # the SavedModel's own signature, on held-out rows
    assert run.err.splitlines()[-2:] == ["kfgen: chief-0 succeeded",
                                         "kfgen: iris-ps succeeded: Chief succeeded; stopping the others (ps-0, worker-0, worker-1)"]
