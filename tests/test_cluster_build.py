"""The cluster tier's build cache (tests/cluster/build.py): a hub venv is reused only while its stamp
names what it was built from, so that adding a package the rendered hub configuration needs (the idle
culler) builds the venv again. No build runs here."""

from __future__ import annotations

import dataclasses

from cluster import build


def test_a_hub_build_is_reused_only_while_its_packages_are_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("KFGEN_CLUSTER_CACHE", str(tmp_path))
    hub = build.PROGRAMS["jupyterhub"]
    folder = hub.folder(hub.version)
    folder.mkdir(parents=True)
    (folder / ".built").write_text("")  # a stamp from before stamps held the package list
    assert build.built(hub) is None
    (folder / ".built").write_text(build.stamp(hub))
    assert build.built(hub) == folder
    more = dataclasses.replace(hub, packages=(*hub.packages, "jupyterhub-nativeauthenticator==1.3.0"))
    assert build.built(more) is None


def test_the_hub_venv_has_what_the_rendered_configuration_runs():
    """jupyterhub_config.py starts the idle culler with `python3 -m jupyterhub_idle_culler`: the
    k8s-hub image has it, pinned in its requirements; so must the venv that stands in for the image."""
    packages = {p.split("==")[0] for p in build.PROGRAMS["jupyterhub"].packages}
    assert {"jupyterhub", "jupyterhub-kubespawner", "oauthenticator", "jupyterhub-idle-culler"} <= packages
    pins = {line.split("==")[0] for line in build.PROGRAMS["jupyterhub"].constraints.read_text().splitlines() if "==" in line}
    assert packages <= pins


def test_a_go_build_stamp_stays_empty():
    assert build.stamp(build.PROGRAMS["etcd"]) == ""
