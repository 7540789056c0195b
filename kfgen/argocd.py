"""Argo CD objects under argocd/ (filled in by the GitOps issue)."""

from __future__ import annotations

from kfgen.model import Stack


def argocd_objects(stack: Stack) -> dict[str, object]:
    return {}
