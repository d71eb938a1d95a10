"""A descriptor-aware function wrapper: what the `trace_*` decorators return.

It behaves like the function it wraps: the same name, docstring, signature
(``inspect.signature`` follows ``__wrapped__``) and kind (``inspect.iscoroutinefunction`` and
friends read the wrapped function's code flags through ``__code__``); it binds as a method,
classmethod or staticmethod in either decorator order, telling the call which instance it was
bound to; ``isinstance(f, types.FunctionType)`` holds as it does for the function; copies are
the object itself and pickling goes by qualified name, as for a function.

The same semantics as wrapt's ``FunctionWrapper``, whose import pulled ``asyncio``, ``ssl``
and ``importlib.metadata`` into ``import agentsignals`` (half of its import time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# wrapper(wrapped, instance, args, kwargs): the call, given the callable to run (bound when
# the wrapper was bound) and the instance or class it was bound to (None for a plain call).
Call = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]

_UPDATED = ("__module__", "__name__", "__qualname__", "__doc__", "__annotations__")


class FunctionWrapper:
    """Calls ``wrapper(wrapped, instance, args, kwargs)`` in place of ``wrapped``."""

    __slots__ = ("__dict__", "__weakref__", "__wrapped__", "_call", "_underlying")
    __wrapped__: Any
    _call: Call
    _underlying: Any

    def __init__(self, wrapped: Any, wrapper: Call) -> None:
        object.__setattr__(self, "__wrapped__", wrapped)
        object.__setattr__(self, "_call", wrapper)
        # The function itself for classmethod/staticmethod objects: its code flags and
        # defaults are what introspection reads.
        object.__setattr__(
            self,
            "_underlying",
            wrapped.__func__ if isinstance(wrapped, classmethod | staticmethod) else wrapped,
        )
        for name in _UPDATED:
            try:
                value = getattr(wrapped, name)
            except AttributeError:
                continue
            self.__dict__[name] = value
        extra = getattr(wrapped, "__dict__", None)
        if isinstance(extra, dict):
            self.__dict__.update(extra)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        wrapped = self.__wrapped__
        if isinstance(wrapped, classmethod | staticmethod):
            # Called unbound (not through a class): as Python would, call the function.
            wrapped = wrapped.__func__
        return self._call(wrapped, None, args, kwargs)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        wrapped = self.__wrapped__
        get = getattr(type(wrapped), "__get__", None)
        if get is None:  # a callable object, not a descriptor: nothing to bind
            return self
        return BoundFunctionWrapper(self, get(wrapped, instance, owner), instance)

    # -- looking like a function ----------------------------------------------------------
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        # isinstance(f, FunctionType) holds, as for the function (wrapt does the same).
        return type(self._underlying)

    @property
    def __code__(self) -> Any:
        return self._underlying.__code__

    @property
    def __defaults__(self) -> Any:
        return self._underlying.__defaults__

    @property
    def __kwdefaults__(self) -> Any:
        return self._underlying.__kwdefaults__

    @property
    def __func__(self) -> Any:
        return self.__wrapped__.__func__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} around {self.__wrapped__!r}>"

    def __copy__(self) -> FunctionWrapper:
        return self

    def __deepcopy__(self, memo: Any) -> FunctionWrapper:
        return self

    def __reduce_ex__(self, protocol: Any) -> str:
        return str(self.__dict__.get("__qualname__", ""))  # pickled by reference, by name


class BoundFunctionWrapper:
    """The wrapper bound to an instance or class (what attribute access returns)."""

    __slots__ = ("__wrapped__", "_instance", "_parent")

    def __init__(self, parent: FunctionWrapper, bound: Any, instance: Any) -> None:
        self._parent = parent
        self.__wrapped__ = bound
        self._instance = instance

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        parent = self._parent
        wrapped = self.__wrapped__
        original = parent.__wrapped__
        if isinstance(original, classmethod | staticmethod):
            # The class for a classmethod, None for a staticmethod, however it was reached.
            return parent._call(wrapped, getattr(wrapped, "__self__", None), args, kwargs)
        instance = self._instance
        if instance is None and not isinstance(original, type):
            # A method looked up on its class and called with the instance first.
            if not args:
                return parent._call(wrapped, None, args, kwargs)
            instance, args = args[0], args[1:]
            return parent._call(_Partial(wrapped, instance), instance, args, kwargs)
        return parent._call(wrapped, instance, args, kwargs)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        return self  # already bound

    def __getattr__(self, name: str) -> Any:
        # __name__, __doc__, __code__, __self__, __func__, ...: the parent's or the bound one's
        try:
            return getattr(self._parent, name)
        except AttributeError:
            return getattr(self.__wrapped__, name)

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(self.__wrapped__)

    @property
    def __code__(self) -> Any:
        return self._parent.__code__

    @property
    def __defaults__(self) -> Any:
        return self._parent.__defaults__

    @property
    def __kwdefaults__(self) -> Any:
        return self._parent.__kwdefaults__

    @property
    def __annotations__(self) -> Any:  # type: ignore[override]
        return getattr(self._parent, "__annotations__", None)

    @property
    def __self__(self) -> Any:
        return getattr(self.__wrapped__, "__self__", self._instance)

    def __repr__(self) -> str:
        return f"<bound {type(self).__name__} around {self.__wrapped__!r}>"


class _Partial:
    """``wrapped`` with ``instance`` as its first argument (a method called via its class)."""

    __slots__ = ("_instance", "_wrapped")

    def __init__(self, wrapped: Any, instance: Any) -> None:
        self._wrapped = wrapped
        self._instance = instance

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._wrapped(self._instance, *args, **kwargs)
