"""Imports every command module so that each attaches itself to the group."""

import importlib

# each entry is a module of this package defining click commands on ``cli``;
# a module not yet written is skipped so the group still works
for _name in ("_report", "_compress"):
    try:
        importlib.import_module(f"{__package__}.{_name}")
    except ModuleNotFoundError as exc:  # pragma: no cover
        if exc.name != f"{__package__}.{_name}":
            raise
