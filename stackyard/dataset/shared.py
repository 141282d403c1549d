"""Shared variables (the Spark paper's): broadcast values, written once to
the DFS and read by each task that uses them, and accumulators, which tasks
only add to and whose sums only the driver reads.

Both travel inside task closures as small references: pickling one sends
its id, not its value."""

from __future__ import annotations

import pickle
import threading
from abc import ABC, abstractmethod

# -- in a task process ---------------------------------------------------------

_task = threading.local()
_loaded: dict[str, object] = {}          # broadcast path -> value, per task process


def start_task(fs) -> None:
    """The runtime calls this before running a task's code (the accumulators
    in its closures registered themselves when the payload was unpickled)."""
    _task.fs = fs


def task_updates() -> dict[int, object]:
    """What this task added to each accumulator it used."""
    return {aid: acc._value for aid, acc in getattr(_task, "accumulators", {}).items()}


# -- broadcast -------------------------------------------------------------------


class Broadcast:
    def __init__(self, bid: int, path: str, value=None, context=None):
        self.id, self.path = bid, path
        self._value, self._context = value, context

    @property
    def value(self):
        if self._context is not None:         # the driver holds the value itself
            if self._value is None and self.path is None:
                raise ValueError(f"broadcast {self.id} was destroyed")
            return self._value
        if self.path not in _loaded:
            fs = getattr(_task, "fs", None)
            if fs is None:
                raise RuntimeError("a broadcast's value is read in a task or on the driver")
            with fs.open(self.path, "rb") as f:
                _loaded[self.path] = pickle.load(f)
        return _loaded[self.path]

    def unpersist(self, blocking: bool = False) -> None:
        """Tasks started from now on read the value again; it stays usable."""

    def destroy(self, blocking: bool = False) -> None:
        """Remove the value everywhere; the broadcast cannot be used again."""
        if self._context is not None and self.path is not None:
            self._context._forget_broadcast(self)
            self.path, self._value = None, None

    def __reduce__(self):
        if self.path is None:
            raise ValueError(f"broadcast {self.id} was destroyed")
        return _task_broadcast, (self.id, self.path)

    def __repr__(self) -> str:
        return f"<Broadcast {self.id}>"


def _task_broadcast(bid: int, path: str) -> Broadcast:
    return Broadcast(bid, path)


# -- accumulators ------------------------------------------------------------------


class AccumulatorParam(ABC):
    """How to add up an accumulator's values (PySpark's interface)."""

    @abstractmethod
    def zero(self, value):
        """The zero of VALUE's type: what a task's copy starts from."""

    @abstractmethod
    def addInPlace(self, value1, value2):  # noqa: N802
        """VALUE1 + VALUE2 (VALUE1 may be changed and returned)."""


class AddingAccumulatorParam(AccumulatorParam):
    def __init__(self, zero_value):
        self.zero_value = zero_value

    def zero(self, value):
        return self.zero_value

    def addInPlace(self, value1, value2):  # noqa: N802
        value1 += value2
        return value1


INT_ACCUMULATOR_PARAM = AddingAccumulatorParam(0)
FLOAT_ACCUMULATOR_PARAM = AddingAccumulatorParam(0.0)
COMPLEX_ACCUMULATOR_PARAM = AddingAccumulatorParam(0.0j)


def default_param(value) -> AccumulatorParam:
    if isinstance(value, bool) or not isinstance(value, int | float | complex):
        raise TypeError(f"no default accumulator param for type {type(value).__name__}: "
                        "pass accum_param")
    return (INT_ACCUMULATOR_PARAM if isinstance(value, int) else
            FLOAT_ACCUMULATOR_PARAM if isinstance(value, float) else COMPLEX_ACCUMULATOR_PARAM)


class Accumulator:
    def __init__(self, aid: int, value, accum_param: AccumulatorParam, driver: bool = True):
        self.aid, self.accum_param = aid, accum_param
        self._value, self._driver = value, driver

    @property
    def value(self):
        if not self._driver:
            raise RuntimeError("an accumulator's value is only read on the driver")
        return self._value

    @value.setter
    def value(self, value) -> None:
        if not self._driver:
            raise RuntimeError("an accumulator's value is only set on the driver")
        self._value = value

    def add(self, term) -> None:
        self._value = self.accum_param.addInPlace(self._value, term)

    def __iadd__(self, term) -> Accumulator:
        self.add(term)
        return self

    def __reduce__(self):
        return _task_accumulator, (self.aid, self.accum_param.zero(self._value), self.accum_param)

    def __str__(self) -> str:
        return str(self._value)

    def __repr__(self) -> str:
        return f"Accumulator<id={self.aid}, value={self._value}>"


def _task_accumulator(aid: int, zero, param: AccumulatorParam) -> Accumulator:
    registry = getattr(_task, "accumulators", None)
    if registry is None:
        registry = _task.accumulators = {}
    if aid not in registry:
        registry[aid] = Accumulator(aid, zero, param, driver=False)
    return registry[aid]
