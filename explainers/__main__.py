"""Deprecated entry point: ``python -m explainers`` runs ``python -m cli`` (the command line moved out
of the attribution library, which imports no higher layer). Not imported by the library."""

import runpy
import sys
import warnings

warnings.warn("python -m explainers is deprecated; use python -m cli", DeprecationWarning, stacklevel=1)
print("note: `python -m explainers` is deprecated; use `python -m cli`.", file=sys.stderr)
runpy.run_module("cli", run_name="__main__", alter_sys=True)
