"""Benchmarks: speed claims live here, never in unit tests.

Every case times its variants in one process, with a fixed thread count, alternating the
variants within each repetition (rotating their order), and reports per-repetition ratios to a
reference variant as a median with its spread (min-max and interquartile range). Cases are
discovered from the modules ``bench/cases_*.py``, each exposing ``cases(quick: bool) -> list[Case]``.
Run ``python -m bench [--quick]``; the table goes to ``bench/results/latest.md``.
"""
