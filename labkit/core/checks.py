"""Core: the checks every public entry point runs first on what it is given, so that bad input
is refused up front with a message that names the argument, the problem and the fix, instead
of failing later inside torch, numpy or Opacus, or being silently coerced.

- `labels`: class numbers as an int64 array: one per row, whole numbers of any integer dtype,
  each in 0..classes-1 (``classes`` None: 2, the reviews' classes), -1 ("unlabelled") only
  where the loss can take it. The class count is what the data or model declares, never the
  largest label: an out-of-range label is refused with "pass classes=K".
- `number`: a numeric setting (Python or numpy number; never a bool, string or NaN) inside
  its range; `temperature`, the one that divides logits (> 0); `schedule`, a training run's
  learning rate, steps, epochs and batch size.
- `probabilities`: rows of class probabilities, refused when they look like logits.
- `finite`: an array of scores with no NaN or infinity.
- `column`: a `datasets` column (``ds["text"]``) read in one piece, before anything iterates it.

Example: ``labels([1, 0, 2], classes=2)`` -> ValueError "labels[2] = 2 is outside 0..1 ...
pass classes=3 ...". Leaves out: text checks (`labkit.core.text.check_texts`) and file checks
(each reader names its own file).
"""
from __future__ import annotations

import sys

import numpy as np

ANY = 2 ** 31 - 1  # classes=ANY: check the labels' form only (a helper whose caller checks the range)


def column(values):
    """``values`` read from Arrow in one piece when it is a `datasets` column (``ds["text"]``,
    ``ds["label"]``: a list, or an array where the dataset has a numpy format); anything else
    as it is. Since datasets 4 a column is a lazy view: a loop over it, ``list()`` or
    ``np.asarray()`` reads it one row at a time (tens of microseconds a row: seconds for a lab's
    splits, each time a function is given one). Datasets 3 has no such view."""
    module = sys.modules.get("datasets.arrow_dataset")  # not imported: not a column
    return values[:] if isinstance(values, getattr(module, "Column", ())) else values


def classes_of(classes, name: str = "classes") -> int:
    """``classes`` (None: 2) as an int of at least 2."""
    return 2 if classes is None else number(classes, name, low=2, low_open=False, integer=True,
                                            fix="the number of classes, e.g. 3 for negative/neutral/positive")


def labels(values, n: int | None = None, classes: int | None = None, unlabelled: bool = False,
           name: str = "labels", why: str = "this loss", fix: str | None = None) -> np.ndarray:
    """``values`` as an int64 array of class numbers after checking that there are ``n`` of
    them (when given), that they are whole numbers of an integer dtype, and that each lies in
    0..classes-1 (or is -1, "unlabelled", when ``unlabelled``). ``why`` names what cannot
    take -1 in the message; ``fix`` replaces "pass classes=K" where the class count comes from
    a model, not an argument."""
    k = classes_of(classes)
    try:
        arr = np.asarray(column(values))
    except ValueError as e:  # ragged lists
        raise ValueError(f"{name} must be a flat list of class numbers ({e})") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a flat (1-D) list of class numbers, one per row; got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries for {n} rows: give exactly one label per row")
    if len(arr) == 0:
        raise ValueError(f"{name} is empty: give one class number per row")
    if arr.dtype == bool:
        raise ValueError(f"{name} are True/False: pass class numbers, e.g. np.asarray({name}, dtype=int)")
    if arr.dtype.kind == "O" and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr):
        arr = arr.astype(np.int64)  # Python ints in an object array (a pandas column, a list of mixed origin)
    if arr.dtype.kind in "OUS":
        first = next((v for v in arr.tolist() if not isinstance(v, (int, np.integer)) or isinstance(v, bool)), arr[0])
        raise ValueError(f"{name} hold {type(first).__name__} values such as {first!r}: labels are class numbers "
                         "0..K-1; map each class name to its number first (a Dataset's "
                         "ds.features['label'].str2int, or load the file with labkit.core.data.from_csv)")
    if arr.dtype.kind == "f":
        nan = np.flatnonzero(np.isnan(arr))
        if nan.size:
            raise ValueError(f"{name}[{nan[0]}] is NaN (a missing label; {nan.size} in all): drop those rows, or "
                             "load the file with labkit.core.data.from_csv, which reports them")
        raise ValueError(f"{name} are floats (dtype {arr.dtype}, e.g. {arr[0]!r}): labels are whole class numbers; "
                         f"if every value is whole, pass np.asarray({name}).astype(int)")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be class numbers (integers); got dtype {arr.dtype}")
    low = -1 if unlabelled else 0
    bad = np.flatnonzero((arr < low) | (arr >= k))
    if bad.size:
        i, v = int(bad[0]), int(arr[bad[0]])
        if v == -1:
            raise ValueError(f"{name}[{i}] is -1 (unlabelled; {bad.size} such rows): {why} needs a label for "
                             f"every row. Keep the labelled rows only ({name} >= 0); to train on unlabelled "
                             "rows, distillation (labkit.core.kd) is the loss that learns from them")
        if k == ANY:
            raise ValueError(f"{name}[{i}] = {v} is negative ({bad.size} such rows): class numbers start at 0")
        more = fix or "If there are more classes, pass classes=K (K = how many)"
        raise ValueError(f"{name}[{i}] = {v} is outside 0..{k - 1} ({bad.size} such rows): with {k} classes a "
                         f"label is 0..{k - 1}. {more}; if the ids start at 1, subtract 1")
    return arr.astype(np.int64)


