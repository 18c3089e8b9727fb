"""Rows validated without building records (``validate_rows``, what batch writes check
instances and rows-only dicts with) give exactly the ``__dict__`` and the errors that
validating the records gives; models whose validation runs more than their fields' own take
the slower schema that runs it. Compile-only: no database."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import pydantic
import pytest
import sqlalchemy as sa
from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from activerecord import ActiveRecord
from activerecord.validation import _rows_validator, list_adapter, validate_rows

from .conftest import optional
from .models import Everything
from .test_properties import rows as everything_rows

hypothesis = optional("hypothesis", "dev")
st = optional("hypothesis.strategies", "dev")


class Model(ActiveRecord):
    __abstract__ = True
    __metadata__ = sa.MetaData()


class Stripped(Model):
    """Config, defaults, a factory, a no-info validator: all the fast typed-dict form."""

    __table_name__ = "vr_stripped"
    model_config = ConfigDict(str_strip_whitespace=True, str_to_lower=True)

    id: int | None = None
    name: Annotated[str, Field(min_length=2, max_length=8)]
    tags: list[str] = Field(default_factory=list)
    score: float = 0.5
    seen: dt.datetime | None = None

    @field_validator("score")
    @classmethod
    def _bounded(cls, value: float) -> float:
        if not 0 <= value <= 1:
            raise ValueError("score out of range")
        return round(value, 3)


class CrossField(Model):
    """A validator reading another field: the record's own schema hands it the data."""

    __table_name__ = "vr_cross"

    id: int | None = None
    low: int
    high: int

    @field_validator("high")
    @classmethod
    def _above(cls, value: int, info: ValidationInfo) -> int:
        if "low" in info.data and value < info.data["low"]:
            raise ValueError(f"high below low ({info.data['low']})")
        return value


class Whole(Model):
    """A model validator: the records are built."""

    __table_name__ = "vr_whole"

    id: int | None = None
    a: int
    b: int

    @model_validator(mode="after")
    def _sum(self) -> Whole:
        if self.a + self.b > 10:
            raise ValueError("a + b above 10")
        return self


def records_dicts(model: type[ActiveRecord], rows: list[Any]) -> list[dict[str, Any]]:
    """The reference: the records pydantic builds, their ``__dict__``."""
    return [r.__dict__ for r in list_adapter(model).validate_python(rows)]


def errors_of(call: Any) -> list[dict[str, Any]]:
    with pytest.raises(pydantic.ValidationError) as caught:
        call()
    # An error's ctx holds the exception raised, equal only to itself: compared as text.
    return [{**error, "ctx": {k: str(v) for k, v in error.get("ctx", {}).items()}}
            for error in caught.value.errors(include_url=False)]


def test_each_model_takes_the_form_its_validation_needs():
    assert _rows_validator(Stripped) is not None
    assert _rows_validator(CrossField) is not None  # model-fields: info.data is handed
    assert _rows_validator(Whole) is None  # the records are built


@pytest.mark.parametrize(
    ("model", "rows"),
    [
        (Stripped, [{"name": "  AbC "}, {"name": "xy", "tags": ["t"], "score": "0.12345",
                                         "seen": "2024-05-01T12:30:15.123456"}]),
        (CrossField, [{"low": 1, "high": 2}, {"low": "3", "high": 3, "id": 9}]),
        (Whole, [{"a": 1, "b": 2}, {"a": "4", "b": 5}]),
    ],
)
def test_valid_rows_give_the_records_fields(model, rows):
    got = validate_rows(model, rows)
    want = records_dicts(model, rows)
    assert got == want
    assert [list(d) for d in got] == [list(d) for d in want]  # the fields' order too
    assert all(type(a[k]) is type(b[k]) for a, b in zip(got, want) for k in b)


@pytest.mark.parametrize(
    ("model", "rows"),
    [
        (Stripped, [{"name": "ok"}, {"name": " a "}, {"name": "toolongname"},
                    {"name": "ok", "score": 2}, {"name": 5, "tags": "x"}, {}]),
        (CrossField, [{"low": 5, "high": 1}, {"low": "x", "high": 1}, {"high": 2}]),
        (Whole, [{"a": 9, "b": 9}, {"a": "x", "b": 1}]),
    ],
)
def test_invalid_rows_raise_the_records_errors(model, rows):
    got = errors_of(lambda: validate_rows(model, rows))
    want = errors_of(lambda: list_adapter(model).validate_python(rows))
    assert got == want


def test_the_default_factory_gives_each_row_its_own_value():
    first, second = validate_rows(Stripped, [{"name": "ab"}, {"name": "cd"}])
    assert first["tags"] == [] and first["tags"] is not second["tags"]


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(st.lists(everything_rows("sqlite"), max_size=5))
def test_every_type_validates_as_the_records_do(rows):
    assert validate_rows(Everything, rows) == records_dicts(Everything, rows)
    assert _rows_validator(Everything) is not None
