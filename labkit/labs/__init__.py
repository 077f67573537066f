"""labkit's labs: the code behind each notebook, one module per lab, or a package where a lab
has several (`adversarial` with its `defences`; `federated` with `privacy` and `flower`;
`compress` with `runtime`; `evaluate` with `serve` and `loadtest`).

    01 clean   02 pretrain   03 finetune   04 augment   05 distill   06 adversarial
    07 federated   08 compress   09 evaluate

A lab imports only `labkit.core`, never another lab or the course's tools; the tests check it
(tests/test_layers.py). What two labs share lives in the core.
"""
