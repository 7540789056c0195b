"""Registry mirrors: where the cluster pulls each image from.

Two settings decide it. A component's `imageRegistry` replaces the registry host of that
component's own images (its install, and what its operator starts: Seldon's executor, storage
initializer and model servers, Argo's executor). Everything else follows the stack's
`spec.images`: a `rewrites` entry for the image's registry (or a longer prefix of it) replaces
that prefix, else `mirror` is put in front of the full reference (registry host included, so two
registries never collide). Docker Hub's short names are full references first (`python:3.11` is
`docker.io/library/python:3.11`). An image already under a mirror is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

DOCKER_HUB = "docker.io"


def full_reference(image: str) -> str:
    """`python:3.11` -> `docker.io/library/python:3.11`; references with a registry host are unchanged."""
    first, slash, rest = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"{DOCKER_HUB}/{image}" if slash else f"{DOCKER_HUB}/library/{image}"


def repository(image: str) -> str:
    """The image's name without its tag or digest (what kustomize's `images` matches)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: name.rindex(":")]
    return name


@dataclass(frozen=True)
class Mirror:
    """The rewrite rules that apply to one set of images (see the module docstring)."""

    registry: str | None = None  # a component's imageRegistry: wins over the stack's rules
    rewrites: tuple[tuple[str, str], ...] = ()  # (source prefix, target), the longest source first
    mirror: str | None = None

    @classmethod
    def of_stack(cls, images: dict | None) -> Mirror:
        """The stack's rules from spec.images."""
        images = images or {}
        rewrites = sorted(((source.rstrip("/"), target.rstrip("/")) for source, target in (images.get("rewrites") or {}).items()),
                          key=lambda r: (-len(r[0]), r[0]))
        return cls(None, tuple(rewrites), (images.get("mirror") or "").rstrip("/") or None)

    def for_component(self, registry: str | None) -> Mirror:
        """The rules of a component's own images: its imageRegistry when it has one."""
        return replace(self, registry=registry.rstrip("/")) if registry else self

    @property
    def active(self) -> bool:
        return bool(self.registry or self.rewrites or self.mirror)

    def rewrite(self, image: str) -> str:
        """Where the cluster pulls `image` from."""
        if self.registry:
            first, slash, rest = image.partition("/")
            if slash and ("." in first or ":" in first or first == "localhost"):
                image = rest
            return f"{self.registry}/{image}"
        reference = full_reference(image)
        targets = [t for _, t in self.rewrites] + ([self.mirror] if self.mirror else [])
        if any(reference.startswith(t + "/") for t in targets):
            return image
        for source, target in self.rewrites:
            if reference.startswith(source + "/"):
                return target + reference[len(source):]
        return f"{self.mirror}/{reference}" if self.mirror else image
