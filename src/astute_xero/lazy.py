"""Task bodies imported when a task runs, not whenever its DAG file is parsed.

Airflow parses a DAG file in the dag-processor every few minutes and again in every task process before the task
runs. A DAG file that imports its task bodies at the top (psycopg, the Xero SDK's models, pandas, the whole
pipeline) pays that import on every parse: about 0.5 s of the 0.66 s the export DAG's parse took, in each of a
run's task processes. The task bodies are needed only by the task that runs, so the DAG files take them through
`lazy_module`: the module is found at parse time (a wrong name still fails the parse) and executed on its first
use, inside a task.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """The module `name`, loaded on first attribute access (the standard library's LazyLoader)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
