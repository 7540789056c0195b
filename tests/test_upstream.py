"""What kfgen renders, for every example and environment, against the real upstream schemas:
built-in kinds strictly against Kubernetes' JSON schemas for spec.kubernetesVersion, custom
resources strictly against the upstream CRDs in ../shared/upstream-crds (with the shared checker)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import EXAMPLES, SHARED, copy_stack

from kfgen.render import render

pytestmark = pytest.mark.kustomize  # end to end: renders with the real kustomize

CHECKER = SHARED / "tools" / "upstream_check.py"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    if not CHECKER.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CHECKER} is missing: CI must have ../shared beside the project")
        pytest.skip("../shared (upstream CRDs) is not beside the project")
    outs = {}
    for example in EXAMPLES:
        tmp = tmp_path_factory.mktemp(example.name)
        result = render(copy_stack(example.name, tmp), tmp / "out")
        outs[example.name] = (result.out, result.stack.kubernetes_version)
    return outs


@pytest.mark.parametrize("name", [p.name for p in EXAMPLES])
def test_every_object_is_valid_upstream(rendered, name):
    out, k8s = rendered[name]
    for env in sorted((out / "rendered").iterdir()):
        done = subprocess.run([sys.executable, str(CHECKER), str(env), "--k8s", k8s], capture_output=True, text=True)
        summary = done.stdout.strip().splitlines()[-1]
        assert done.returncode == 0, f"{name}/{env.name}:\n{done.stdout}{done.stderr}"
        assert summary.endswith("invalid 0 unknown 0"), summary
