"""The TensorFlow side: TF_CONFIG as the operator computes it, and the example job run locally."""

from __future__ import annotations

import pytest

import json
import subprocess
import sys
import textwrap


from conftest import ROOT, copy_stack, edit
from kfgen.tfconfig import tf_config


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


def test_single_replica_jobs_get_no_tf_config():
    assert tf_config(job({"Worker": 1}), "Worker", 0) is None
    assert tf_config(job({"Chief": 1}), "Chief", 0) is None
    assert tf_config(job({"Chief": 1, "Worker": 0}), "Chief", 0) is None
    assert tf_config(job({"Chief": 1, "Worker": 1}), "Chief", 0) is not None


def test_an_unset_replica_count_is_one_and_the_default_port_is_2222():
    tfjob = {"metadata": {"name": "j", "namespace": "n"},
             "spec": {"tfReplicaSpecs": {"Worker": {"template": {"spec": {"containers": [{"name": "tensorflow"}]}}}, "PS": {"replicas": 1, "template": {}}}}}
    assert json.loads(tf_config(tfjob, "ps", 0))["cluster"] == {"ps": ["j-ps-0.n.svc:2222"], "worker": ["j-worker-0.n.svc:2222"]}


def test_dynamic_workers_get_the_sparse_form():
    tfjob = job({"PS": 1, "Worker": 3}, enableDynamicWorker=True)
    assert tf_config(tfjob, "Worker", 2) == ('{"sparseCluster":{"worker":{"2":"mnist-worker-2.kubeflow.svc:2222"},"ps":["mnist-ps-0.kubeflow.svc:2222"]},'
                                             '"task":{"type":"worker","index":2}}')
    assert tf_config(job({"Worker": 2}, enableDynamicWorker=True), "Worker", 0) == (
        '{"sparseCluster":{"worker":{"0":"mnist-worker-0.kubeflow.svc:2222"},"ps":null},"task":{"type":"worker","index":0}}')


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


def test_tfjob_list(kfgen):
    run = kfgen("tfjob", "list", ROOT / "stacks/multicloud/stack.yaml", "--env", "eks-a100")
    assert run.out == "bert-finetune\tChief=1 Worker=1\taccelerator=train (nvidia-a100-40gb x2)\timage=tensorflow/tensorflow:2.18.0-gpu\n"


def test_the_example_job_runs_locally_with_two_workers_and_serves(kfgen, tmp_path):
    stack = copy_stack("example", tmp_path)
    model_dir = tmp_path / "model"
    run = kfgen("tfjob", "run-local", stack, "--job", "iris", "--env", "dev", "--steps", "40", "--model-dir", model_dir, "--timeout", "300")
    assert run.code == 0, run.out[-3000:] + run.err
    assert run.err.splitlines()[0] == f"kfgen: running iris locally: worker-0, worker-1; model dir {model_dir}"
    assert '[worker-0] {"step": 40,' in run.out and '[worker-1] {"step": 40,' in run.out
    check = textwrap.dedent(f"""
        import json, tensorflow as tf
        loaded = tf.saved_model.load({str(model_dir / "1")!r})
        serve = loaded.signatures["serving_default"]
        out = serve(features=tf.constant([[5.0, 3.4, 1.5, 0.2], [6.7, 3.0, 5.7, 2.1]]))
        print(json.dumps({{"inputs": list(serve.structured_input_signature[1]), "probabilities": out["probabilities"].shape.as_list(),
                           "classes": out["classes"].numpy().tolist()}}))
    """)
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["inputs"] == ["features"] and result["probabilities"] == [2, 3] and result["classes"] == [0, 2]


def test_a_failing_replica_fails_the_job_and_stops_the_others(kfgen, example):
    edit(example, "        command: [python, -m, trainer.train]", "        command: [python, -c, \"import sys, os, time; time.sleep(60) if os.environ['TF_CONFIG'].endswith('\\\"index\\\":0},\\\"environment\\\":\\\"cloud\\\"}') else sys.exit(7)\"]")
    run = kfgen("tfjob", "run-local", example, "--job", "iris", "--env", "dev", "--timeout", "60")
    assert run.code == 1
    assert "kfgen: worker-1 exited with 7; stopping the others" in run.err.splitlines()


def test_without_tensorflow_run_local_says_how_to_install_it(example):
    blocked = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "tensorflow":
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, Block())
        from kfgen.cli import main
        raise SystemExit(main(["tfjob", "run-local", {str(example)!r}, "--job", "iris"]))
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
