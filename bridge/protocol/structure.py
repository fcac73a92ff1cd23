"""Wire params → parameter classes: one cattrs converter, strict about types, one message per error.

An error names the field as the wire spells it and what is accepted (``params.grade must be -1
(bad), 1 (neutral), 2 (good) or 5 (excellence) ...; got 3``); the bridge answers it with -32602.
"""

from __future__ import annotations

import math
import re
import types
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Union, get_args, get_origin

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, override

from .grades import parse_grade
from .methods import METHODS
from .names import wire_name
from .params import (
    MAX_COUNT,
    MAX_ID_LENGTH,
    MAX_MONEY,
    AgentRef,
    ClientInfo,
    MAX_DEFINITION_BYTES,
    Count,
    Definition,
    EventTime,
    Grade,
    Grader,
    Id,
    Money,
    ProjectRef,
    UsageTokens,
)
from .plain import NotPlain, plain_structure

# cattrs' stub types the attribute overrides (**kwargs) and its own flags as one namespace, which
# mypy cannot tell apart when the overrides come as a dict; the function itself takes both.
_structure_fn: Callable[..., Callable[[Any, Any], Any]] = make_dict_structure_fn


class InvalidParams(ValueError):
    """Params that do not match the contract; the message names the field and what is accepted."""



def _strict(kind: type | tuple[type, ...], label: str) -> Callable[[Any, Any], Any]:
    exact = kind if isinstance(kind, type) and kind is not float else None

    def structure(value: Any, _type: Any) -> Any:
        if value.__class__ is exact:  # the common case, decided without isinstance
            return value
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise InvalidParams(f"must be {label}; got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidParams(f"must be a finite number; got {value!r}")
        return value
    return structure


NUL_REPLACEMENT = "\ufffd"


def without_nul(text: str) -> str:
    """Text as it is stored: a NUL (which C tools, terminals and key parts treat as an end) becomes
    U+FFFD, as a lone surrogate does (tracking.sanitize). An ``Id`` with a NUL is refused instead."""
    return text.replace("\x00", NUL_REPLACEMENT) if "\x00" in text else text


def _text(value: Any, _type: Any) -> str:
    if value.__class__ is str:
        return without_nul(value)
    raise InvalidParams(f"must be a string; got {value!r}"[:300])


def _identifier(value: Any, _type: Any) -> str:
    if value.__class__ is str and value and len(value) <= MAX_ID_LENGTH and "\x00" not in value:
        return value  # the common case first
    if not isinstance(value, str) or not value or "\x00" in value or len(value) > MAX_ID_LENGTH:
        raise InvalidParams(
            f"must be a non-empty string without NUL characters, at most {MAX_ID_LENGTH} long; "
            f"got {value!r}"[:300]
        )
    return value


def _count(value: Any, _type: Any) -> int:
    if value.__class__ is int and 0 <= value <= MAX_COUNT:
        return value
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
        raise InvalidParams(f"must be a whole number from 0 to {MAX_COUNT:,} (one model call); "
                            f"got {value!r}"[:300])
    return value


def _money(value: Any, _type: Any) -> float:
    if value.__class__ is float and 0 <= value <= MAX_MONEY:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= MAX_MONEY:
        raise InvalidParams(f"must be a finite number from 0 to {MAX_MONEY:,.0f} (US dollars for one model "
                            f"call: a larger one would make the sums overflow); got {value!r}"[:300])
    return float(value)


def _grade(value: Any, _type: Any) -> int:
    try:
        return parse_grade(value)
    except ValueError as exc:
        raise InvalidParams(str(exc)) from None


def _grader(value: Any, _type: Any) -> str:
    if value not in ("agent", "user") or not isinstance(value, str):
        raise InvalidParams(f'must be "agent" or "user"; got {value!r}')
    return value


# Clocks of two machines differ a little; an event from further in the future is a mistake.
FUTURE_TOLERANCE = timedelta(minutes=5)
# The forms of protocol/schema.json $defs/EventTime (fromisoformat alone accepts more).
_EVENT_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$")


def _event_time(value: Any, _type: Any) -> str:
    """``at``: an ISO-8601 date and time with a time zone → the stored form, 2026-11-26T05:00:00.123Z."""
    expected = "must be an ISO-8601 UTC timestamp like 2026-11-26T05:00:00.000Z (a date, a time and a zone)"
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidParams(f"{expected}; got {value!r}"[:300])
    if not _EVENT_TIME.match(value):
        if re.match(r"^\d{4}-\d{2}-\d{2}T[\d:.]+$", value):
            raise InvalidParams(f"{expected}; got {value!r}, which has no time zone (add Z for UTC)")
        raise InvalidParams(f"{expected}; got {value!r}"[:300])
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidParams(f"{expected}; got {value!r}"[:300]) from None
    moment = moment.astimezone(timezone.utc)
    if moment > datetime.now(timezone.utc) + FUTURE_TOLERANCE:
        raise InvalidParams(f"must not be in the future (it says when the event happened); got {value!r}")
    # The stored form (bridge.timestamps.iso_utc): fixed width, so records sort by time as text.
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _object(value: Any, _type: Any) -> dict[str, Any]:
    if value.__class__ is dict:
        return value
    if not isinstance(value, dict):
        raise InvalidParams(f"must be an object; got {value!r}"[:300])
    return value


def _definition(value: Any, _type: Any) -> dict[str, Any]:
    definition = _object(value, _type)
    try:
        size = len(orjson.dumps(definition))
    except TypeError as exc:  # values JSON cannot hold
        raise InvalidParams(f"must be JSON ({exc})") from None
    if size > MAX_DEFINITION_BYTES:
        raise InvalidParams(f"is {size:,} bytes of JSON; the limit is {MAX_DEFINITION_BYTES:,} bytes "
                            f"({MAX_DEFINITION_BYTES // 1024} KiB): shorten the agent's prompt")
    return definition


def _string_list(value: Any, _type: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidParams(f"must be a list of strings; got {value!r}"[:300])
    return [without_nul(item) for item in value]


def _objects_only(hook: Any) -> Any:
    def structure(value: Any, cls: Any) -> Any:
        return hook(_object(value, cls), cls)
    return structure


def _is_optional(type_: Any) -> bool:
    args = get_args(type_)
    return get_origin(type_) in (Union, types.UnionType) and len(args) == 2 and type(None) in args


def _optional_hook(type_: Any, converter: cattrs.Converter) -> Any:
    # cattrs' own Optional handling dispatches on the inner type at every call, a quarter of
    # the structuring time per event; the inner hook is looked up once here instead.
    inner = next(arg for arg in get_args(type_) if arg is not type(None))
    hook = converter.get_structure_hook(inner)

    def structure(value: Any, _type: Any) -> Any:
        return None if value is None else hook(value, inner)
    return structure


def make_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_structure_hook(str, _text)
    converter.register_structure_hook(bool, _strict(bool, "true or false"))
    converter.register_structure_hook(int, _strict(int, "an integer"))
    converter.register_structure_hook(float, _strict((int, float), "a number"))
    converter.register_structure_hook(Id, _identifier)
    converter.register_structure_hook(Count, _count)
    converter.register_structure_hook(Money, _money)
    converter.register_structure_hook(Grade, _grade)
    converter.register_structure_hook(Grader, _grader)
    converter.register_structure_hook(EventTime, _event_time)
    converter.register_structure_hook(Definition, _definition)
    converter.register_structure_hook_func(lambda t: t == dict[str, Any], _object)
    converter.register_structure_hook_func(lambda t: t == list[str], _string_list)
    converter.register_structure_hook_factory(_is_optional, _optional_hook)
    # Nested classes first: generated hooks capture the hooks of their field types.
    nested = (AgentRef, ProjectRef, ClientInfo, UsageTokens)
    for cls in (*nested, *dict.fromkeys(method.params for method in METHODS.values())):
        overrides = {f.name: override(rename=wire_name(f.name)) for f in attrs.fields(cls)}
        hook: Callable[[Any, Any], Any] = _structure_fn(cls, converter, **overrides)
        if cls in nested:  # a string or a list must not pass for an object of optional fields
            hook = _objects_only(hook)
        converter.register_structure_hook(cls, hook)
    return converter


CONVERTER = make_converter()
# Looked up once: cattrs' per-call dispatch shows up on the hot path.
_STRUCTURE_HOOKS = {name: CONVERTER.get_structure_hook(method.params) for name, method in METHODS.items()}
# The plain form of each method's params, structured without the converter (plain.py).
_PLAIN = {name: function for name, method in METHODS.items()
          if (function := plain_structure(method.params)) is not None}


def structure_params(method: str, params: Any) -> Any:
    """Raw wire params → the method's attrs class, or InvalidParams naming the field."""
    plain = _PLAIN.get(method)
    if plain is not None and params.__class__ is dict:
        try:
            return plain(params)
        except NotPlain:
            pass  # the converter decides, and words the error
    cls = METHODS[method].params
    if params is None:
        params = {}
    if type(params) is not dict and not isinstance(params, Mapping):
        raise InvalidParams(f"params of {method} must be an object; got {type(params).__name__}")
    try:
        return _STRUCTURE_HOOKS[method](params, cls)
    except Exception as exc:
        raise InvalidParams(f"{method}: {describe_errors(exc)}") from None


def describe_errors(exc: BaseException) -> str:
    messages = []
    for message in cattrs.transform_error(exc, path="params", format_exception=_format):
        text, _, path = message.rpartition(" @ ")
        wire_path = ".".join(wire_name(part) for part in path.split("."))
        messages.append(f"{wire_path} {text}")
    return "; ".join(messages)


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, InvalidParams):
        return str(exc)
    if isinstance(exc, KeyError):
        return "is required"
    return f"is invalid ({exc})"
