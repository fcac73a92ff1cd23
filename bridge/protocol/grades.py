"""Grades on the wire: -1 bad, 1 neutral, 2 good, 5 excellence (numbers, or their names)."""

from __future__ import annotations

import math
from typing import Any

GRADE_NAMES = {-1: "bad", 1: "neutral", 2: "good", 5: "excellence"}
GRADE_VALUES = {name: value for value, name in GRADE_NAMES.items()}
VALID_GRADES_TEXT = "-1 (bad), 1 (neutral), 2 (good) or 5 (excellence)"


class InvalidGrade(ValueError):
    pass


def parse_grade(value: Any) -> int:
    """R7: exactly -1, 1, 2, 5 or their names. "2", 2.5, 3, true, null, NaN are rejected."""
    if isinstance(value, str) and value in GRADE_VALUES:
        return GRADE_VALUES[value]
    # JSON has one number type, so 2.0 is the number 2; a bool is never a grade.
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
            and float(value).is_integer() and int(value) in GRADE_NAMES:
        return int(value)
    raise InvalidGrade(f"must be {VALID_GRADES_TEXT} (numbers, or their names); got {value!r}")
