"""Expected failures, as values. The CLI edge maps each class to one line and an exit code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

EXIT_OK = 0
EXIT_FINDINGS = 1  # a check found differences or violations
EXIT_INPUT = 2  # bad input
EXIT_TOOL = 3  # an outside tool failed or is missing


@dataclass(frozen=True, order=True)
class Problem:
    """One located problem in an input file: prints as `file:line:col: path: message`."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.column}: {where}{self.message}"


class KfgenError(Exception):
    """Base of every expected error; `exit_code` is the contract with the shell."""

    exit_code = EXIT_INPUT

    def lines(self) -> list[str]:
        return [str(self)]


class InputError(KfgenError):
    """Bad input: one or more located problems, all reported at once."""

    exit_code = EXIT_INPUT

    def __init__(self, problems: Sequence[Problem | str] | Problem | str):
        self.problems: list[Problem | str] = [problems] if isinstance(problems, (Problem, str)) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        if all(isinstance(p, Problem) for p in self.problems):
            return [str(p) for p in sorted(set(self.problems))]
        return [str(p) for p in self.problems]


class ToolError(KfgenError):
    """An outside tool (kustomize, git) is missing, too old or failed."""

    exit_code = EXIT_TOOL


class MissingExtraError(KfgenError):
    """An optional dependency is not installed (e.g. tensorflow for the tfjob commands)."""

    exit_code = EXIT_TOOL
