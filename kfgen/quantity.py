"""Kubernetes resource quantities: parse, compare, and print in the API server's canonical form.

Canonical form matters for GitOps: the server stores `0.5` as `500m` and `3072Mi` as `3Gi`, and a
manifest that says otherwise looks out of sync forever.
"""

from __future__ import annotations

import re
from decimal import Decimal

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -3, "u": -2, "m": -1, "": 0, "k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
_PATTERN = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")


def parse_quantity(value: str | int | float) -> tuple[Decimal, bool]:
    """(value in base units, written with a binary suffix). ValueError when it is not a quantity."""
    text = str(value).strip()
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    number, suffix = Decimal(match.group(1)), match.group(2) or ""
    if suffix in _BINARY:
        return number * (Decimal(1024) ** _BINARY[suffix]), True
    if suffix in _DECIMAL:
        return number * (Decimal(1000) ** _DECIMAL[suffix]), False
    return number * (Decimal(10) ** int(suffix[1:])), False


def canonical_quantity(value: str | int | float) -> str:
    """The form the API server would store: the largest suffix that keeps an integer."""
    amount, binary = parse_quantity(value)
    if binary and amount == amount.to_integral_value():
        for suffix, power in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
            scaled = amount / (Decimal(1024) ** power)
            if scaled == scaled.to_integral_value() and scaled != 0:
                return f"{int(scaled)}{suffix}"
        return str(int(amount))
    for suffix, power in sorted(_DECIMAL.items(), key=lambda kv: -kv[1]):
        scaled = amount / (Decimal(1000) ** power)
        if scaled == scaled.to_integral_value() and (scaled != 0 or suffix == ""):
            return f"{int(scaled)}{suffix}"
    # below a nanounit: the server rounds up to the next nano
    return f"{int((amount * Decimal(10) ** 9).to_integral_value(rounding='ROUND_CEILING'))}n"


def format_mebibytes(amount: Decimal) -> str:
    """A byte count as whole Mi (rounded down), for size limits derived from other quantities."""
    return canonical_quantity(f"{int(amount // (1024 * 1024))}Mi")
