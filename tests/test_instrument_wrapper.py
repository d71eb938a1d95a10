"""The decorators' own function wrapper behaves as wrapt's FunctionWrapper did (issue #16
replaced wrapt in `import agentsignals`): the same (wrapped, instance, args) for every way of
binding and calling, the same introspection, and functions' copy and pickle behaviour."""

from __future__ import annotations

import asyncio
import copy
import inspect
import pickle
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import wrapt

from agentsignals._instrument.wrapper import FunctionWrapper

Seen = list[tuple[Any, tuple[Any, ...], Any]]


def _recorder(seen: Seen) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        seen.append((instance, args, kwargs))
        return wrapped(*args, **kwargs)

    return wrapper


def _make_class(wrap: Any, seen: Seen) -> type:
    w = _recorder(seen)

    class Agent:
        def __repr__(self) -> str:
            return "agent"

        def method(self, x: int) -> tuple[str, int]:
            return ("method", x)

        method = wrap(method, w)  # type: ignore[assignment]

        @classmethod
        def cm(cls, x: int) -> tuple[str, int]:
            return (cls.__name__, x)

        above_cm = wrap(cm, w)
        below_cm = classmethod(wrap(cm.__func__, w))

        @staticmethod
        def sm(x: int) -> int:
            return x * 2

        above_sm = wrap(sm, w)
        below_sm = staticmethod(wrap(sm.__func__, w))

    return Agent


def _calls(cls: type) -> list[Any]:
    agent = cls()
    return [
        agent.method(1),
        cls.method(agent, 2),  # via the class, instance first
        cls.above_cm(3),
        agent.above_cm(4),
        cls.below_cm(5),
        cls.above_sm(6),
        agent.above_sm(7),
        cls.below_sm(8),
        agent.below_sm(9),
    ]


def test_binding_matches_wrapt() -> None:
    ours: Seen = []
    theirs: Seen = []
    a, b = _make_class(FunctionWrapper, ours), _make_class(wrapt.FunctionWrapper, theirs)
    assert _calls(a) == _calls(b)

    def normalise(seen: Seen, cls: type) -> list[Any]:
        return [
            ("class" if inst is cls else "agent" if isinstance(inst, cls) else inst, args)
            for inst, args, _ in seen
        ]

    assert normalise(ours, a) == normalise(theirs, b)
    # instances: the agent for methods (either way of calling), the class for classmethods,
    # None for staticmethods; args never include self or cls.
    assert [args for _, args in normalise(ours, a)] == [(i,) for i in range(1, 10)]


def _kinds(f: Any) -> tuple[bool, ...]:
    return (
        inspect.iscoroutinefunction(f),
        inspect.isgeneratorfunction(f),
        inspect.isasyncgenfunction(f),
        inspect.isfunction(f),
        isinstance(f, types.FunctionType),
        asyncio.iscoroutinefunction(f),
    )


def plain(path: str, *, limit: int = 3) -> str:
    """Doc."""
    return path


async def coro(x: int) -> int:
    return x


def gen(n: int) -> Iterator[int]:
    yield n


async def agen(n: int) -> AsyncIterator[int]:
    yield n


@pytest.mark.parametrize("func", [plain, coro, gen, agen])
def test_introspection_matches_wrapt(func: Any) -> None:
    def passthrough(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped(*args, **kwargs)

    ours, theirs = FunctionWrapper(func, passthrough), wrapt.FunctionWrapper(func, passthrough)
    assert _kinds(ours) == _kinds(theirs) == _kinds(func)
    assert inspect.signature(ours) == inspect.signature(func)
    for name in ("__name__", "__qualname__", "__module__", "__doc__", "__annotations__"):
        assert getattr(ours, name) == getattr(func, name)
    assert ours.__wrapped__ is func


def test_bound_methods_introspect_like_bound_methods() -> None:
    seen: Seen = []
    agent_type = _make_class(FunctionWrapper, seen)
    agent = agent_type()
    bound = agent.method
    assert bound.__self__ is agent and bound.__name__ == "method"
    assert list(inspect.signature(bound).parameters) == ["x"]
    assert list(inspect.signature(agent_type.above_cm).parameters) == ["x"]
    assert not inspect.iscoroutinefunction(bound)


def test_copies_are_the_function_and_pickle_goes_by_name() -> None:
    def passthrough(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped(*args, **kwargs)

    global pickled
    pickled = FunctionWrapper(plain, passthrough)
    pickled.__qualname__ = "pickled"
    assert copy.copy(pickled) is pickled and copy.deepcopy(pickled) is pickled
    assert pickle.loads(pickle.dumps(pickled)) is pickled


pickled: Any = None


def test_argument_binding_fast_path_equals_inspect() -> None:
    """The decorators name a call's arguments without inspect for plain signatures: the same
    dict (keys in signature order) as Signature.bind_partial, or its fallback on bad calls."""
    from agentsignals._instrument.decorators import _Target

    def f(command, timeout=5, cwd=None):  # type: ignore[no-untyped-def]
        pass

    class A:
        def m(self, path, limit=3):  # type: ignore[no-untyped-def]
            pass

    def reference(target: _Target, instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
        sig = target.signature_bound if instance is not None else target.signature
        assert sig is not None
        try:
            return dict(sig.bind_partial(*args, **kwargs).arguments)
        except TypeError:
            return {"args": list(args), **kwargs}

    calls = [
        ((), {}), (("ls",), {}), (("ls", 3), {}), (("ls", 3, "/"), {}), (("ls", 3, "/", 4), {}),
        ((), {"command": "ls"}), ((), {"cwd": "/", "command": "ls"}), (("ls",), {"cwd": "/"}),
        (("ls",), {"command": "x"}), (("ls",), {"nope": 1}), ((), {"timeout": 1, "cwd": 2}),
    ]  # fmt: skip
    target = _Target(f)
    assert target.plain_params == ("command", "timeout", "cwd")
    for args, kwargs in calls:
        got = target.arguments(None, args, kwargs)
        assert got == reference(target, None, args, kwargs)
        assert list(got) == list(reference(target, None, args, kwargs))
    method = _Target(A.m)
    for args, kwargs in [(("p",), {}), ((), {"limit": 1, "path": "p"}), (("p", 1, 2), {})]:
        instance = A()
        assert method.arguments(instance, args, kwargs) == reference(method, instance, args, kwargs)
