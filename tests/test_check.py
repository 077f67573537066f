from labkit import check


def test_unanswered_gives_a_hint(capsys):
    assert check.answer("00.1", None) is False
    assert "not answered yet" in capsys.readouterr().out


def test_wrong_answer_gives_a_hint_not_a_traceback(capsys):
    assert check.answer("00.1", 3) is False
    assert "not yet" in capsys.readouterr().out
    assert check.answer("00.1", "7368") is False  # wrong type is a hint too


def test_right_answer():
    from labkit import data
    assert check.answer("00.1", int(sum(data.load_reviews("en")["label"])))


def test_function_exercises_report_crashes(capsys):
    assert check.answer("01.2", lambda t, y: 1 / 0) is False
    assert "ZeroDivisionError" in capsys.readouterr().out
    assert check.answer("01.2", lambda t, y: 0) is False

    def contradiction_rate(texts, labels):
        from labkit.clean import find_contradictions
        return sum(map(len, find_contradictions(texts, labels).values())) / len(texts)

    assert check.answer("01.2", contradiction_rate) is True


def test_unknown_exercise(capsys):
    assert check.answer("99.9", 1) is False
    assert "00.1" in capsys.readouterr().out


def test_word_spans_exercise():
    def word_spans(tokens):
        spans = []
        for i, t in enumerate(tokens):
            if t.startswith("##") and spans:
                spans[-1].append(i)
            else:
                spans.append([i])
        return spans

    assert check.answer("02.1", word_spans) is True
    assert check.answer("02.1", lambda toks: [[i] for i in range(len(toks))]) is False
