"""The part of :mod:`dataclasses` this package uses, without its start-up cost.

The deploy hook is a fresh interpreter on every renewal, and its budget is a few times the
start-up of the shell script it replaces. The standard ``@dataclass`` writes Python source
for every generated method and compiles it with ``exec``: about half a millisecond per class,
and the deploy path defines some forty classes, so plain dataclasses cost it over 20 ms
(``benchmarks/deploy_wall.py``; ``import dataclasses`` also pulls in ``inspect``). This module
builds the same methods from closures instead, for the options we use: defaults and
``field(default_factory=...)``, ``init``, ``frozen``, ``order``, ``eq`` and ``__post_init__``. The
decorator is declared with :func:`typing.dataclass_transform`, so type checkers treat these
classes exactly like dataclasses.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

_T = TypeVar("_T")
_MISSING: Any = object()
_FIELDS = "__lite_fields__"
_SPECS = "__lite_field_specs__"


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen class (as :class:`dataclasses.FrozenInstanceError`)."""


class _Field:
    __slots__ = ("default", "default_factory", "repr")

    def __init__(self, default: Any, default_factory: Any, repr: bool) -> None:
        self.default = default
        self.default_factory = default_factory
        self.repr = repr


def field(
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] = _MISSING,
    repr: bool = True,
) -> Any:
    """A field's default (a value, or a factory called for each new instance); ``repr=False``
    keeps it out of the repr, e.g. a secret."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("a field has a default or a default_factory, not both")
    return _Field(default, default_factory, repr)


def _own_fields(cls: type) -> dict[str, _Field]:
    fields: dict[str, _Field] = {}
    # The class's own annotations only (not inherited ones), as strings under PEP 563.
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
        if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = cls.__dict__.get(name, _MISSING)
        if isinstance(value, _Field):
            fields[name] = value
            delattr(cls, name)
        else:
            fields[name] = _Field(value, _MISSING, True)
    return fields


def _make_init(cls: type, fields: dict[str, _Field]) -> Callable[..., None]:
    names = tuple(fields)
    defaults = {n: f.default for n, f in fields.items() if f.default is not _MISSING}
    factories = {
        n: f.default_factory for n, f in fields.items() if f.default_factory is not _MISSING
    }
    post_init = getattr(cls, "__post_init__", None)
    qualname = cls.__qualname__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{qualname}() takes {len(names)} arguments, got {len(args)}")
        values = dict(zip(names, args, strict=False))
        for name, value in kwargs.items():
            if name not in fields or name in values:
                raise TypeError(f"{qualname}() got an unexpected or repeated argument {name!r}")
            values[name] = value
        for name in names:
            if name in values:
                value = values[name]
            elif name in defaults:
                value = defaults[name]
            elif name in factories:
                value = factories[name]()
            else:
                raise TypeError(f"{qualname}() missing argument {name!r}")
            object.__setattr__(self, name, value)
        if post_init is not None:
            post_init(self)

    return __init__


def _key(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, name) for name in getattr(obj, _FIELDS))


def _repr(self: Any) -> str:
    shown = (name for name, spec in getattr(self, _SPECS).items() if spec.repr)
    parts = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
    return f"{type(self).__qualname__}({parts})"


def _eq(self: Any, other: object) -> object:
    if type(other) is not type(self):
        return NotImplemented
    return _key(self) == _key(other)


def _hash(self: Any) -> int:
    return hash(_key(self))


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r} of a frozen instance")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r} of a frozen instance")


def _comparison(compare: Callable[[Any, Any], Any]) -> Any:
    def method(self: Any, other: object) -> object:
        if type(other) is not type(self):
            return NotImplemented
        return bool(compare(_key(self), _key(other)))

    return method


def _process(cls: type[_T], *, init: bool, eq: bool, frozen: bool, order: bool) -> type[_T]:
    specs: dict[str, _Field] = {}
    for base in reversed(cls.__mro__[1:]):
        specs.update(getattr(base, _SPECS, {}))
    specs.update(_own_fields(cls))
    methods: dict[str, Any] = {_SPECS: specs, _FIELDS: tuple(specs)}
    if init:
        methods["__init__"] = _make_init(cls, specs)
    methods["__repr__"] = _repr
    if eq:
        methods["__eq__"] = _eq
        # As dataclasses: equal instances of a frozen class hash alike; a mutable one is
        # unhashable, since its equality can change.
        methods["__hash__"] = _hash if frozen else None
    if order:
        methods["__lt__"] = _comparison(operator.lt)
        methods["__le__"] = _comparison(operator.le)
        methods["__gt__"] = _comparison(operator.gt)
        methods["__ge__"] = _comparison(operator.ge)
    if frozen:
        methods["__setattr__"] = _frozen_setattr
        methods["__delattr__"] = _frozen_delattr
    own = cls.__dict__
    for name, value in methods.items():
        # As dataclasses: a method the class body defines itself wins (a class that defines
        # __eq__ gets __hash__ = None from Python; that one is not the class's own).
        if name == "__hash__" and own.get("__hash__") is not None:
            continue
        if name in own and name not in (_SPECS, _FIELDS, "__hash__"):
            continue
        setattr(cls, name, value)
    return cls


@overload
def dataclass(cls: type[_T], /) -> type[_T]: ...


@overload
def dataclass(
    *, init: bool = True, eq: bool = True, frozen: bool = False, order: bool = False
) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(field_specifiers=(field,))
def dataclass(
    cls: type[_T] | None = None,
    /,
    *,
    init: bool = True,
    eq: bool = True,
    frozen: bool = False,
    order: bool = False,
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """Like :func:`dataclasses.dataclass` (for the options listed in the module docstring)."""

    def wrap(target: type[_T]) -> type[_T]:
        return _process(target, init=init, eq=eq, frozen=frozen, order=order)

    return wrap if cls is None else wrap(cls)


def replace(obj: _T, /, **changes: Any) -> _T:
    """A copy of ``obj`` with some fields changed (as :func:`dataclasses.replace`)."""
    values = {name: getattr(obj, name) for name in getattr(obj, _FIELDS)}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(obj).__qualname__} has no field {sorted(unknown)[0]!r}")
    values.update(changes)
    return type(obj)(**values)


def fields(obj: object) -> tuple[str, ...]:
    """The field names of a class or instance made by :func:`dataclass`, in order."""
    names: tuple[str, ...] = getattr(obj, _FIELDS)
    return names
