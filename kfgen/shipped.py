"""Where the files kfgen ships (schemas, built-in profiles) are, installed or in a checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def shipped_dir(name: str) -> Path:
    """`schemas` or `overlays`: inside the wheel under kfgen/_data, else the checkout's top level."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"kfgen is installed without its {name}/ folder")


def template_path(name: str) -> Path:
    """A file under kfgen/templates/."""
    return _PACKAGE / "templates" / name
