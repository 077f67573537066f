import numpy as np

from labkit.core import data
from labkit.exercises import check


def test_unanswered_gives_the_question_and_a_hint(capsys):
    assert check.answer("00.1", None) is False
    out = capsys.readouterr().out
    assert "not answered yet" in out and check.EXERCISES["00.1"].question in out


def test_wrong_type_is_a_hint_not_a_traceback(capsys):
    assert check.answer("00.1", "7368") is False
    assert "not yet: give a whole number" in capsys.readouterr().out


def test_numbers_of_any_numeric_type_are_accepted():
    positives = np.sum(data.load_reviews("en")["label"])  # a numpy integer
    for value in (positives, int(positives), float(positives), np.int32(positives)):
        assert check.answer("00.1", value), type(value)
    assert check.answer("00.1", True) is False  # a bool is not a count


def test_a_crashing_function_is_reported_with_its_error(capsys):
    assert check.answer("01.1", lambda t, y: 1 / 0) is False
    assert "your answer raised ZeroDivisionError" in capsys.readouterr().out


def test_unknown_exercise_lists_the_real_ones(capsys):
    assert check.answer("99.9", 1) is False
    assert "00.1" in capsys.readouterr().out
