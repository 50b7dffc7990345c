"""Catalog routes: users, teams, services, API tokens. Thin: parse, call the service, commit, shape."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from relia.api.deps import IfMatchDep, NowDep, PageDep, PrincipalDep, SessionDep, etag
from relia.api.problems import CONFLICT, NOT_FOUND
from relia.catalog import identity, service
from relia.catalog.schemas import (
    PasswordSet,
    ServiceCreate,
    ServiceOut,
    ServiceUpdate,
    TeamCreate,
    TeamOut,
    TeamUpdate,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
    UserUpdate,
)
from relia.core.auth import hash_password
from relia.core.schemas import Page

router = APIRouter()

Key = Annotated[str, Path(max_length=63, description="The object's slug")]


# ----------------------------------------------------------------------------------------------- users


@router.get("/users", tags=["users"], summary="List users")
def list_users(
    session: SessionDep,
    actor: PrincipalDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=100, description="Search username, name or email")] = None,
) -> Page[UserOut]:
    users, next_cursor = service.list_users(session, cursor=page.cursor, limit=page.limit, query=q)
    return Page[UserOut](items=[service.user_out(user, actor) for user in users], next_cursor=next_cursor)


@router.post(
    "/users",
    tags=["users"],
    summary="Create a user (administrators)",
    status_code=status.HTTP_201_CREATED,
    responses=CONFLICT,
)
def create_user(body: UserCreate, session: SessionDep, actor: PrincipalDep, now: NowDep, response: Response) -> UserOut:
    # The answer is the object as this request wrote it, shaped before commit: read again afterwards, it
    # could already carry someone else's next change under a newer version.
    out = service.user_out(service.create_user(session, actor=actor, data=body, now=now), actor)
    session.commit()
    response.headers["ETag"] = etag(out.version)
    return out


@router.get("/users/me", tags=["users"], summary="The signed-in user", responses=NOT_FOUND)
def me(session: SessionDep, actor: PrincipalDep, response: Response) -> UserOut:
    user = service.get_user(session, actor.name)
    response.headers["ETag"] = etag(user.version)
    return service.user_out(user, actor)


@router.get("/users/{username}", tags=["users"], summary="Get a user", responses=NOT_FOUND)
def get_user(username: Key, session: SessionDep, actor: PrincipalDep, response: Response) -> UserOut:
    user = service.get_user(session, username)
    response.headers["ETag"] = etag(user.version)
    return service.user_out(user, actor)


@router.patch(
    "/users/{username}",
    tags=["users"],
    summary="Change a user (themself or administrators)",
    responses={**NOT_FOUND, **CONFLICT},
)
def update_user(
    username: Key,
    body: UserUpdate,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    if_match: IfMatchDep,
    response: Response,
) -> UserOut:
    user = service.update_user(session, actor=actor, username=username, changes=body, now=now, if_match=if_match)
    out = service.user_out(user, actor)  # as written by this request (see create_user)
    session.commit()
    response.headers["ETag"] = etag(out.version)
    return out


@router.delete(
    "/users/{username}",
    tags=["users"],
    summary="Delete a user (administrators)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **CONFLICT},
)
def delete_user(username: Key, session: SessionDep, actor: PrincipalDep, now: NowDep, if_match: IfMatchDep) -> None:
    service.delete_user(session, actor=actor, username=username, now=now, if_match=if_match)
    session.commit()


@router.put(
    "/users/{username}/password",
    tags=["users"],
    summary="Set a user's web password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NOT_FOUND,
)
def set_password(username: Key, body: PasswordSet, session: SessionDep, actor: PrincipalDep, now: NowDep) -> None:
    service.set_password(session, actor=actor, username=username, password_hash=hash_password(body.password), now=now)
    session.commit()


# ----------------------------------------------------------------------------------------------- teams


@router.get("/teams", tags=["teams"], summary="List teams")
def list_teams(session: SessionDep, actor: PrincipalDep, page: PageDep) -> Page[TeamOut]:
    teams, next_cursor = service.list_teams(session, cursor=page.cursor, limit=page.limit)
    return Page[TeamOut](items=[service.team_out(team) for team in teams], next_cursor=next_cursor)


@router.post(
    "/teams",
    tags=["teams"],
    summary="Create a team (administrators)",
    status_code=status.HTTP_201_CREATED,
    responses=CONFLICT,
)
def create_team(body: TeamCreate, session: SessionDep, actor: PrincipalDep, now: NowDep, response: Response) -> TeamOut:
    out = service.team_out(service.create_team(session, actor=actor, data=body, now=now))
    session.commit()  # after shaping the answer (see create_user)
    response.headers["ETag"] = etag(out.version)
    return out


@router.get("/teams/{slug}", tags=["teams"], summary="Get a team", responses=NOT_FOUND)
def get_team(slug: Key, session: SessionDep, actor: PrincipalDep, response: Response) -> TeamOut:
    team = service.get_team(session, slug)
    response.headers["ETag"] = etag(team.version)
    return service.team_out(team)


@router.patch(
    "/teams/{slug}",
    tags=["teams"],
    summary="Change a team (its managers or administrators)",
    responses={**NOT_FOUND, **CONFLICT},
)
def update_team(
    slug: Key,
    body: TeamUpdate,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    if_match: IfMatchDep,
    response: Response,
) -> TeamOut:
    team = service.update_team(session, actor=actor, slug=slug, changes=body, now=now, if_match=if_match)
    out = service.team_out(team)  # as written by this request (see create_user)
    session.commit()
    response.headers["ETag"] = etag(out.version)
    return out


@router.delete(
    "/teams/{slug}",
    tags=["teams"],
    summary="Delete a team (administrators)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **CONFLICT},
)
def delete_team(slug: Key, session: SessionDep, actor: PrincipalDep, now: NowDep, if_match: IfMatchDep) -> None:
    service.delete_team(session, actor=actor, slug=slug, now=now, if_match=if_match)
    session.commit()


# -------------------------------------------------------------------------------------------- services


@router.get(
    "/services",
    tags=["services"],
    summary="List services",
    response_model=Page[ServiceOut],
    responses={304: {"description": "Not modified (If-None-Match matched the list's ETag)"}},
)
async def list_services(
    request: Request,
    actor: PrincipalDep,
    page: PageDep,
    owner: Annotated[str | None, Query(max_length=63, description="Only services of this team")] = None,
    tier: Annotated[int | None, Query(ge=1, le=4)] = None,
    q: Annotated[str | None, Query(max_length=100, description="Search slug or name")] = None,
    if_none_match: Annotated[str | None, Header(description="An ETag of this list; 304 when unchanged")] = None,
) -> Response:
    # The hottest read: answered on the event loop from the render cache while the generation this process
    # read is fresh (core.generations.GenerationCache); otherwise one trip to the thread pool and the database.
    state = request.app.state
    params = (page.cursor, page.limit, owner, tier, q)
    generation = state.generation_cache.fresh(service.SERVICES_GENERATION)
    body = state.render_cache.peek(("services", generation, *params)) if generation is not None else None
    if body is None:
        generation, body = await run_in_threadpool(_services_list, state, params)
    key = (generation, *params)
    tag = f'W/"services-{generation}-{hashlib.sha256(repr(key).encode()).hexdigest()[:16]}"'
    if if_none_match is not None and tag in {value.strip() for value in if_none_match.split(",")}:
        return Response(status_code=304, headers={"ETag": tag})
    return Response(body, media_type="application/json", headers={"ETag": tag})


def _services_list(state: Any, params: tuple[Any, ...]) -> tuple[int, bytes]:
    cursor, limit, owner, tier, q = params
    with state.db.reader() as session:
        generation = state.generation_cache.read(session, service.SERVICES_GENERATION)

        def render() -> bytes:
            items, next_cursor = service.list_service_documents(
                session, cursor=cursor, limit=limit, owner=owner, tier=tier, query=q
            )
            # Already in ServiceOut's JSON shape (the response model documents it): no pydantic round trip.
            return json.dumps({"items": items, "nextCursor": next_cursor}).encode()

        # One cache per application (and so per database): a list is rendered once per change.
        return generation, state.render_cache.get_or_render(("services", generation, *params), render)


@router.post(
    "/services",
    tags=["services"],
    summary="Create a service (members of the owning team)",
    status_code=status.HTTP_201_CREATED,
    responses=CONFLICT,
)
def create_service(
    body: ServiceCreate, session: SessionDep, actor: PrincipalDep, now: NowDep, response: Response
) -> ServiceOut:
    out = service.service_out(service.create_service(session, actor=actor, data=body, now=now))
    session.commit()  # after shaping the answer (see create_user)
    response.headers["ETag"] = etag(out.version)
    return out


@router.get("/services/{slug}", tags=["services"], summary="Get a service", responses=NOT_FOUND)
def get_service(slug: Key, session: SessionDep, actor: PrincipalDep, response: Response) -> ServiceOut:
    svc = service.get_service(session, slug)
    response.headers["ETag"] = etag(svc.version)
    return service.service_out(svc)


@router.patch(
    "/services/{slug}",
    tags=["services"],
    summary="Change a service (members of the owning team)",
    responses={**NOT_FOUND, **CONFLICT},
)
def update_service(
    slug: Key,
    body: ServiceUpdate,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    if_match: IfMatchDep,
    response: Response,
) -> ServiceOut:
    svc = service.update_service(session, actor=actor, slug=slug, changes=body, now=now, if_match=if_match)
    out = service.service_out(svc)  # as written by this request (see create_user)
    session.commit()
    response.headers["ETag"] = etag(out.version)
    return out


@router.delete(
    "/services/{slug}",
    tags=["services"],
    summary="Delete a service (members of the owning team)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **CONFLICT},
)
def delete_service(slug: Key, session: SessionDep, actor: PrincipalDep, now: NowDep, if_match: IfMatchDep) -> None:
    service.delete_service(session, actor=actor, slug=slug, now=now, if_match=if_match)
    session.commit()


# ---------------------------------------------------------------------------------------------- tokens


@router.get("/tokens", tags=["tokens"], summary="List API tokens (yours; administrators may ask for anyone's)")
def list_tokens(
    session: SessionDep,
    actor: PrincipalDep,
    user: Annotated[str | None, Query(max_length=63)] = None,
) -> list[TokenOut]:
    return [
        identity.token_out(api_token, name)
        for api_token, name in identity.list_tokens(session, actor=actor, username=user)
    ]


@router.post(
    "/tokens",
    tags=["tokens"],
    summary="Create an API token; the secret is in this response only",
    status_code=status.HTTP_201_CREATED,
)
def create_token(body: TokenCreate, session: SessionDep, actor: PrincipalDep, now: NowDep) -> TokenCreated:
    api_token, username, plaintext = identity.create_token(session, actor=actor, data=body, now=now)
    session.commit()
    return TokenCreated(**identity.token_out(api_token, username).model_dump(), token=plaintext)


@router.delete("/tokens/{token_id}", tags=["tokens"], summary="Revoke an API token", responses=NOT_FOUND)
def revoke_token(
    token_id: Annotated[str, Path(max_length=32)], session: SessionDep, actor: PrincipalDep, now: NowDep
) -> TokenOut:
    api_token, username = identity.revoke_token(session, actor=actor, public_id=token_id, now=now)
    session.commit()
    return identity.token_out(api_token, username)