def number(value, name: str, *, low=None, high=None, low_open: bool = True, high_open: bool = False,
           integer: bool = False, fix: str = ""):
    """``value`` (a Python or numpy number: never a bool, a string or NaN) as an int or a
    float, after checking it lies in the range: above ``low`` (or at it, unless ``low_open``)
    and below ``high`` (or at it, unless ``high_open``). ``fix`` says what the value means."""
    if isinstance(value, np.ndarray) and value.ndim == 0:  # np.array(0.95): a number in an array
        value = value[()]
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    what = "a whole number" if integer else "a number"
    hint = f" ({fix})" if fix else ""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kinds):
        raise ValueError(f"{name}={value!r}: it must be {what}{hint}")
    v = int(value) if integer else float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name}={value!r}: it must be a finite number{hint}")
    below = low is not None and (v <= low if low_open else v < low)
    above = high is not None and (v >= high if high_open else v > high)
    if below or above:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        raise ValueError(f"{name}={value!r}: it must be {' and '.join(p for p in (lo, hi) if p)}{hint}")
    return v


def schedule(lr, steps=None, epochs=None, batch_size=None) -> None:
    """The settings of a training run, checked where it enters: ``lr`` > 0; ``steps``,
    ``epochs`` and ``batch_size`` whole numbers >= 1 where given (None: not given)."""
    number(lr, "lr", low=0, fix="the learning rate, e.g. 5e-5 to fine-tune MiniLM, 1e-2 for a small head")
    for value, name, what in ((steps, "steps", "optimizer steps"), (epochs, "epochs", "passes over the data"),
                              (batch_size, "batch_size", "rows per step")):
        if value is not None:
            number(value, name, low=1, low_open=False, integer=True, fix=what)


def temperature(value, name: str = "temperature") -> float:
    """``value`` as a float, refused unless a finite number > 0: a temperature divides logits
    (0 gives NaN probabilities, a negative one inverts every prediction)."""
    return number(value, name, low=0, fix="a temperature divides logits: 1 leaves them as they are; "
                  "fit one with labkit.labs.evaluate.fit_temperature on validation")


def finite(values, name: str, fix: str = "") -> np.ndarray:
    """``values`` as a float64 array, refused when it holds NaN or infinity."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim and not arr.size:
        return arr
    bad = np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(-1)) if arr.ndim else np.array([])
    if arr.ndim == 0 or bad.size:
        where = f"row {bad[0]} ({bad.size} rows in all)" if bad.size else "the value"
        raise ValueError(f"{name} holds NaN or infinity at {where}{': ' + fix if fix else ''}")
    return arr


def probabilities(probs, name: str = "probs") -> np.ndarray:
    """``probs`` as a (rows, classes) float64 array after checking that every row is a
    probability distribution (values in [0, 1], summing to 1); logits are refused with the fix."""
    arr = finite(probs, name)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"{name} must be (rows, classes) with at least 2 classes; got shape {arr.shape}")
    if (arr < 0).any() or (arr > 1).any() or not np.allclose(arr.sum(-1), 1, atol=1e-3):
        raise ValueError(f"{name} are not probabilities (values outside [0, 1], or rows not summing to 1): "
                         "if they are logits, pass labkit.core.metrics.softmax(logits)")
    return arr
