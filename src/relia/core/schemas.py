"""Building blocks for the pydantic models every domain shares: camelCase at the edges, strict fields."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Generic, TypeVar
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

SLUG_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class ApiModel(BaseModel):
    """Every model at an edge (API JSON, config YAML): camelCase names, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        extra="forbid",
        str_strip_whitespace=True,
    )


class OutModel(BaseModel):
    """Response models: camelCase, tolerant of extra attributes."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True, from_attributes=True
    )


Slug = Annotated[
    str,
    StringConstraints(pattern=SLUG_PATTERN, max_length=63),
    Field(description="Lower-case letters, digits and dashes; starts and ends with a letter or digit."),
]


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_time_zone(value: str) -> str:
    if value not in _time_zones():
        raise ValueError(f"{value!r} is not an IANA time zone (for example Europe/Berlin or America/New_York)")
    return value


def _check_email(value: str) -> str:
    if not EMAIL_PATTERN.match(value):
        raise ValueError(f"{value!r} is not an email address")
    return value.lower()


TimeZone = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(_check_time_zone),
    Field(description="IANA time zone name", examples=["Europe/Berlin"]),
]
Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(_check_email)]


def _no_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; refusing it everywhere keeps both databases alike.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Name = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_no_nul)]
Text = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(_no_nul)]

T = TypeVar("T")


class Page(OutModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page.")


class Versioned(OutModel):
    version: int
    created_at: datetime
    updated_at: datetime
