"""Frozen dataclasses built quickly: ``quick_init``.

A frozen dataclass's generated ``__init__`` sets each field through ``object.__setattr__``
(its own ``__setattr__`` refuses), a call per field: a listing received from a peer builds
about ten such records (the verified object, its draft, price, place, columns, row, check,
Announce), 2.6 µs for the 13 fields of ``ListingColumns`` where filling the instance's
``__dict__`` takes 0.6 (issue 17). ``quick_init`` gives the class that second ``__init__``:
same parameters, defaults and instances; the class stays frozen (assignment still raises
``FrozenInstanceError``), equal, hashed and printed as before. Classes it cannot reproduce
exactly (``__post_init__``, ``default_factory``, ``init=False`` or keyword-only fields,
``slots``) are refused when the decorator runs, at import.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["quick_init"]

T = TypeVar("T")


def _refuse_unsupported(cls: type[Any], fields: tuple[dataclasses.Field[Any], ...]) -> None:
    if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__}: quick_init is for frozen dataclasses")
    if hasattr(cls, "__post_init__") or "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: __post_init__ or slots: keep the generated __init__")
    for field in fields:
        if (not field.init or field.kw_only is True or field.name.startswith("__qi_")
                or field.default_factory is not dataclasses.MISSING):
            raise TypeError(f"{cls.__name__}.{field.name}: only plain fields and defaults")


def quick_init(cls: type[T]) -> type[T]:
    """Replace the ``__init__`` of the frozen dataclass ``cls`` by one that stores the fields
    straight into the instance's ``__dict__`` (apply it above ``@dataclass(frozen=True)``)."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    _refuse_unsupported(cls, fields)
    # Internal names start with ``__qi_``: never a field's (``_refuse_unsupported``).
    defaults = {f"__qi_default_{field.name}": field.default for field in fields
                if field.default is not dataclasses.MISSING}
    parameters = ", ".join(
        f"{field.name}=__qi_default_{field.name}" if f"__qi_default_{field.name}" in defaults
        else field.name for field in fields)
    body = "".join(f"    __qi_dict[{field.name!r}] = {field.name}\n" for field in fields)
    source = (f"def __init__(__qi_self, {parameters}):\n"
              f"    __qi_dict = __qi_self.__dict__\n{body}")
    namespace: dict[str, Any] = dict(defaults)
    exec(source, namespace)  # noqa: S102 - our own field names, as dataclasses itself does
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
