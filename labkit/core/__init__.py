"""labkit's core: what every lab stands on. The environment and scales (`env`), each lab's
settings per scale (`config`), the cache (`cache`), fetched data and weights (`fetch`,
`data`), text and tokenizers (`text`), the English words several labs lean on (`lexicon`),
models and classifiers (`models`, `classifier`), the one training loop (`train`), knowledge
distillation (`kd`), measurement (`measure`), statistics (`stats`), learning curves
(`curves`), the scores every lab reports (`metrics`), plots, the processes labs start
(`procs`), and the claims and results every lab records (`claims`, `results`).

The core imports nothing from `labkit.labs` or `labkit.course`; the tests check it
(tests/test_layers.py). Import a module where you use it: ``from labkit.core import data``.
"""
