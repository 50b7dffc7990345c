"""Catalog input and output models. Spec models are shared by the API bodies and the config kinds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints, field_validator, model_validator

from relia.core.schemas import ApiModel, Email, Name, OutModel, Slug, Text, TimeZone, Versioned, _check_email

ContactKind = Literal["email", "slack", "teams", "discord", "ntfy", "webhook", "apprise"]

# Which URL schemes each kind accepts; apprise understands all of them.
_CONTACT_SCHEMES: dict[str, set[str]] = {
    "slack": {"slack", "https"},
    "teams": {"msteams", "workflows", "https"},
    "discord": {"discord", "https"},
    "ntfy": {"ntfy", "ntfys"},
    "webhook": {"json", "jsons", "http", "https"},
}


class ContactMethodSpec(ApiModel):
    name: Slug
    kind: ContactKind
    address: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(
        description="An email address for `email`; an apprise URL (or the vendor's webhook URL) otherwise."
    )

    @model_validator(mode="after")
    def _address_fits_kind(self) -> ContactMethodSpec:
        if self.kind == "email":
            self.address = _check_email(self.address)
            return self
        scheme = urlsplit(self.address).scheme.lower()
        if not scheme or "://" not in self.address:
            raise ValueError(f"address must be a URL (scheme://...) for a {self.kind} contact method")
        allowed = _CONTACT_SCHEMES.get(self.kind)
        if allowed is not None and scheme not in allowed:
            raise ValueError(f"a {self.kind} address must use one of: {', '.join(sorted(allowed))}")
        return self


class UserSpec(ApiModel):
    name: Name
    email: Email
    time_zone: TimeZone = "UTC"
    admin: bool = False
    active: bool = True
    contact_methods: list[ContactMethodSpec] = Field(default_factory=list, max_length=20)

    @field_validator("contact_methods")
    @classmethod
    def _unique_contact_names(cls, value: list[ContactMethodSpec]) -> list[ContactMethodSpec]:
        names = [method.name for method in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"contact method names must be unique; repeated: {', '.join(duplicates)}")
        return value


class UserCreate(UserSpec):
    username: Slug

    @field_validator("username")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        # /users/me is the caller; a user named "me" could never be addressed.
        if value == "me":
            raise ValueError("'me' is reserved")
        return value


class UserUpdate(ApiModel):
    name: Name | None = None
    email: Email | None = None
    time_zone: TimeZone | None = None
    admin: bool | None = None
    active: bool | None = None
    contact_methods: list[ContactMethodSpec] | None = Field(default=None, max_length=20)
    version: int | None = Field(default=None, description="The version you read; a stale one gets 409.")


class PasswordSet(ApiModel):
    password: Annotated[str, StringConstraints(min_length=10, max_length=200, strip_whitespace=False)]


class TeamRef(OutModel):
    team: str
    role: str


class ContactMethodOut(OutModel):
    name: str
    kind: str
    address: str | None = Field(description="Shown only to the user themself and to administrators.")


class UserOut(Versioned):
    username: str
    name: str
    email: str
    time_zone: str
    admin: bool
    active: bool
    contact_methods: list[ContactMethodOut]
    teams: list[TeamRef]


MemberRole = Literal["manager", "member"]


class MemberSpec(ApiModel):
    user: Slug
    role: MemberRole = "member"


class TeamSpec(ApiModel):
    name: Name
    description: Text = ""
    members: list[MemberSpec] = Field(default_factory=list, max_length=500)

    @field_validator("members")
    @classmethod
    def _unique_members(cls, value: list[MemberSpec] | None) -> list[MemberSpec] | None:
        if value is None:
            return None
        users = [member.user for member in value]
        duplicates = sorted({user for user in users if users.count(user) > 1})
        if duplicates:
            raise ValueError(f"each user may appear once; repeated: {', '.join(duplicates)}")
        return value


class TeamCreate(TeamSpec):
    slug: Slug


class TeamUpdate(ApiModel):
    name: Name | None = None
    description: Text | None = None
    members: list[MemberSpec] | None = Field(default=None, max_length=500)
    version: int | None = None

    _unique_members = field_validator("members")(TeamSpec._unique_members.__func__)  # type: ignore[attr-defined]


class MemberOut(OutModel):
    user: str
    name: str
    role: str


class TeamOut(Versioned):
    slug: str
    name: str
    description: str
    members: list[MemberOut]
    services: list[str]


LinkKind = Literal["dashboard", "runbook", "repository", "docs", "chat", "other"]


class LinkSpec(ApiModel):
    title: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    kind: LinkKind = "other"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL")
        return value


Tier = Annotated[int, Field(ge=1, le=4, description="1 = most critical, 4 = least")]


class ServiceSpec(ApiModel):
    name: Name
    owner: Slug = Field(description="The owning team's slug.")
    tier: Tier = 3
    description: Text = ""
    links: list[LinkSpec] = Field(default_factory=list, max_length=50)
    depends_on: list[Slug] = Field(default_factory=list, max_length=200)

    @field_validator("depends_on")
    @classmethod
    def _unique_dependencies(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        duplicates = sorted({slug for slug in value if value.count(slug) > 1})
        if duplicates:
            raise ValueError(f"each dependency may appear once; repeated: {', '.join(duplicates)}")
        return value


class ServiceCreate(ServiceSpec):
    slug: Slug


class ServiceUpdate(ApiModel):
    name: Name | None = None
    owner: Slug | None = None
    tier: Tier | None = None
    description: Text | None = None
    links: list[LinkSpec] | None = Field(default=None, max_length=50)
    depends_on: list[Slug] | None = Field(default=None, max_length=200)
    version: int | None = None

    _unique_dependencies = field_validator("depends_on")(
        ServiceSpec._unique_dependencies.__func__  # type: ignore[attr-defined]
    )


class LinkOut(OutModel):
    title: str
    url: str
    kind: str


class ServiceOut(Versioned):
    slug: str
    name: str
    owner: str
    tier: int
    description: str
    links: list[LinkOut]
    depends_on: list[str]
    dependents: list[str]


class TokenCreate(ApiModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    scope: Literal["read", "write", "admin"] = "read"
    user: Slug | None = Field(default=None, description="Administrators may create a token for another user.")
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenOut(OutModel):
    id: str
    name: str
    user: str
    scope: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The secret. It is shown once and cannot be read again.")
