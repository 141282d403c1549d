"""A job's program as the bytes the scheduler carries: pickled with
cloudpickle, the user's own modules by value. Workers cannot import a
module that lives only beside the driver (a script, a test, an example),
so everything outside the interpreter's installed prefixes and stackyard
itself travels inside the payload."""

from __future__ import annotations

import os
import pickle
import sys
from types import ModuleType

import cloudpickle

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_INSTALLED = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix, _PACKAGE})
_by_value: set[str] = set()


def _register(mod: ModuleType) -> None:
    if mod.__name__ in _by_value:
        return
    try:
        cloudpickle.register_pickle_by_value(mod)
    except ValueError:            # not importable by its name: pickled by value anyway
        return
    _by_value.add(mod.__name__)


def pack(program, modules: list[ModuleType] = ()) -> bytes:
    """PROGRAM pickled for the workers, the user's modules and MODULES by value.
    Raises TypeError naming what cannot be pickled."""
    for name, mod in list(sys.modules.items()):
        path = getattr(mod, "__file__", None)
        if (path and name != "__main__" and name not in _by_value
                and not os.path.abspath(path).startswith(_INSTALLED)):
            _register(mod)
    for mod in modules:
        _register(mod)
    try:
        return cloudpickle.dumps(program, protocol=5)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise TypeError(f"a function of this job cannot be sent to the workers: {exc}") from None
