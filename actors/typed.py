"""The one type check for values that arrive untyped: TOML config sections, backend option
tables, actor spec sections and wire messages.

:func:`coerce` checks a value against a dataclass field's annotation and returns it typed (an
int widened where a float is declared, an array as a tuple, a nested table as its dataclass);
:func:`from_table` builds a whole dataclass from a map, rejecting unknown keys (a config key
that nearly matches a field is told "did you mean"). Both name the key path in the error they
raise. The error class says which boundary failed: a config value
(:class:`ConfigError`, the default: ``supervisor.max_restarts: must be int, got str '5'``,
echoing the user's own value, down to the array element) or a wire message
(:class:`ProtocolError`: ``transcript.seq: expected int, got str``, naming the field and never
echoing what a peer sent).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from streamasr.actors.errors import ConfigError, ProtocolError, StreamAsrError

__all__ = ["coerce", "fields_of", "from_table", "require", "table_of"]

T = TypeVar("T")

#: Builds a nested dataclass value (a message inside a message) instead of :func:`from_table`.
Nested = Callable[[type[Any], Any, str], Any]


def require(ok: bool, key: str, message: str) -> None:
    """Raise ``ConfigError("<key>: <message>")`` unless ``ok`` (a range check)."""
    if not ok:
        raise ConfigError(f"{key}: {message}")


def from_table(
    cls: type[T],
    table: Any,
    where: str,
    error: type[StreamAsrError] = ConfigError,
    nested: Nested | None = None,
) -> T:
    """Dataclass ``cls`` from the map ``table`` at key path ``where`` ("" = the root).

    Absent keys keep their defaults; unknown keys and wrongly typed values raise ``error``
    naming their key path.
    """
    return cls(**fields_of(cls, table, where, error, nested))


def fields_of(
    cls: type[Any],
    table: Any,
    where: str,
    error: type[StreamAsrError] = ConfigError,
    nested: Nested | None = None,
) -> dict[str, Any]:
    """The checked keyword arguments of ``cls`` from ``table`` (see :func:`from_table`)."""
    if not isinstance(table, dict):
        raise error(f"{where or 'config'}: must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    prefix = f"{where}." if where else ""
    for key in table:
        if key not in names:
            raise error(f"{prefix}{key}: unknown key{_did_you_mean(key, names, error)}")
    return {
        name: coerce(hints[name], value, f"{prefix}{name}", error, nested)
        for name, value in table.items()
    }


def coerce(
    hint: Any,
    value: Any,
    where: str,
    error: type[StreamAsrError] = ConfigError,
    nested: Nested | None = None,
) -> Any:
    """``value`` checked against the annotation ``hint`` and returned typed.

    Raises:
        ``error``: the value does not fit ``hint`` (the message names ``where``).
    """
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if nested is not None:
            return nested(hint, value, where)
        return from_table(hint, value, where, error)
    if origin in (typing.Union, types.UnionType):
        arms = typing.get_args(hint)
        if value is None and type(None) in arms:
            return None
        for arm in arms:
            if arm is type(None):
                continue
            try:
                return coerce(arm, value, where, error, nested)
            except error:
                continue
        raise error(_mismatch(hint, value, where, error))
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise error(f"{where}: must be one of {', '.join(map(repr, choices))}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple) or (origin is list and isinstance(value, tuple)):
            raise error(_mismatch(hint, value, where, error))
        item = typing.get_args(hint)[0]
        items = [coerce(item, v, _at(where, i, error), error, nested) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise error(_mismatch(hint, value, where, error))
        key_t, val_t = typing.get_args(hint)
        return {
            coerce(key_t, k, where, error, nested): coerce(
                val_t, v, _at(where, k, error), error, nested
            )
            for k, v in value.items()
        }
    if _fits(hint, value):
        return float(value) if hint is float else value
    raise error(_mismatch(hint, value, where, error))


def _at(where: str, key: int | str, error: type[StreamAsrError]) -> str:
    """The key path of an element: ``words[2]`` in a config; the field alone on the wire."""
    if issubclass(error, ProtocolError):
        return where
    return f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}"


def _fits(hint: Any, value: Any) -> bool:
    """A scalar (or plain class) check; bool is never an int or a float here."""
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(hint, type) and isinstance(value, hint)


def _mismatch(hint: Any, value: Any, where: str, error: type[StreamAsrError]) -> str:
    """The error text for a value that does not fit ``hint`` (see the module docstring)."""
    got = type(value).__name__
    if issubclass(error, ProtocolError):
        return f"{where}: expected {_name(hint)}, got {got}"
    origin = typing.get_origin(hint)
    if origin in (tuple, list):
        return f"{where}: must be an array"
    if origin is dict:
        return f"{where}: must be a table"
    if origin in (typing.Union, types.UnionType):
        arms = " or ".join(_describe(a) for a in typing.get_args(hint))
        return f"{where}: must be {arms}, got {got} {value!r}"
    return f"{where}: must be {_name(hint)}, got {got} {value!r}"


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)


def _describe(hint: Any) -> str:
    """``int``, or ``'auto'`` for a one-value Literal (config error messages)."""
    if typing.get_origin(hint) is Literal:
        return " or ".join(map(repr, typing.get_args(hint)))
    return _name(hint)


def table_of(obj: Any) -> dict[str, Any]:
    """The plain map of a settings dataclass (what :func:`from_table` reads back)."""
    out: dict[str, Any] = dataclasses.asdict(obj)
    return out


def _did_you_mean(key: object, names: set[str], error: type[StreamAsrError]) -> str:
    """`` (did you mean 'finals'?)`` when a config key is a near miss of a field name, else "".

    Only for config errors: a wire message's peer is a program, not a person who mistyped.
    """
    if not issubclass(error, ConfigError) or not isinstance(key, str):
        return ""
    close = difflib.get_close_matches(key, sorted(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
