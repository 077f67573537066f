"""Core: ipywidgets explorers. Each prints a non-interactive answer first, so a notebook run
headless (nbval, `labkit run`) shows the same result a reader would get by typing.

Leaves out: anything that needs a running front end to produce a result.
"""
from __future__ import annotations

from .augment import OPS, eda
from .pretrain import fill_mask


def fill_mask_explorer(model, tokenizer=None, text: str = "this movie is [MASK] good .", k: int = 5):
    """Type a sentence with [MASK], press Enter, see the top-k predictions. ``model``: one
    model (with its ``tokenizer``), or {name: (model, tokenizer)} to compare side by side."""
    named = model if isinstance(model, dict) else {"": (model, tokenizer)}

    def show(sentence):
        try:
            tops = {name: fill_mask(m, tok, sentence, k) for name, (m, tok) in named.items()}
        except ValueError as e:
            return f"{e}"
        wide = len(tops) > 1  # side by side: 24 characters a model
        head = ["".join(f"{name[:22]:>24}" for name in tops)] if wide else []
        return "\n".join(head + ["".join(f"{t[:15]:>17}  {p:.3f}" if wide else f"{t:>12}  {p:.3f}"
                                          for t, p in (top[i] for top in tops.values())) for i in range(k)])

    print(f"{text}\n{show(text)}")  # the non-interactive fallback
    try:
        import ipywidgets as w
    except ImportError:
        return None
    box = w.Text(value=text, description="sentence", continuous_update=False,
                 layout=w.Layout(width="60%"))
    out = w.Output()

    def update(change):  # runs when Enter is pressed or the box loses focus
        out.clear_output()
        with out:
            print(show(change["new"]))

    box.observe(update, "value")
    return w.VBox([box, out])


def augment_explorer(text: str = "not a bad film at all, but the plot is thin and slow",
                     strength: float = 0.2, n_aug: int = 4):
    """Type a review, move the strength slider, tick the guard: see EDA's variants."""
    def show(review, s, guard):
        try:
            variants = eda(review, n_aug, s, seed=0, guard=guard)
        except (TypeError, ValueError) as e:
            return f"{e}"
        return "\n".join(f"{OPS[i % len(OPS)]:>8}: {v}" for i, v in enumerate(variants))

    print(f"strength {strength}, guard on:\n{show(text, strength, True)}")  # the fallback
    try:
        import ipywidgets as w
    except ImportError:
        return None
    box = w.Text(value=text, description="review", continuous_update=False,
                 layout=w.Layout(width="80%"))
    slider = w.FloatSlider(value=strength, min=0.0, max=0.5, step=0.05, description="strength",
                           continuous_update=False)
    guard = w.Checkbox(value=True, description="guard negations")
    out = w.Output()

    def update(_=None):
        out.clear_output()
        with out:
            print(show(box.value, slider.value, guard.value))

    for control in (box, slider, guard):
        control.observe(update, "value")
    return w.VBox([box, w.HBox([slider, guard]), out])
