"""Switches that open access: each is refused unless the stack accepts its risk in writing.

A component package says which risks an environment takes (`ComponentPackage.risks`); the stack
accepts them in `spec.acceptedRisks`, each with a reason and optionally only for some
environments. Validation refuses a risk taken and not accepted (at the line of the switch) and an
acceptance that nothing takes (so the list stays true). The reason is written onto the objects
the risk concerns, as the annotation `risks.kfgen.io/<risk>`, so a reviewer sees it in the diff.
"""

from __future__ import annotations

from dataclasses import dataclass

RISKS = {
    "hub-dummy-login": "the hub's dummy login lets in any user name with any password",
    "hub-open-login": "allowAll lets in every account of the login provider",
    "argo-server-auth-mode-server": "in `server` auth mode every caller of the Argo server acts with its ServiceAccount",
    "plain-http": "an externally exposed gateway without TLS sends logins and data in clear",
    "public-routes": "routes on an externally exposed gateway without authentication are open to the internet",
}


@dataclass(frozen=True)
class TakenRisk:
    """A risk an environment takes, and where the switch that takes it is written (a path under spec)."""

    risk: str
    where: tuple


def refusal(risk: str, env: str) -> str:
    """The message for a risk taken and not accepted."""
    return (f"{RISKS[risk]}: refused unless spec.acceptedRisks accepts {risk!r} for environment {env!r}, "
            "with the reason it is acceptable there")
