"""labkit's course tools: the runner and its reports (`report`), the generated pages (`docs`),
the committed studies (`study`, `experiments`), launch links (`launch`) and the `labkit`
command (`cli`). They may import the core and the labs; nothing in the core or the labs
imports them.
"""
