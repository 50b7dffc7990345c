"""Catalog use cases. Keyword-only functions taking a session; the caller owns the transaction.

Every change checks the actor's rights, bumps the object's version, and records an audit entry with the
object's spec before and after.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.attributes import flag_modified

from relia.catalog import rules
from relia.catalog.models import ContactMethod, Service, Team, TeamMembership, User, service_dependencies
from relia.catalog.schemas import (
    ContactMethodOut,
    ContactMethodSpec,
    LinkSpec,
    MemberOut,
    MemberSpec,
    ServiceCreate,
    ServiceOut,
    ServiceSpec,
    ServiceUpdate,
    TeamCreate,
    TeamOut,
    TeamRef,
    TeamSpec,
    TeamUpdate,
    UserCreate,
    UserOut,
    UserSpec,
    UserUpdate,
)
from relia.core import audit, generations
from relia.core.auth import Principal
from relia.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound, PreconditionFailed
from relia.core.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor

# ---------------------------------------------------------------------------------------------- versions


def check_version(kind: str, key: str, current: int, expected: int | None, *, if_match: bool = False) -> None:
    """A stale version is refused: 412 when it came as If-Match, 409 when it came in the body."""
    if expected is None or expected == current:
        return
    error = PreconditionFailed if if_match else Conflict
    raise error(
        f"{kind} {key!r} is at version {current}, not {expected}: it changed since you read it. "
        "Read it again and reapply your change.",
        errors=[FieldError("version", f"stale version {expected}; current is {current}")],
        currentVersion=current,
    )


# ------------------------------------------------------------------------------------------------- users


def get_user(session: Session, username: str, *, for_update: bool = False) -> User:
    statement = (
        select(User)
        .where(User.username == username)
        .options(selectinload(User.contact_methods), selectinload(User.memberships).joinedload(TeamMembership.team))
    )
    user = session.scalars(_locked(statement, User) if for_update else statement).one_or_none()
    if user is None:
        raise NotFound(f"There is no user {username!r}.")
    return user


def list_users(
    session: Session, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT, query: str | None = None
) -> tuple[list[User], str | None]:
    statement = (
        select(User)
        .options(selectinload(User.contact_methods), selectinload(User.memberships).joinedload(TeamMembership.team))
        .order_by(User.username)
    )
    after = decode_cursor(cursor)
    if after is not None:
        statement = statement.where(User.username > str(after))
    if query:
        # autoescape: '%' and '_' in what the user typed are literal characters, not LIKE wildcards.
        needle = query.lower()
        statement = statement.where(
            or_(
                func.lower(User.username).contains(needle, autoescape=True),
                func.lower(User.name).contains(needle, autoescape=True),
                User.email.contains(needle, autoescape=True),
            )
        )
    return _page(session.scalars(statement.limit(limit + 1)).all(), limit, lambda user: user.username)


def user_spec(user: User) -> dict[str, Any]:
    return UserSpec.model_construct(
        name=user.name,
        email=user.email,
        time_zone=user.time_zone,
        admin=user.is_admin,
        active=user.is_active,
        contact_methods=[
            ContactMethodSpec.model_construct(name=method.name, kind=method.kind, address=method.address)
            for method in user.contact_methods
        ],
    ).model_dump(mode="json")


def user_out(user: User, viewer: Principal) -> UserOut:
    may_see_addresses = viewer.acts_as_admin or viewer.user_id == user.id
    return UserOut(
        username=user.username,
        name=user.name,
        email=user.email,
        time_zone=user.time_zone,
        admin=user.is_admin,
        active=user.is_active,
        contact_methods=[
            ContactMethodOut(name=method.name, kind=method.kind, address=method.address if may_see_addresses else None)
            for method in user.contact_methods
        ],
        teams=sorted(
            (TeamRef(team=membership.team.slug, role=membership.role) for membership in user.memberships),
            key=lambda ref: ref.team,
        ),
        version=user.version,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


def _ensure_unique_user(session: Session, *, username: str | None, email: str | None, exclude_id: int | None) -> None:
    if username is not None:
        clash = session.scalar(select(User.id).where(User.username == username))
        if clash is not None and clash != exclude_id:
            raise Conflict(f"A user {username!r} exists already.", errors=[FieldError("username", "already taken")])
    if email is not None:
        clash = session.scalar(select(User.id).where(User.email == email))
        if clash is not None and clash != exclude_id:
            raise Conflict(f"Another user has the email {email!r}.", errors=[FieldError("email", "already taken")])


def _set_contact_methods(user: User, methods: Sequence[Any]) -> None:
    existing = {method.name: method for method in user.contact_methods}
    kept: list[ContactMethod] = []
    for position, spec in enumerate(methods):
        method = existing.get(spec.name) or ContactMethod(name=spec.name)
        method.kind, method.address, method.position = spec.kind, spec.address, position
        kept.append(method)
    user.contact_methods = kept


def create_user(
    session: Session, *, actor: Principal, data: UserCreate, now: datetime, config_managed: bool = False
) -> User:
    actor.require_admin()
    _ensure_unique_user(session, username=data.username, email=data.email, exclude_id=None)
    user = User(
        username=data.username,
        name=data.name,
        email=data.email,
        time_zone=data.time_zone,
        is_admin=data.admin,
        is_active=data.active,
        created_at=now,
        updated_at=now,
        config_managed=config_managed,
    )
    _set_contact_methods(user, data.contact_methods)
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        kind="User",
        key=user.username,
        before=None,
        after=user_spec(user),
        now=now,
    )
    return user


def update_user(
    session: Session,
    *,
    actor: Principal,
    username: str,
    changes: UserUpdate,
    now: datetime,
    if_match: int | None = None,
    config_managed: bool | None = None,
) -> User:
    user = get_user(session, username, for_update=True)
    is_self = actor.user_id == user.id
    actor.require_write()
    if not (actor.acts_as_admin or is_self):
        raise Forbidden("Only the user themself or an administrator may change a user.")
    grants = (changes.admin is not None and changes.admin != user.is_admin) or (
        changes.active is not None and changes.active != user.is_active
    )
    if grants and not actor.acts_as_admin:
        raise Forbidden("Only an administrator may grant or revoke admin rights or deactivate a user.")
    check_version("User", username, user.version, if_match, if_match=True)
    check_version("User", username, user.version, changes.version)
    # Written in one flush at the end: a query in between (the email check, say) would otherwise flush part
    # of the change early, and one change would raise the version twice.
    with session.no_autoflush:
        before = user_spec(user)
        if changes.email is not None:
            _ensure_unique_user(session, username=None, email=changes.email, exclude_id=user.id)
            user.email = changes.email
        if changes.name is not None:
            user.name = changes.name
        if changes.time_zone is not None:
            user.time_zone = changes.time_zone
        if changes.admin is not None:
            user.is_admin = changes.admin
        if changes.active is not None:
            user.is_active = changes.active
        if changes.contact_methods is not None:
            _set_contact_methods(user, changes.contact_methods)
        if config_managed is not None:
            user.config_managed = config_managed
        after = user_spec(user)
    if after != before:
        _mark_changed(user, now)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="update",
            kind="User",
            key=username,
            before=before,
            after=after,
            now=now,
        )
    return user


def delete_user(
    session: Session, *, actor: Principal, username: str, now: datetime, if_match: int | None = None
) -> None:
    actor.require_admin()
    user = get_user(session, username, for_update=True)
    check_version("User", username, user.version, if_match, if_match=True)
    if actor.user_id == user.id:
        raise Conflict("You cannot delete your own account.")
    before = user_spec(user)
    session.delete(user)
    session.flush()
    audit.record(session, actor=actor, action="delete", kind="User", key=username, before=before, after=None, now=now)


def set_password(session: Session, *, actor: Principal, username: str, password_hash: str, now: datetime) -> None:
    user = get_user(session, username, for_update=True)
    actor.require_write()
    if not (actor.acts_as_admin or actor.user_id == user.id):
        raise Forbidden("Only the user themself or an administrator may set a password.")
    user.password_hash = password_hash
    user.updated_at = now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="set-password",
        kind="User",
        key=username,
        before=None,
        after=None,
        now=now,
    )


# ------------------------------------------------------------------------------------------------- teams


def get_team(session: Session, slug: str, *, for_update: bool = False) -> Team:
    statement = (
        select(Team)
        .where(Team.slug == slug)
        .options(selectinload(Team.memberships).joinedload(TeamMembership.user), selectinload(Team.services))
    )
    team = session.scalars(_locked(statement, Team) if for_update else statement).one_or_none()
    if team is None:
        raise NotFound(f"There is no team {slug!r}.")
    return team


def list_teams(
    session: Session, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT
) -> tuple[list[Team], str | None]:
    statement = (
        select(Team)
        .options(selectinload(Team.memberships).joinedload(TeamMembership.user), selectinload(Team.services))
        .order_by(Team.slug)
    )
    after = decode_cursor(cursor)
    if after is not None:
        statement = statement.where(Team.slug > str(after))
    return _page(session.scalars(statement.limit(limit + 1)).all(), limit, lambda team: team.slug)


def team_spec(team: Team) -> dict[str, Any]:
    members = sorted(team.memberships, key=lambda membership: membership.user.username)
    return TeamSpec.model_construct(
        name=team.name,
        description=team.description,
        members=[
            MemberSpec.model_construct(user=membership.user.username, role=membership.role) for membership in members
        ],
    ).model_dump(mode="json")


def team_out(team: Team) -> TeamOut:
    members = sorted(team.memberships, key=lambda membership: membership.user.username)
    return TeamOut(
        slug=team.slug,
        name=team.name,
        description=team.description,
        members=[MemberOut(user=m.user.username, name=m.user.name, role=m.role) for m in members],
        services=sorted(service.slug for service in team.services),
        version=team.version,
        created_at=team.created_at,
        updated_at=team.updated_at,
    )


def _resolve_users(session: Session, usernames: Iterable[str], path: str) -> dict[str, User]:
    wanted = list(usernames)
    found = {user.username: user for user in session.scalars(select(User).where(User.username.in_(wanted)))}
    missing = [
        FieldError(f"{path}.{index}.user", f"there is no user {name!r}")
        for index, name in enumerate(wanted)
        if name not in found
    ]
    if missing:
        raise InvalidInput("A team member refers to a user that does not exist.", errors=missing)
    return found


def _set_members(session: Session, team: Team, members: Sequence[Any]) -> None:
    users = _resolve_users(session, (member.user for member in members), "members")
    existing = {membership.user_id: membership for membership in team.memberships}
    kept = []
    for member in members:
        user = users[member.user]
        membership = existing.get(user.id) or TeamMembership(user=user)
        membership.role = member.role
        kept.append(membership)
    team.memberships = kept


def create_team(
    session: Session, *, actor: Principal, data: TeamCreate, now: datetime, config_managed: bool = False
) -> Team:
    actor.require_admin()
    if session.scalar(select(Team.id).where(Team.slug == data.slug)) is not None:
        raise Conflict(f"A team {data.slug!r} exists already.", errors=[FieldError("slug", "already taken")])
    team = Team(
        slug=data.slug,
        name=data.name,
        description=data.description,
        created_at=now,
        updated_at=now,
        config_managed=config_managed,
    )
    team.memberships = []
    team.services = []
    _set_members(session, team, data.members)
    session.add(team)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        kind="Team",
        key=team.slug,
        before=None,
        after=team_spec(team),
        now=now,
    )
    return team


def update_team(
    session: Session,
    *,
    actor: Principal,
    slug: str,
    changes: TeamUpdate,
    now: datetime,
    if_match: int | None = None,
    config_managed: bool | None = None,
) -> Team:
    team = get_team(session, slug, for_update=True)
    actor.require_team_manager(team.id, f"team {slug!r}")
    check_version("Team", slug, team.version, if_match, if_match=True)
    check_version("Team", slug, team.version, changes.version)
    with session.no_autoflush:  # one flush, one version (see update_user)
        before = team_spec(team)
        if changes.name is not None:
            team.name = changes.name
        if changes.description is not None:
            team.description = changes.description
        if changes.members is not None:
            _set_members(session, team, changes.members)
        if config_managed is not None:
            team.config_managed = config_managed
        after = team_spec(team)
    if after != before:
        _mark_changed(team, now)
        session.flush()
        audit.record(session, actor=actor, action="update", kind="Team", key=slug, before=before, after=after, now=now)
    return team


def delete_team(session: Session, *, actor: Principal, slug: str, now: datetime, if_match: int | None = None) -> None:
    actor.require_admin()
    team = get_team(session, slug, for_update=True)
    check_version("Team", slug, team.version, if_match, if_match=True)
    if team.services:
        owned = ", ".join(sorted(service.slug for service in team.services))
        raise Conflict(f"Team {slug!r} still owns services ({owned}); give them another owner first.")
    before = team_spec(team)
    session.delete(team)
    session.flush()
    audit.record(session, actor=actor, action="delete", kind="Team", key=slug, before=before, after=None, now=now)


# ---------------------------------------------------------------------------------------------- services


# The key of the PostgreSQL advisory lock that dependency changes take: any fixed number will do.
_DEPENDENCY_GRAPH_LOCK = 0x72656C6961  # "relia"

_SERVICE_LOADS = (
    joinedload(Service.owner_team),
    selectinload(Service.dependencies),
    selectinload(Service.dependents),
)


def get_service(session: Session, slug: str, *, for_update: bool = False) -> Service:
    statement = select(Service).where(Service.slug == slug).options(*_SERVICE_LOADS)
    service = session.scalars(_locked(statement, Service) if for_update else statement).unique().one_or_none()
    if service is None:
        raise NotFound(f"There is no service {slug!r}.")
    return service


def list_services(
    session: Session,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    owner: str | None = None,
    tier: int | None = None,
    query: str | None = None,
) -> tuple[list[Service], str | None]:
    statement = select(Service).options(*_SERVICE_LOADS).order_by(Service.slug)
    after = decode_cursor(cursor)
    if after is not None:
        statement = statement.where(Service.slug > str(after))
    if owner:
        statement = statement.join(Team, Service.owner_team_id == Team.id).where(Team.slug == owner)
    if tier is not None:
        statement = statement.where(Service.tier == tier)
    if query:
        # autoescape: '%' and '_' in what the user typed are literal characters, not LIKE wildcards.
        needle = query.lower()
        statement = statement.where(
            or_(
                func.lower(Service.slug).contains(needle, autoescape=True),
                func.lower(Service.name).contains(needle, autoescape=True),
            )
        )
    rows = session.scalars(statement.limit(limit + 1)).unique().all()
    return _page(rows, limit, lambda service: service.slug)


_DEPENDENCY = Service.__table__.alias("dependency")
SERVICES_GENERATION = "services"


def list_service_documents(
    session: Session,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    owner: str | None = None,
    tier: int | None = None,
    query: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """What ``list_services`` lists, as the API's JSON documents (ServiceOut's camelCase shape), read with
    three plain queries and built as dicts: the list is the API's most requested page, and loading 100
    services with their relationships through the ORM and pydantic cost ten times the rest of the request."""
    statement = (
        select(
            Service.id,
            Service.slug,
            Service.name,
            Team.slug,
            Service.tier,
            Service.description,
            Service.links,
            Service.version,
            Service.created_at,
            Service.updated_at,
        )
        .join(Team, Service.owner_team_id == Team.id)
        .order_by(Service.slug)
    )
    after = decode_cursor(cursor)
    if after is not None:
        statement = statement.where(Service.slug > str(after))
    if owner:
        statement = statement.where(Team.slug == owner)
    if tier is not None:
        statement = statement.where(Service.tier == tier)
    if query:
        needle = query.lower()
        statement = statement.where(
            or_(
                func.lower(Service.slug).contains(needle, autoescape=True),
                func.lower(Service.name).contains(needle, autoescape=True),
            )
        )
    rows = session.execute(statement.limit(limit + 1)).all()
    page, next_cursor = _page(rows, limit, lambda row: row[1])
    ids = [row[0] for row in page]
    depends_on: dict[int, list[str]] = {service_id: [] for service_id in ids}
    dependents: dict[int, list[str]] = {service_id: [] for service_id in ids}
    if ids:
        edges = service_dependencies
        for service_id, slug in session.execute(
            select(edges.c.service_id, _DEPENDENCY.c.slug)
            .join(_DEPENDENCY, _DEPENDENCY.c.id == edges.c.depends_on_id)
            .where(edges.c.service_id.in_(ids))
            .order_by(_DEPENDENCY.c.slug)
        ).all():
            depends_on[service_id].append(slug)
        for service_id, slug in session.execute(
            select(edges.c.depends_on_id, _DEPENDENCY.c.slug)
            .join(_DEPENDENCY, _DEPENDENCY.c.id == edges.c.service_id)
            .where(edges.c.depends_on_id.in_(ids))
            .order_by(_DEPENDENCY.c.slug)
        ).all():
            dependents[service_id].append(slug)
    documents = [
        {
            "slug": slug,
            "name": name,
            "owner": owner_slug,
            "tier": tier_value,
            "description": description,
            "links": [{"title": link["title"], "url": link["url"], "kind": link["kind"]} for link in links or []],
            "dependsOn": depends_on[service_id],
            "dependents": dependents[service_id],
            "version": version,
            "createdAt": created_at.isoformat(),
            "updatedAt": updated_at.isoformat(),
        }
        for service_id, slug, name, owner_slug, tier_value, description, links, version, created_at, updated_at in page
    ]
    return documents, next_cursor


def service_spec(service: Service) -> dict[str, Any]:
    return ServiceSpec.model_construct(
        name=service.name,
        owner=service.owner_team.slug,
        tier=service.tier,
        description=service.description,
        links=[LinkSpec.model_construct(**link) for link in service.links or []],
        depends_on=sorted(dependency.slug for dependency in service.dependencies),
    ).model_dump(mode="json")


def service_out(service: Service) -> ServiceOut:
    return ServiceOut(
        slug=service.slug,
        name=service.name,
        owner=service.owner_team.slug,
        tier=service.tier,
        description=service.description,
        links=list(service.links or []),
        depends_on=[dependency.slug for dependency in service.dependencies],
        dependents=[dependent.slug for dependent in service.dependents],
        version=service.version,
        created_at=service.created_at,
        updated_at=service.updated_at,
    )


def _team_by_slug(session: Session, slug: str, path: str) -> Team:
    team = session.scalars(select(Team).where(Team.slug == slug)).one_or_none()
    if team is None:
        raise InvalidInput(f"There is no team {slug!r}.", errors=[FieldError(path, f"there is no team {slug!r}")])
    return team


def _resolve_dependencies(session: Session, service: Service, slugs: Sequence[str]) -> list[Service]:
    if service.slug in slugs:
        raise InvalidInput(
            "A service cannot depend on itself.",
            errors=[FieldError(f"dependsOn.{list(slugs).index(service.slug)}", "a service cannot depend on itself")],
        )
    found = {s.slug: s for s in session.scalars(select(Service).where(Service.slug.in_(list(slugs))))}
    missing = [
        FieldError(f"dependsOn.{index}", f"there is no service {slug!r}")
        for index, slug in enumerate(slugs)
        if slug not in found
    ]
    if missing:
        raise InvalidInput("A dependency refers to a service that does not exist.", errors=missing)
    if slugs and session.get_bind().dialect.name == "postgresql":
        # Dependency changes take turns, so each checks for cycles in a graph that includes the others'
        # changes; otherwise two could together close a cycle neither saw. (SQLite writers take turns anyway.)
        session.execute(select(func.pg_advisory_xact_lock(_DEPENDENCY_GRAPH_LOCK)))
    edges: dict[int, set[int]] = {}
    for source, target in session.execute(
        select(service_dependencies.c.service_id, service_dependencies.c.depends_on_id)
    ):
        edges.setdefault(source, set()).add(target)
    if service.id is not None:
        edges[service.id] = {found[slug].id for slug in slugs}
        cycle = rules.find_cycle(edges, start=service.id)
        if cycle:
            names = dict(session.execute(select(Service.id, Service.slug).where(Service.id.in_(cycle))).all())
            path = " -> ".join(names[node] for node in [*cycle, cycle[0]])
            raise InvalidInput(
                f"These dependencies would make a cycle: {path}.",
                errors=[FieldError("dependsOn", f"dependency cycle: {path}")],
            )
    return [found[slug] for slug in slugs]


def create_service(
    session: Session, *, actor: Principal, data: ServiceCreate, now: datetime, config_managed: bool = False
) -> Service:
    owner = _team_by_slug(session, data.owner, "owner")
    actor.require_team(owner.id, f"services owned by team {owner.slug!r}")
    if session.scalar(select(Service.id).where(Service.slug == data.slug)) is not None:
        raise Conflict(f"A service {data.slug!r} exists already.", errors=[FieldError("slug", "already taken")])
    service = Service(
        slug=data.slug,
        name=data.name,
        description=data.description,
        tier=data.tier,
        owner_team=owner,
        links=[link.model_dump(mode="json") for link in data.links],
        created_at=now,
        updated_at=now,
        config_managed=config_managed,
    )
    service.dependencies = []
    session.add(service)
    session.flush()
    service.dependencies = _resolve_dependencies(session, service, data.depends_on)
    session.flush()
    generations.bump(session, SERVICES_GENERATION)
    audit.record(
        session,
        actor=actor,
        action="create",
        kind="Service",
        key=service.slug,
        before=None,
        after=service_spec(service),
        now=now,
    )
    return service


def update_service(
    session: Session,
    *,
    actor: Principal,
    slug: str,
    changes: ServiceUpdate,
    now: datetime,
    if_match: int | None = None,
    config_managed: bool | None = None,
) -> Service:
    service = get_service(session, slug, for_update=True)
    actor.require_team(service.owner_team_id, f"service {slug!r}")
    check_version("Service", slug, service.version, if_match, if_match=True)
    check_version("Service", slug, service.version, changes.version)
    with session.no_autoflush:  # one flush, one version (see update_user)
        before = service_spec(service)
        if changes.owner is not None and changes.owner != service.owner_team.slug:
            new_owner = _team_by_slug(session, changes.owner, "owner")
            actor.require_team(new_owner.id, f"services owned by team {new_owner.slug!r}")
            service.owner_team = new_owner
        if changes.name is not None:
            service.name = changes.name
        if changes.tier is not None:
            service.tier = changes.tier
        if changes.description is not None:
            service.description = changes.description
        if changes.links is not None:
            service.links = [link.model_dump(mode="json") for link in changes.links]
        if changes.depends_on is not None:
            service.dependencies = _resolve_dependencies(session, service, changes.depends_on)
        if config_managed is not None:
            service.config_managed = config_managed
        after = service_spec(service)
    if after != before:
        _mark_changed(service, now)
        session.flush()
        generations.bump(session, SERVICES_GENERATION)
        audit.record(
            session,
            actor=actor,
            action="update",
            kind="Service",
            key=slug,
            before=before,
            after=after,
            now=now,
        )
    return service


def delete_service(
    session: Session, *, actor: Principal, slug: str, now: datetime, if_match: int | None = None
) -> None:
    service = get_service(session, slug, for_update=True)
    actor.require_team(service.owner_team_id, f"service {slug!r}")
    check_version("Service", slug, service.version, if_match, if_match=True)
    # Asked of the database, not the loaded collection: an apply may have just removed these dependencies.
    session.flush()
    users = session.scalars(
        select(Service.slug)
        .join(service_dependencies, service_dependencies.c.service_id == Service.id)
        .where(service_dependencies.c.depends_on_id == service.id)
        .order_by(Service.slug)
    ).all()
    if users:
        raise Conflict(f"Service {slug!r} is a dependency of {', '.join(users)}; remove those dependencies first.")
    before = service_spec(service)
    session.delete(service)
    session.flush()
    generations.bump(session, SERVICES_GENERATION)
    audit.record(session, actor=actor, action="delete", kind="Service", key=slug, before=before, after=None, now=now)


# ---------------------------------------------------------------------------------------------- helpers


def _mark_changed(obj: Any, now: datetime) -> None:
    """Bump the object's version even when only related rows changed (members, contact methods,
    dependencies) and the clock has not moved: the row must then be written all the same."""
    obj.updated_at = now
    flag_modified(obj, "updated_at")


def _locked(statement: Select[Any], entity: type[Any]) -> Select[Any]:
    """The row read for a change, locked until commit on PostgreSQL: concurrent writers of one object take
    turns, so each sees the other's version (a stale If-Match gets 412) instead of failing at UPDATE time.
    NO KEY UPDATE (``key_share``) is what the UPDATE itself takes; it does not block foreign-key checks."""
    return statement.with_for_update(of=entity, key_share=True)


def _page(rows: Sequence[Any], limit: int, key: Any) -> tuple[list[Any], str | None]:
    items = list(rows[:limit])
    next_cursor = encode_cursor(key(items[-1])) if len(rows) > limit and items else None
    return items, next_cursor
