"""kfgen lint on planted faults, waivers from the stack, and checkov on every example's render."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import EXAMPLES, SHARED, copy_stack, edit

from kfgen.render import render
from kfgen.yamlio import dump, load_all

pytestmark = pytest.mark.kustomize  # end to end: renders with the real kustomize


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lint")
    return render(copy_stack("example", tmp), tmp / "out").out


@pytest.fixture
def faulty(clean, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(clean, out)

    def plant(path: str, change) -> None:
        file = out / path
        (obj,) = load_all(file.read_text())
        change(obj)
        file.write_text(dump(obj))

    return out, plant


def test_a_clean_render_lints_clean(kfgen, clean):
    run = kfgen("lint", clean)
    assert (run.code, run.out, run.err) == (0, "", f"{clean}: 0 violations\n")


def test_planted_faults_are_each_named_with_file_and_field(kfgen, faulty):
    out, plant = faulty
    deployment = "rendered/prod/argo-workflows/argo/deployment-argo-server.yaml"
    tfjob = "rendered/prod/training-operator/ml/tfjob-iris.yaml"
    plant(deployment, lambda o: o["spec"].update(replicas="two"))
    plant(tfjob, lambda o: o["spec"]["runPolicy"].update(cleanPodPolicyy="All"))
    plant(tfjob, lambda o: o["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0].update(image="ghcr.io/acme/iris-trainer:latest"))
    plant("rendered/prod/seldon-core/ml/seldondeployment-iris.yaml",
          lambda o: o["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]["resources"]["requests"].update({"nvidia.com/gpu": "2"}))
    run = kfgen("lint", out)
    assert run.code == 1
    assert run.out.splitlines() == [
        f"{out}/{deployment}: spec.replicas: [SCHEMA] 'two' is not of type 'integer', 'null'",
        f"{out}/rendered/prod/seldon-core/ml/seldondeployment-iris.yaml: spec.predictors[0].componentSpecs[0].spec.containers[0].resources: "
        "[KFG003] nvidia.com/gpu: requests 2 and limits 1 must be equal, in limits",
        f"{out}/{tfjob}: spec.runPolicy: [SCHEMA] Additional properties are not allowed ('cleanPodPolicyy' was unexpected)",
        f"{out}/{tfjob}: spec.tfReplicaSpecs.Worker.template.spec.containers[0].image: [KFG001] 'ghcr.io/acme/iris-trainer:latest' uses latest",
    ]
    assert run.err.splitlines() == [f"{out}: 4 violations", "  KFG001: images are pinned to a version or digest (no latest, no untagged)",
                                     "  KFG003: extended resources (GPUs, TPUs) request exactly what they limit"]
    data = json.loads(kfgen("lint", out, "--format", "json").out)
    assert data["count"] == 4 and data["violations"][0] == {"file": deployment, "field": "spec.replicas", "policy": "SCHEMA",
                                                             "message": "'two' is not of type 'integer', 'null'"}


def test_upstream_crds_catch_unknown_fields_inside_pod_templates(kfgen, faulty):
    crds = SHARED / "upstream-crds" / "training-operator"
    if not crds.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{crds} is missing: CI must have ../shared beside the project")
        pytest.skip("../shared is not beside the project")
    out, plant = faulty
    tfjob = "rendered/prod/training-operator/ml/tfjob-iris.yaml"
    plant(tfjob, lambda o: o["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0].update(imagePullPolice="Always"))
    assert kfgen("lint", out).code == 0  # kfgen's own CRD keeps unknown fields below pod templates, as the API server will
    run = kfgen("lint", out, "--crds", crds)
    assert (run.code, run.out) == (1, f"{out}/{tfjob}: spec.tfReplicaSpecs.Worker.template.spec.containers[0]: [SCHEMA] "
                                      "Additional properties are not allowed ('imagePullPolice' was unexpected)\n")


def test_unreadable_trees_exit_2(kfgen, tmp_path, faulty):
    run = kfgen("lint", tmp_path / "nothing")
    assert (run.code, run.err) == (2, f"{tmp_path / 'nothing'}: not a kfgen render (no readable provenance.json)\n")
    out, _ = faulty
    (out / "rendered/prod/broken.yaml").write_text("a: [1,\n")
    run = kfgen("lint", out)
    assert run.code == 2 and run.err.startswith("rendered/prod/broken.yaml: not valid YAML")


def test_a_waiver_in_the_stack_is_explicit_and_lands_on_the_object(kfgen, example, tmp_path):
    extra = example.parent / "extra"
    extra.mkdir()
    (extra / "debug.yaml").write_text(dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "node-debug", "namespace": "kubeflow"},
        "spec": {"hostNetwork": True, "containers": [{"name": "debug", "image": "busybox:1.36",
                                                      "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}},
                                                      "securityContext": {"runAsNonRoot": True, "runAsUser": 1000}}]}}))
    edit(example, "      namespace: kubeflow\n", "      namespace: kubeflow\n      extraResources: [extra/debug.yaml]\n")
    run = kfgen("render", example, "--out", tmp_path / "out")
    assert run.code == 1
    assert run.err.splitlines()[0] == "rendered/dev/training-operator/kubeflow/pod-node-debug.yaml: spec.hostNetwork: [KFG004] hostNetwork gives the pod the node's namespaces"
    assert run.err.splitlines()[-1] == "render stopped: 2 violations; the output folder is unchanged"
    assert not (tmp_path / "out").exists()
    edit(example, "  workloads:\n    namespace: ml\n", "  waivers:\n    - policy: KFG004\n      kind: Pod\n      name: node-debug\n"
                  "      namespace: kubeflow\n      reason: the on-call debugging pod needs the node's network\n"
                  "  workloads:\n    namespace: ml\n")
    assert kfgen("render", example, "--out", tmp_path / "out").code == 0
    (pod,) = load_all((tmp_path / "out/rendered/prod/training-operator/kubeflow/pod-node-debug.yaml").read_text())
    assert pod["metadata"]["annotations"]["waivers.kfgen.io/KFG004"] == "the on-call debugging pod needs the node's network"


def test_a_waiver_that_names_nothing_is_an_input_error(kfgen, example):
    edit(example, "  workloads:\n    namespace: ml\n", "  waivers:\n    - {policy: CKV_K8S_43, kind: Deployment, name: hubb, namespace: jupyterhub, "
                  "reason: pinned by tag on purpose}\n  workloads:\n    namespace: ml\n")
    line = example.read_text().splitlines().index("    - {policy: CKV_K8S_43, kind: Deployment, name: hubb, namespace: jupyterhub, reason: pinned by tag on purpose}") + 1
    expected = f"{example}:{line}:7: spec.waivers: the CKV_K8S_43 waiver names no rendered object (Deployment jupyterhub/hubb)\n"
    for command in ("validate", "render"):  # one validation stage: validate finds what render would refuse
        run = kfgen(command, example)
        assert (run.code, run.err) == (2, expected), command


@pytest.mark.parametrize("name", [p.name for p in EXAMPLES])
def test_checkov_finds_nothing_that_is_not_waived_with_a_reason(tmp_path, name):
    out = render(copy_stack(name, tmp_path), tmp_path / "out").out
    checkov = shutil.which("checkov") or os.path.join(os.path.dirname(sys.executable), "checkov")
    done = subprocess.run([checkov, "-d", str((out / "rendered").resolve()), "--framework", "kubernetes", "--compact",
                           "--skip-download", "-o", "json"], capture_output=True, text=True, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    report = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [(r["check_id"], r["resource"]) for r in report["results"]["failed_checks"]]
    assert failed == [] and report["summary"]["parsing_errors"] == 0
    assert report["summary"]["resource_count"] > 100
    for skipped in report["results"]["skipped_checks"]:
        assert len(skipped["check_result"]["suppress_comment"]) > 20, skipped["check_id"]  # a written reason, not a bare skip


def test_a_tfjob_without_a_tensorflow_container_is_a_violation(kfgen, faulty):
    out, plant = faulty
    tfjob = "rendered/prod/training-operator/ml/tfjob-iris.yaml"
    plant(tfjob, lambda o: o["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0].update(name="trainer"))
    run = kfgen("lint", out)
    assert run.code == 1
    # training-operator v1.8.1 pkg/webhooks/tensorflow/tfjob_webhook.go: "must have at least one container with name tensorflow"
    assert run.out.splitlines() == [f"{out}/{tfjob}: spec.tfReplicaSpecs.Worker.template.spec.containers: [KFG008] "
                                    "no container named 'tensorflow' (has: 'trainer'); the training operator's webhook rejects the TFJob"]
    assert run.err.splitlines()[-1] == "  KFG008: every TFJob replica has a container named tensorflow (the training operator's webhook requires it)"


def test_the_compiled_validator_answers_as_jsonschema_does(clean):
    """jsonschema-rs decides which objects jsonschema walks for messages: on every object of a render, and
    on each of them broken three ways (a wrong type, an unknown key, a missing required key, at seeded
    random places), both say valid or invalid alike."""
    import random

    from kfgen.lint import _k8s_validator, crd_validators

    rng = random.Random(15)
    objects = [o for f in sorted((clean / "rendered").rglob("*.yaml")) for o in load_all(f.read_text())]
    validators = crd_validators([o for o in objects if o["kind"] == "CustomResourceDefinition"])
    checked = 0
    for obj in objects:
        group, _, version = obj["apiVersion"].rpartition("/")
        schema = validators.get((group, version, obj["kind"])) or _k8s_validator("1.31", obj["apiVersion"], obj["kind"])
        if schema is None:
            continue
        assert schema.fast is not None, obj["kind"]
        for variant in [obj, *_broken(obj, rng)]:
            assert schema.fast.is_valid(variant) == (not list(schema.slow.iter_errors(variant))), (obj["kind"], variant)
            checked += 1
    assert checked > 400


def _broken(obj: dict, rng) -> list[dict]:
    import copy

    mappings = []

    def walk(node, depth=0):
        if isinstance(node, dict):
            mappings.append(node)
            for value in node.values():
                walk(value, depth + 1)
        elif isinstance(node, list):
            for value in node:
                walk(value, depth + 1)

    variants = []
    for how in ("type", "unknown", "missing"):
        broken = copy.deepcopy(obj)
        mappings.clear()
        walk(broken)
        target = rng.choice([m for m in mappings if m] or mappings)
        key = rng.choice(sorted(target)) if target else None
        if how == "type" and key:
            target[key] = rng.choice([[1], {"x": 1}, 3.5, True]) if isinstance(target[key], str) else "text"
        elif how == "unknown":
            target["kfgenUnknownKey"] = 1
        elif key:
            del target[key]
        variants.append(broken)
    return variants
