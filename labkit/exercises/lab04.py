"""Tools: exercises of Lab 04 (augmentation): a variant's strength, the guarded deletion, polarity.
Each check computes its truth when called; see labkit.exercises.grading."""
from __future__ import annotations

from labkit.core import lexicon

from .grading import Exercise, check_cases, near, number, require


def _strength_of(fn):
    check_cases(fn, "strength_of", [(("a b c d", "a c d"), 0.25), (("a b", "b a"), 0.0),
                               (("a a b", "a b"), 1 / 3), (("not good", "great"), 1.0),
                               (("good film", "good film good"), 0.0)],
                "count words with collections.Counter; a word the variant repeats does not make up "
                "for one it lost elsewhere", near)


def _guarded_delete(fn):
    require(callable(fn), "pass the function itself, e.g. check.answer('04.2', guarded_delete)")
    texts = ["it is not a bad film at all", "never dull, but the plot is thin",
             "a warm and funny story", "the cast was not good and the script was worse"]
    for text in texts:
        words = text.split()
        keep = lexicon.protected_positions(words)
        require(fn(text, 0.0, 0) == text, "with p = 0 nothing is deleted")
        require(fn(text, 1.0, 0).split() == [w for i, w in enumerate(words) if i in keep],
                "with p = 1 every word outside lexicon.protected_positions(words) goes, and "
                "every protected word stays, in order")
        for seed in range(20):
            out = fn(text, 0.5, seed).split()
            it = iter(words)
            require(all(w in it for w in out), "keep the words that stay in their original order")
            require(all(words[i] in out for i in keep), "a protected word was deleted")


def _opposite_candidates(value):
    th = lexicon.Thesaurus.load()
    truth = sum(th.polarity.get(c, 0) * th.polarity.get(w, 0) < 0
                for w in ("good", "bad", "funny", "boring", "great", "awful")
                for c in th.synonyms(w, same_polarity=False))
    number(value, truth, 0, "for each candidate, compare th.polarity of the candidate with the "
           "word's: opposite means one is +1 and the other -1", "a whole number")


EXERCISES = {
    "04.1": Exercise("Write strength_of(original, variant): the share of the original's words "
                     "missing from the variant.", _strength_of, "words are a multiset"),
    "04.2": Exercise("Write guarded_delete(text, p, seed): EDA's deletion that never deletes a "
                     "protected word.", _guarded_delete, "lexicon.protected_positions"),
    "04.3": Exercise("With the polarity check off, how many synonym candidates of good, bad, "
                     "funny, boring, great and awful have the opposite polarity?",
                     _opposite_candidates, "Thesaurus.load() has both synonyms() and polarity"),
}
