"""Tools: exercises of Lab 08 (compression): int8 size, pruning per layer, heads removed.
Each check computes its truth when called; see labkit.exercises.grading."""
from __future__ import annotations

import torch

from .grading import Exercise, number, require


def _int8_ratio(value):
    fp32 = 4 * (384 * 1536 + 1536)
    int8 = 384 * 1536 + 1536 * (4 + 8) + 1536 * 4
    number(value, fp32 / int8, 0.01, "fp32 keeps 4 bytes per weight and bias; int8 keeps 1 byte per "
           "weight, 4 + 8 bytes (scale, zero point) per output row and 4 bytes per bias: divide "
           "the first by the second")


def _prune_per_layer(fn):
    def want(ws, sparsity):  # each tensor ranked alone (the magnitudes below are distinct)
        out = []
        for w in ws:
            w, k = w.clone(), int(sparsity * w.numel())
            w.view(-1)[w.abs().view(-1).argsort()[:k]] = 0
            out.append(w)
        return out
    cases = [([torch.tensor([[0.1, -0.5], [0.3, -0.05]]), torch.tensor([0.01, -0.02, 0.6])], 0.5),
             # the three smallest share a row and a column: ranking per row or per column differs
             ([torch.tensor([[0.01, -0.02, 0.9], [0.03, 0.8, -0.7], [0.6, 0.5, 0.4]]),
               torch.tensor([5.0, -6.0, 0.001, 7.0])], 0.34),
             ([torch.tensor([[0.2, 0.1], [0.4, 0.3]]), torch.tensor([[9.0, -8.0, 7.5]])], 0.0)]
    require(callable(fn), "pass the function itself, e.g. check.answer('08.2', prune_per_layer)")
    for ws, sparsity in cases:
        got = fn([w.clone() for w in ws], sparsity)
        require(isinstance(got, (list, tuple)) and len(got) == len(ws)
                and all(isinstance(g, torch.Tensor) and g.shape == w.shape for g, w in zip(got, ws)),
                "return one tensor per input, each of its shape")
        require(all(torch.equal(g.float(), e) for g, e in zip(got, want(ws, sparsity))),
                f"sparsity {sparsity}: rank each whole tensor on its own (not row by row, not "
                "all tensors together), zero its int(sparsity x size) smallest |w| and keep the "
                "other values as they are")


def _head_weights(value):
    number(value, 4 * 6 * 32 * 384, 0, "query, key and value lose rows, the output projection "
           "columns: 4 matrices, each 6 x 32 by 384", "a whole number")


EXERCISES = {
    "08.1": Exercise("How many times smaller than in float32 is a 384 x 1536 Linear layer with "
                     "1536 biases after per-channel dynamic int8 (int8 weights, a float32 scale and "
                     "an int64 zero point per output row, float32 biases)?", _int8_ratio,
                     "count bytes per weight, per row and per bias, in both formats"),
    "08.2": Exercise("Write prune_per_layer(weights, sparsity): in each tensor on its own, the "
                     "int(sparsity x size) weights of smallest magnitude set to zero (none at "
                     "sparsity 0).", _prune_per_layer,
                     "section 3's global version ranks all tensors together; rank each alone"),
    "08.3": Exercise("How many weights do MiniLM's four attention matrices of one layer lose when "
                     "6 of its 12 heads (32 dimensions each, hidden size 384) are removed?",
                     _head_weights, "which matrices have a row or a column per head dimension?"),
}
