"""The plain case of structuring, without cattrs' per-call machinery (half of an event's intake).

For each parameter class a function that accepts only the plain form of its params: a dict whose
fields are absent (where the class has a default), ``null`` (where the field is optional) or
exactly of the canonical JSON type the field wants (an ``Id`` a non-empty string without NUL of
at most 4096 characters, a ``Count`` an int >= 0, a grade an int of -1, 1, 2, 5, ...). Anything
else (a grade given by name, 2.0 for an int, a wrong type, a missing field) raises ``NotPlain``
and structure.py runs the cattrs converter, which decides and words the error. So for every
input the result is the converter's: tests/test_protocol_schema.py holds the two against each
other.

Why not cattrs alone: measured, its per-call structuring was half of an event's intake
(tool.executed 18 us -> 8 us with this path, usage.recorded 17 -> 13 us), and import-opencode's
target of 50,000 OpenCode parts/s (bench/bench_opencode_import.py) was out of reach without it.
"""

from __future__ import annotations

import math
import types
from typing import Any, Callable, Union, get_args, get_origin, get_type_hints

import attrs
import orjson

from .grades import GRADE_NAMES
from .names import wire_name
from .params import (MAX_COUNT, MAX_DEFINITION_BYTES, MAX_ID_LENGTH, MAX_MONEY, Count, Definition, EventTime, Grade,
                     Grader, Id, Money)


class NotPlain(Exception):
    """Not the plain form: the converter decides (and words the error)."""


_NOT_PLAIN = NotPlain()  # raised often while reading odd input: one instance


def _id(value: Any) -> Any:
    if value.__class__ is str and value and len(value) <= MAX_ID_LENGTH and "\x00" not in value:
        return value
    raise _NOT_PLAIN


def _str(value: Any) -> Any:
    if value.__class__ is str and "\x00" not in value:
        return value
    raise _NOT_PLAIN  # a NUL: the converter replaces it (structure.without_nul)


def _bool(value: Any) -> Any:
    if value is True or value is False:
        return value
    raise _NOT_PLAIN


def _int(value: Any) -> Any:
    if value.__class__ is int:
        return value
    raise _NOT_PLAIN


def _float(value: Any) -> Any:  # the converter keeps an int as it is
    if (value.__class__ is float and math.isfinite(value)) or value.__class__ is int:
        return value
    raise _NOT_PLAIN


def _count(value: Any) -> Any:
    if value.__class__ is int and 0 <= value <= MAX_COUNT:
        return value
    raise _NOT_PLAIN


def _money(value: Any) -> Any:
    if value.__class__ is float and 0 <= value <= MAX_MONEY:
        return value
    if value.__class__ is int and 0 <= value <= MAX_MONEY:
        return float(value)
    raise _NOT_PLAIN


def _grade(value: Any) -> Any:
    if value.__class__ is int and value in GRADE_NAMES:
        return value
    raise _NOT_PLAIN


def _grader(value: Any) -> Any:
    if value == "agent" or value == "user":
        if value.__class__ is str:
            return value
    raise _NOT_PLAIN


def _object(value: Any) -> Any:
    if value.__class__ is dict:
        return value
    raise _NOT_PLAIN


def _definition(value: Any) -> Any:
    if value.__class__ is dict:
        try:
            if len(orjson.dumps(value)) <= MAX_DEFINITION_BYTES:
                return value
        except TypeError:
            pass
    raise _NOT_PLAIN


def _converted(value: Any) -> Any:
    """A field the converter rewrites (``at``: normalised to UTC): never plain when given."""
    raise _NOT_PLAIN


def _strings(value: Any) -> Any:
    if value.__class__ is list and all(item.__class__ is str and "\x00" not in item for item in value):
        return value
    raise _NOT_PLAIN


_CHECKS: dict[Any, Callable[[Any], Any]] = {
    Id: _id, str: _str, bool: _bool, int: _int, float: _float, Count: _count, Money: _money, Grade: _grade,
    Grader: _grader, EventTime: _converted, Definition: _definition,
}


def _check_of(annotation: Any) -> Callable[[Any], Any] | None:
    if annotation in _CHECKS:
        return _CHECKS[annotation]
    if annotation == dict[str, Any]:
        return _object
    if annotation == list[str]:
        return _strings
    if attrs.has(annotation):
        return plain_structure(annotation)
    return None


def plain_structure(cls: type) -> Callable[[Any], Any] | None:
    """The plain-form function of ``cls``, or None when a field's type has no plain form here
    (then the converter always decides)."""
    hints = get_type_hints(cls)
    fields: list[tuple[str, bool, Any, bool, Callable[[Any], Any]]] = []
    keywords: list[tuple[str, str, Any, bool, Callable[[Any], Any]]] = []  # kw_only fields (``at``)
    for field in attrs.fields(cls):
        annotation = hints[field.name]
        args = get_args(annotation)
        optional = get_origin(annotation) in (Union, types.UnionType) and type(None) in args
        if optional:
            (annotation,) = [arg for arg in args if arg is not type(None)]
        check = _check_of(annotation)
        default = field.default
        if check is None or isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            return None
        if field.kw_only:
            if default is attrs.NOTHING:
                return None
            keywords.append((wire_name(field.name), field.name, default, optional, check))
        else:
            fields.append((wire_name(field.name), default is attrs.NOTHING, default, optional, check))
    missing = object()

    def structure(value: Any) -> Any:
        if value.__class__ is not dict:
            raise _NOT_PLAIN
        get = value.get
        values = []
        for name, required, default, optional, check in fields:
            item = get(name, missing)
            if item is missing:
                if required:
                    raise _NOT_PLAIN
                values.append(default)
            elif item is None:
                if not optional:
                    raise _NOT_PLAIN
                values.append(None)
            else:
                values.append(check(item))
        if not keywords:
            return cls(*values)
        named = {}
        for name, attribute, default, optional, check in keywords:
            item = get(name, missing)
            if item is missing or (item is None and optional):
                named[attribute] = default if item is missing else None
            elif item is None:
                raise _NOT_PLAIN
            else:
                named[attribute] = check(item)
        return cls(*values, **named)
    return structure
