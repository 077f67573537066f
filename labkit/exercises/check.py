"""Tools: exercise checks. ``check.answer("01.2", your_answer)`` says right, or gives a hint.

A wrong or missing answer never raises (a notebook with unanswered exercises still runs top
to bottom); `answer` returns True or False so a solutions notebook can assert it. The checks
live in `labkit.exercises`, one file per lab; they grade with explicit comparisons, never
`assert`, so they hold under ``python -O`` too. Each truth is computed when you answer, from
the real data or a reference implementation, never stored; numbers of any numeric type are
accepted. Hints point at where to look, not at the answer.
Leaves out: grading and scores. The worked answers are in notebooks/solutions/.
"""
from __future__ import annotations

from labkit.exercises import EXERCISES, Wrong

__all__ = ["EXERCISES", "answer"]


def answer(exercise: str, value) -> bool:
    """Check an answer; prints a verdict or a hint and returns whether it is right."""
    if exercise not in EXERCISES:
        print(f"No exercise {exercise!r}; the exercises are {', '.join(EXERCISES)}.")
        return False
    ex = EXERCISES[exercise]
    if value is None or value is Ellipsis:
        print(f"[{exercise}] not answered yet. {ex.question} Hint: {ex.hint}.")
        return False
    try:
        ex.check(value)
    except Wrong as e:
        print(f"[{exercise}] not yet: {e or ex.hint}.")
        return False
    except Exception as e:  # the learner's function crashed: show why, not a traceback
        print(f"[{exercise}] your answer raised {type(e).__name__}: {e}. Hint: {ex.hint}.")
        return False
    print(f"[{exercise}] correct.")
    return True
