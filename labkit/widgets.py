"""ipywidgets explorers. Each prints a non-interactive answer first, so a notebook run
headless (nbval, `labkit run`) shows the same result a reader would get by typing.

Leaves out: anything that needs a running front end to produce a result.
"""
from __future__ import annotations


def fill_mask_explorer(model, tokenizer, text: str = "this movie is [MASK] good .", k: int = 5):
    """Type a sentence with [MASK], press Enter, see the top-k predictions."""
    from .pretrain import fill_mask

    def show(sentence):
        try:
            top = fill_mask(model, tokenizer, sentence, k)
        except ValueError as e:
            return f"{e}"
        return "\n".join(f"{tok:>12}  {p:.3f}" for tok, p in top)

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
