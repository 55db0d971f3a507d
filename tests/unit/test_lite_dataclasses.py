"""The start-up-cheap dataclass decorator behaves as the standard one for what we use.

Each behaviour is checked side by side with :mod:`dataclasses` on the same declaration.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import pytest

from certbot_dane_tlsa import lite_dataclasses as lite


def _pair(*, frozen: bool = False, order: bool = False) -> tuple[Any, Any]:
    """The same class built by both decorators."""

    def body(field: Any) -> dict[str, Any]:
        return {
            "__annotations__": {
                "name": "str",
                "port": "int",
                "tags": "list[str]",
                "secret": "bytes",
                "KIND": "ClassVar[str]",
            },
            "port": 25,
            "tags": field(default_factory=list),
            "secret": field(default=b"s3cret", repr=False),
            "KIND": "mx",
        }

    std = dataclasses.dataclass(frozen=frozen, order=order)(
        type("Std", (), body(dataclasses.field))
    )
    ours = lite.dataclass(frozen=frozen, order=order)(type("Std", (), body(lite.field)))
    return std, ours


def test_init_defaults_and_factories() -> None:
    std, ours = _pair()
    for cls in (std, ours):
        a, b = cls("mx"), cls("mx", 587, ["x"], secret=b"k")
        assert (a.name, a.port, a.tags, a.secret) == ("mx", 25, [], b"s3cret")
        assert (b.port, b.tags, b.secret) == (587, ["x"], b"k")
        assert cls("mx").tags is not cls("mx").tags  # a new list each time
        assert cls.KIND == "mx"
        with pytest.raises(TypeError):
            cls()
        with pytest.raises(TypeError):
            cls("mx", nope=1)
        with pytest.raises(TypeError):
            cls("mx", name="again")
        with pytest.raises(TypeError):
            cls("mx", 1, [], b"", "extra")


def test_repr_equality_and_hashing() -> None:
    std, ours = _pair()
    assert repr(ours("mx", 25, ["a"])) == repr(std("mx", 25, ["a"]))
    assert "s3cret" not in repr(ours("mx"))
    assert ours("mx") == ours("mx")
    assert ours("mx") != ours("mx", 26)
    assert ours("mx") != std("mx")  # another class is never equal
    with pytest.raises(TypeError):
        hash(ours("mx"))  # mutable with eq: unhashable, as with dataclasses
    with pytest.raises(TypeError):
        hash(std("mx"))


def test_frozen_and_order() -> None:
    std, ours = _pair(frozen=True, order=True)
    for cls, error in ((std, dataclasses.FrozenInstanceError), (ours, lite.FrozenInstanceError)):
        item = cls("mx", tags=("t",))
        with pytest.raises(error):
            item.port = 1
        with pytest.raises(error):
            del item.port
        assert hash(item) == hash(cls("mx", tags=("t",)))
        assert sorted([cls("b"), cls("a", 2), cls("a", 1)]) == [cls("a", 1), cls("a", 2), cls("b")]
        assert cls("a") < cls("b") and cls("b") >= cls("a")


def test_replace_and_fields() -> None:
    _, ours = _pair(frozen=True)
    item = ours("mx", 25)
    changed = lite.replace(item, port=465)
    assert (changed.name, changed.port, item.port) == ("mx", 465, 25)
    assert lite.fields(ours) == ("name", "port", "tags", "secret")
    with pytest.raises(TypeError):
        lite.replace(item, nope=1)


def test_post_init_inheritance_and_custom_init() -> None:
    @lite.dataclass
    class Base:
        a: int
        seen: ClassVar[list[int]] = []

        def __post_init__(self) -> None:
            Base.seen.append(self.a)

    @lite.dataclass
    class Child(Base):
        b: int = 2

    child = Child(1)
    assert (child.a, child.b, Base.seen) == (1, 2, [1])
    assert lite.fields(Child) == ("a", "b")

    @lite.dataclass(frozen=True, init=False)
    class Wrapped:
        value: int

        def __init__(self, text: str) -> None:
            object.__setattr__(self, "value", int(text))

    assert Wrapped("7") == Wrapped("7") and Wrapped("7").value == 7
    with pytest.raises(ValueError):
        lite.field(default=1, default_factory=list)


def test_methods_the_class_defines_itself_win() -> None:
    @lite.dataclass(frozen=True)
    class Loose:
        text: str

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Loose) and self.text.lower() == other.text.lower()

        def __hash__(self) -> int:
            return hash(self.text.lower())

        def __repr__(self) -> str:
            return f"<{self.text}>"

    assert Loose("A") == Loose("a") and hash(Loose("A")) == hash(Loose("a"))
    assert repr(Loose("A")) == "<A>"

    @lite.dataclass(frozen=True)
    class OwnEqOnly:
        text: str

        def __eq__(self, other: object) -> bool:
            return True

    assert OwnEqOnly("a") == OwnEqOnly("b")
    assert hash(OwnEqOnly("a")) == hash(OwnEqOnly("a"))  # frozen: ours, as dataclasses does
