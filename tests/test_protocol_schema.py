"""protocol/schema.json is the wire contract; the code must match it, both ways."""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path

import attrs
import pytest

from bridge.config import SCORING_RANGES, BridgeConfig, ScoringRules
from bridge.protocol import params as m
from bridge.protocol.methods import EVENT_METHODS, METHODS, OUTGOING_NOTIFICATIONS, Kind
from bridge.protocol.names import wire_name
from bridge.protocol.structure import structure_params
from bridge.rpc.server import ANSWERS
from bridge.tracking.service import TrackingService  # noqa: F401  (registers the event handlers)
from bridge.tracking.state import CHECKS, EVENTS

SCHEMA = json.loads((Path(__file__).parent.parent / "protocol" / "schema.json").read_text())


def resolve(node: dict) -> dict:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def json_type(annotation: typing.Any) -> str:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    if annotation in (m.Id, str, m.EventTime):
        return "string"
    if annotation is bool:
        return "boolean"
    if annotation in (int, m.Count):
        return "integer"
    if annotation in (float, m.Money):
        return "number"
    if annotation is m.Grade:
        return "grade"
    if annotation is m.Grader:
        return "grader"
    if annotation == list[str]:
        return "array"
    return "object"  # dict[str, Any] and nested attrs classes


def schema_type(node: dict) -> str:
    node = resolve(node)
    if node.get("enum") == ["agent", "user"]:
        return "grader"
    if "oneOf" in node and node["oneOf"][0].get("enum") == [-1, 1, 2, 5]:
        return "grade"
    return node["type"]


def check_class(cls: type, node: dict, where: str) -> None:
    node = resolve(node)
    hints = typing.get_type_hints(cls)
    fields = {wire_name(f.name): f for f in attrs.fields(cls)}
    assert set(node.get("properties", {})) == set(fields), f"{where}: fields differ"
    required = {name for name, f in fields.items() if f.default is attrs.NOTHING}
    assert set(node.get("required", [])) == required, f"{where}: required fields differ"
    for name, f in fields.items():
        prop = node["properties"][name]
        assert schema_type(prop) == json_type(hints[f.name]), f"{where}.{name}: type differs"
        inner = hints[f.name]
        if typing.get_origin(inner) in (typing.Union, types.UnionType):
            (inner,) = [a for a in typing.get_args(inner) if a is not type(None)]
        if attrs.has(inner):
            check_class(inner, prop, f"{where}.{name}")
        if inner in (m.Count, m.Money):  # the converter refuses negatives and unbounded sums: so does the schema
            assert resolve(prop)["minimum"] == 0, f"{where}.{name}: minimum differs"
            assert resolve(prop)["maximum"] == (m.MAX_COUNT if inner is m.Count else m.MAX_MONEY), \
                f"{where}.{name}: maximum differs"


def test_methods_match_both_ways() -> None:
    assert set(SCHEMA["methods"]) == set(METHODS)


def test_every_method_has_exactly_one_handler_and_every_handler_a_method() -> None:
    """Events are handled by tracking, everything else by the bridge itself: never both, never neither."""
    answered, tracked = set(ANSWERS), set(EVENTS)
    assert answered.isdisjoint(tracked)
    assert answered | tracked == set(SCHEMA["methods"])
    assert tracked == EVENT_METHODS
    assert set(CHECKS) <= EVENT_METHODS


@pytest.mark.parametrize("method", sorted(METHODS))
def test_parameter_classes_match_schema(method: str) -> None:
    spec = SCHEMA["methods"][method]
    if method != "initialize":  # initialize.config is validated by bridge.config (below)
        check_class(METHODS[method].params, spec["params"], method)
    assert spec["kind"] == METHODS[method].kind.value
    # Every event is sent as a notification; of the bridge's own methods only `exit` is.
    assert METHODS[method].kind is (Kind.NOTIFICATION if method in EVENT_METHODS or method == "exit"
                                    else Kind.REQUEST)


def test_every_event_and_only_events_take_the_event_time() -> None:
    """`at` is declared once (params.Event) and documented once (schema $defs/EventTime)."""
    for name, method in METHODS.items():
        assert issubclass(method.params, m.Event) is method.event, name
        at = SCHEMA["methods"][name]["params"].get("properties", {}).get("at")
        assert at == ({"$ref": "#/$defs/EventTime"} if method.event else None), name


