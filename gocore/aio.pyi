# Type stubs for gocore.aio (goroutines call asyncio code).
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, overload

from gocore.context import Context

__all__ = ["call", "blocking_call", "set_loop_factory"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

UNWIND_S: float
JOIN_S: float

# (PEP 612 allows no keyword-only parameter between *args: P.args and
# **kwargs: P.kwargs: the ctx= form is a second overload, its arguments
# unchecked.)
@overload
async def call(fn: Callable[_P, Awaitable[_T]], /, *args: _P.args, **kwargs: _P.kwargs) -> _T: ...
@overload
async def call(fn: Callable[..., Awaitable[_T]], /, *args: Any, ctx: Context | None, **kwargs: Any) -> _T: ...
@overload
def blocking_call(fn: Callable[_P, Awaitable[_T]], /, *args: _P.args, **kwargs: _P.kwargs) -> _T: ...
@overload
def blocking_call(fn: Callable[..., Awaitable[_T]], /, *args: Any, ctx: Context | None, **kwargs: Any) -> _T: ...
def set_loop_factory(factory: Callable[[], asyncio.AbstractEventLoop] | None) -> None: ...
