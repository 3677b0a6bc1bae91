"""quick_init: a frozen dataclass built by filling its __dict__ behaves as the generated one."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from meshnode.protocol.listings.model import ListingDraft, Location, Price
from meshnode.protocol.records import quick_init


@dataclass(frozen=True)
class Plain:
    mode: str
    units: int | None = None
    period: str | None = "hour"


@quick_init
@dataclass(frozen=True)
class Quick:
    mode: str
    units: int | None = None
    period: str | None = "hour"


def test_quick_init__same_fields_defaults_and_errors_as_the_generated_init() -> None:
    # Given the same class with and without quick_init
    # When each is built by position, by keyword and from its defaults
    # Then they hold the same values, and the same calls fail
    for args, kwargs in [(("amount",), {}), (("amount", 450), {"period": None}),
                         ((), {"mode": "swap", "units": 1})]:
        assert dataclasses.astuple(Quick(*args, **kwargs)) == dataclasses.astuple(
            Plain(*args, **kwargs))
    for args, kwargs in [((), {}), (("a", 1, "b", "c"), {}), (("a",), {"nope": 1}),
                         (("a",), {"mode": "b"})]:
        with pytest.raises(TypeError):
            Plain(*args, **kwargs)
        with pytest.raises(TypeError):
            Quick(*args, **kwargs)


def test_quick_init__stays_frozen_equal_hashed_and_replaceable() -> None:
    quick = Quick("amount", 450)
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.mode = "free"  # type: ignore[misc]
    assert quick == Quick("amount", 450)
    assert hash(quick) == hash(Quick("amount", 450))
    assert quick != Quick("amount", 451)
    assert dataclasses.replace(quick, units=1) == Quick("amount", 1)
    assert repr(quick) == "Quick(mode='amount', units=450, period='hour')"


def test_quick_init__the_listing_records_use_it() -> None:
    # The records a received listing builds (issue 17) take the quick path.
    for cls in (ListingDraft, Location, Price):
        assert cls.__init__.__code__.co_varnames[0] == "__qi_self"
    assert Price() == Price("free", None, None)


def test_quick_init__refuses_what_it_cannot_reproduce() -> None:
    @dataclass
    class Mutable:
        a: int

    @dataclass(frozen=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True)
    class Factory:
        a: list[int] = field(default_factory=list)

    @dataclass(frozen=True, kw_only=True)
    class KeywordOnly:
        a: int

    @dataclass(frozen=True, slots=True)
    class Slots:
        a: int

    # (in a class body ``__qi_dict`` would be mangled: only a made class can clash)
    clash = dataclasses.make_dataclass("Clash", [("__qi_dict", int)], frozen=True)

    for cls in (Mutable, PostInit, Factory, KeywordOnly, Slots, clash):
        with pytest.raises(TypeError):
            quick_init(cls)