def test_initialize_config_matches_bridge_config() -> None:
    config = resolve(SCHEMA["$defs"]["Config"])
    assert set(config["properties"]) == {wire_name(f.name) for f in attrs.fields(BridgeConfig)}
    scoring = resolve(SCHEMA["$defs"]["ScoringRules"])
    defaults = ScoringRules()
    assert {name: prop["default"] for name, prop in scoring["properties"].items()} == {
        wire_name(f.name): getattr(defaults, f.name) for f in attrs.fields(ScoringRules)}
    assert {name: (prop["minimum"], prop["maximum"]) for name, prop in scoring["properties"].items()} == {
        wire_name(name): bounds for name, bounds in SCORING_RANGES.items()}


def test_outgoing_notifications_match() -> None:
    assert set(SCHEMA["notificationsFromBridge"]) == set(OUTGOING_NOTIFICATIONS)


def test_grades_in_schema_are_the_rules_grades() -> None:
    from bridge.protocol.grades import GRADE_NAMES
    grade = SCHEMA["$defs"]["Grade"]["oneOf"]
    assert grade[0]["enum"] == sorted(GRADE_NAMES)
    assert grade[1]["enum"] == [GRADE_NAMES[v] for v in sorted(GRADE_NAMES)]


# -- the plain-form fast path (protocol/plain.py) against the converter ------------------------------

ODD_VALUES = [None, True, False, 0, 1, -1, 2, 5, 2.0, 0.5, -0.5, 1e300, "", "x", "good", "user", "\x00",
              "y" * 5000, [], ["a"], [1], {}, {"id": "build"}]


def _recorded_params() -> dict[str, list[dict]]:
    """Every event and request of the recordings and the example sessions: real, valid params."""
    root = Path(__file__).parent.parent
    found: dict[str, list[dict]] = {}
    for path in [*(root / "protocol" / "recordings").glob("*.jsonl"), *(root / "examples" / "sessions").glob("*.jsonl")]:
        for line in path.read_text().splitlines():
            message = json.loads(line).get("msg") if line.strip() else None
            if isinstance(message, dict) and message.get("method") in METHODS and isinstance(message.get("params"), dict):
                found.setdefault(message["method"], []).append(message["params"])
    return found


def _variants(params: dict) -> list[dict]:
    out = [params]
    for name, value in params.items():
        out.append({k: v for k, v in params.items() if k != name})
        out += [{**params, name: odd} for odd in ODD_VALUES]
        if isinstance(value, dict):
            for inner in value:
                out.append({**params, name: {k: v for k, v in value.items() if k != inner}})
                out += [{**params, name: {**value, inner: odd}} for odd in ODD_VALUES]
    return out


def test_the_plain_form_is_structured_as_the_converter_does() -> None:
    from bridge.protocol.plain import NotPlain, plain_structure
    from bridge.protocol.structure import _STRUCTURE_HOOKS, InvalidParams

    recorded = _recorded_params()
    assert {"usage.recorded", "tool.executed", "grade", "session.created"} <= set(recorded)
    fast_hits = compared = 0
    for method, examples in recorded.items():
        plain = plain_structure(METHODS[method].params)
        assert plain is not None, method
        for params in examples:
            for variant in _variants(params):
                try:
                    fast = plain(variant)
                except NotPlain:
                    continue
                fast_hits += variant is params
                try:
                    slow = _STRUCTURE_HOOKS[method](variant, METHODS[method].params)
                except Exception as exc:  # noqa: BLE001
                    raise AssertionError(f"{method}: the plain form took {variant!r}, the converter refused it: "
                                         f"{exc}") from None
                assert fast == slow and type(fast) is type(slow), (method, variant)
                compared += 1
    assert compared > 2000 and fast_hits > 50
    with pytest.raises(InvalidParams, match=r"^usage\.recorded: params\.tokens\.input must be a whole number"):
        structure_params("usage.recorded", {"sessionID": "s", "messageID": "m", "cost": 0.1, "tokens": {"input": 1.5}})
