"""A job's program as the bytes the scheduler carries: pickled with
cloudpickle, the user's own modules by value. Workers cannot import a
module that lives only beside the driver (a script, a test, an example),
so everything outside the interpreter's installed prefixes and stackyard
itself travels inside the payload.

Code objects travel with their own file name and the source lines of that
file, registered in the worker's linecache: a failing task's traceback then
names the user's file and line and shows the line, whatever file name the
installed cloudpickle writes into the code objects it rebuilds (3.x writes
"<dynamic-code>"), and on a worker that does not have the file at all."""

from __future__ import annotations

import copyreg
import io
import linecache
import marshal
import os
import pickle
import sys
from collections import ChainMap
from types import CodeType, ModuleType

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


_MAX_SOURCE = 1 << 20             # a bigger file travels without its lines


def _source_of(filename: str) -> list[str] | None:
    lines = linecache.getlines(filename)
    if not lines or sum(map(len, lines)) > _MAX_SOURCE:
        return None
    return lines


def _code_reduce(code: CodeType):
    # marshal keeps co_filename, nested code objects included; the lines list
    # is linecache's own object, so pickle's memo writes it once per file
    return _load_code, (marshal.dumps(code), code.co_filename, _source_of(code.co_filename))


def _load_code(data: bytes, filename: str, lines: list[str] | None) -> CodeType:
    if lines and filename not in linecache.cache:
        linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
    return marshal.loads(data)


class _Pickler(cloudpickle.Pickler):
    dispatch_table = ChainMap({CodeType: _code_reduce},
                              getattr(cloudpickle.Pickler, "dispatch_table", copyreg.dispatch_table))


def dumps(obj) -> bytes:
    """OBJ pickled as cloudpickle would, code objects with their file and lines."""
    buf = io.BytesIO()
    _Pickler(buf, protocol=5).dump(obj)
    return buf.getvalue()


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
        return dumps(program)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise TypeError(f"a function of this job cannot be sent to the workers: {exc}") from None
