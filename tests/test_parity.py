"""Parity with upstream: each component's install, per supported release, against upstream's own install
of that release (../shared/upstream-installs), object by object and field by field where it matters.
Every difference must be one the component declares, with its reason (kfgen/components/<name>/deviations.py),
and every declared deviation must still be a difference somewhere (else it is stale: remove it)."""

from __future__ import annotations

import copy
import os

import pytest
from conftest import SHARED
from in_memory import install_of
from parity import compare, covering, upstream_objects

from kfgen.components import PACKAGES

KUBERNETES = "1.31"  # the stack's default kubernetesVersion (charts check their kubeVersion against it)
RELEASES = [(name, r.version) for name, p in PACKAGES.items() for r in p.releases]


@pytest.fixture(scope="module")
def shared():
    if not (SHARED / "upstream-installs").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED}/upstream-installs is missing: CI must have ../shared beside the project")
        pytest.skip("../shared/upstream-installs is not beside the project")
    return SHARED


def differences(shared, name: str, version: str):
    package = PACKAGES[name]
    upstream = upstream_objects(shared, package, package.release(version), KUBERNETES)
    return compare(upstream, install_of(name, version), package.deviations)


@pytest.mark.parametrize("name, version", RELEASES)
def test_install_matches_upstream_but_for_declared_deviations(shared, name, version):
    declared = [d for d in PACKAGES[name].deviations if d.holds_for(version)]
    undeclared = [str(d) for d in differences(shared, name, version) if covering(d, declared) is None]
    assert undeclared == [], (f"{name} {version} differs from upstream where kfgen/components/{name.replace('-', '_')}/deviations.py "
                              "declares nothing: converge, or declare the deviation with its reason:\n  " + "\n  ".join(undeclared))


@pytest.mark.parametrize("name", list(PACKAGES))
def test_every_declared_deviation_is_a_difference(shared, name):
    package = PACKAGES[name]
    used = set()
    for release in package.releases:
        declared = [d for d in package.deviations if d.holds_for(release.version)]
        for difference in differences(shared, name, release.version):
            used.add(covering(difference, declared))
    stale = [f"{d.kind}/{d.name} {d.field}" for d in package.deviations if d not in used]
    assert stale == [], f"{name}: declared deviations no supported release has (remove them): {stale}"


def test_every_deviation_has_a_reason():
    for package in PACKAGES.values():
        for d in package.deviations:
            assert len(d.reason.split()) >= 4, f"{package.name}: {d.kind}/{d.name} {d.field}: say why"


def test_an_undeclared_difference_is_found(shared):
    """The comparison can fail: upstream's Argo controller with a changed liveness probe and one more flag."""
    package = PACKAGES["argo-workflows"]
    release = package.releases[0]
    upstream = upstream_objects(shared, package, release, KUBERNETES)
    ours = copy.deepcopy(install_of("argo-workflows", release.version))
    controller = next(o for o in ours if o["kind"] == "Deployment" and o["metadata"]["name"] == "workflow-controller")
    main = controller["spec"]["template"]["spec"]["containers"][0]
    main["livenessProbe"]["timeoutSeconds"] = 1
    main["ports"].append({"containerPort": 7070, "name": "extra", "protocol": "TCP"})
    found = [str(d) for d in compare(upstream, ours, package.deviations) if covering(d, package.deviations) is None]
    where = "Deployment/workflow-controller: spec.template.spec.containers[workflow-controller]"
    assert found == [f"{where}.livenessProbe.timeoutSeconds: upstream 30, kfgen 1",
                     f"{where}.ports[7070]: upstream <absent>, kfgen present"]
