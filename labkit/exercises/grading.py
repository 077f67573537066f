"""Tools: how an exercise is graded. ``require(ok, hint)`` raises `Wrong` with the hint the
learner sees; ``number`` checks a numeric answer within a tolerance, ``check_cases`` calls a
learner's function on worked cases. Explicit comparisons, never ``assert``: ``python -O``
strips asserts, and a check must still tell a right answer from a wrong one.
Leaves out: the exercises themselves (one file per lab beside this one).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Exercise:
    question: str
    check: Callable  # value -> None, raising Wrong(hint) when wrong
    hint: str


class Wrong(Exception):
    """An answer that is not right; its message is the hint the learner sees."""


def require(ok, hint: str) -> None:
    """Raise Wrong(hint) unless ``ok`` is exactly True (an explicit check: ``python -O``
    strips ``assert``; a numpy bool counts, an array or a truthy number does not)."""
    if not (ok is True or (isinstance(ok, np.bool_) and bool(ok))):
        raise Wrong(hint)


def scalar(value) -> float | None:
    """``value`` as a float when it is one real number (Python, numpy, or a 0-d array or
    tensor), else None; a bool is not a number here."""
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "dtype") and np.ndim(value) == 0 and "bool" not in str(value.dtype):
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    return None


def number(value, truth: float, tol: float, hint: str, what: str = "a number") -> None:
    x = scalar(value)
    require(x is not None, f"give {what}")
    require(math.isfinite(x) and abs(x - truth) <= tol, hint)


def check_cases(fn, name: str, worked, hint: str, close=None) -> None:
    """Call ``fn`` on each (args, expected) case; ``close(got, want)`` compares (default ==)."""
    require(callable(fn), f"pass the function itself, e.g. check.answer(..., {name})")
    for args, want in worked:
        got = fn(*args)
        try:
            ok = close(got, want) if close else got == want
        except Exception:  # an answer of the wrong kind (a number for a list) is wrong, not a crash
            ok = False
        shown = ", ".join(repr(a) if len(repr(a)) < 60 else "..." for a in args)
        require(ok, f"{name}({shown}) returned {got!r}, expected {want!r}: {hint}")


def near(got, want) -> bool:
    """One real number within 1e-9 of ``want``."""
    x = scalar(got)
    return x is not None and abs(x - want) < 1e-9
