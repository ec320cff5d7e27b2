"""The baseline: the benchmarked operations as a bare Starlette app (no Connexion, no spec).

It does the same work per request as the real server, so that the ratio between the two is
the cost of the framework layers (Connexion's routing, security and validation middlewares,
parameter handling, our own middlewares):

- verify the HS256 session token with PyJWT and the same claim checks, then check once per
  process that its workspace exists (the real server caches that answer too);
- ``GET /v1/members/{member_id}``: one read transaction (``BEGIN``), one ``SELECT`` scoped by
  workspace (a statement built once, as the real repository's), the same JSON as the real
  ``Member`` response;
- ``POST /v1/crews``: one write transaction (``BEGIN IMMEDIATE``), the duplicate-name check,
  the insert inside a savepoint, the audit-log insert, ``COMMIT``; 201 with ``Location``.

Blocking database work runs in Starlette's thread pool, as Connexion runs our sync handlers.
Everything below the framework is the real app's (a gain counts only against this baseline):
the engine comes from the one engine factory (``domain.persistence.engine.make_engine``, pool
sized by the same ``DB_POOL_SIZE`` setting), writers queue on the same in-process SQLite write
lock and write through the same one connection, whose WAL is checkpointed the same way (ADR
0066, ADR 0067), and bodies are encoded with the same JSON encoder (``handlers.json_body``).
The table definitions are the project's (``domain.persistence.tables``), the database the one its
migrations build. Both servers run under the same uvicorn options (``bench/run.py``), with
the cycle collector tuned the same way (``scaicrew.gc_tuning``) and pinned to the same CPUs
(``CPU_AFFINITY``).

Serve with ``uvicorn --app-dir bench --factory bare_app:create_app`` and the environment
``DATABASE_URL`` and ``SESSION_SECRET``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import jwt
from sqlalchemy import Engine, and_, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.kernel import new_id
from domain.persistence import tables as orm
from domain.persistence.checkpoints import WalCheckpointer
from domain.persistence.engine import (
    WRITE_OPTION,
    make_engine,
    make_sqlite_writer_engine,
    sqlite_write_lock,
)
from handlers.json_body import json_bytes
from scaicrew.affinity import pin_to_cpus
from scaicrew.gc_tuning import settle_for_serving
from scaicrew.settings import Settings

_ROLES = {"viewer": 1, "operator": 2, "author": 3, "admin": 4}
_LEEWAY_SECONDS = 30


class Unauthorized(Exception):
    pass


class JSONResponse(Response):
    """Starlette's JSONResponse with the real app's encoder."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; everything stored is UTC
        value = value.replace(tzinfo=UTC)
    return value.isoformat().replace("+00:00", "Z")


def _problem(status: int, title: str, detail: str) -> Response:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def create_app() -> Starlette:
    settings = Settings.from_env()  # the same settings the real app reads
    secret = settings.session.secret.get_secret_value()
    issuer = settings.session.issuer
    audience = settings.session.audience
    url = settings.database_url
    engine = make_engine(url, pool_size=settings.db_pool_size)
    write_lock = sqlite_write_lock(url) if url.startswith("sqlite") else None
    # As the real app's Database: a SQLite file's writers share one connection (ADR 0066) and
    # its WAL is checkpointed off their path (ADR 0067).
    writer = make_sqlite_writer_engine(url)
    checkpoints = None if writer is None else WalCheckpointer(engine)
    known_workspaces: set[str] = set()

    def workspace_exists(workspace_id: str) -> bool:
        with engine.connect() as conn, conn.begin():
            stmt = select(orm.workspaces.c.id).where(orm.workspaces.c.id == workspace_id)
            return conn.execute(stmt).first() is not None

    async def authenticate(request: Request) -> dict[str, Any]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("No credential was given.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("The bearer token is not a well-formed JWT.") from None
        if header.get("alg") != "HS256":
            raise Unauthorized("Only session tokens are accepted here.")
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                audience=audience,
                issuer=issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"Invalid session token: {exc}") from None
        workspace_id = claims.get("workspace_id")
        if not isinstance(workspace_id, str) or not workspace_id:
            raise Unauthorized("Invalid session token: the token lacks the claim 'workspace_id'.")
        role = str(claims.get("role"))
        if role not in _ROLES:
            raise Unauthorized("The credential carries an unknown role.")
        if workspace_id not in known_workspaces:
            if not await run_in_threadpool(workspace_exists, workspace_id):
                raise Unauthorized("The credential names a workspace that does not exist.")
            known_workspaces.add(workspace_id)
        return {"sub": str(claims["sub"]), "workspace_id": workspace_id, "role": role}

    # Built once, as the real app's repository builds its statement once.
    m = orm.members
    member_by_id = select(m).where(
        m.c.workspace_id == bindparam("workspace_id"), m.c.id == bindparam("member_id")
    )

    def read_member(workspace_id: str, member_id: str) -> dict[str, Any] | None:
        with engine.connect() as conn:
            conn.begin()  # left uncommitted: closing the connection rolls it back
            params = {"workspace_id": workspace_id, "member_id": member_id}
            row = conn.execute(member_by_id, params).first()
        if row is None:
            return None
        return {
            "id": row.id,
            "crew_id": row.crew_id,
            "name": row.name,
            "description": row.description,
            "status": "published" if row.active_version_id else "draft",
            "active_version_id": row.active_version_id,
            "active_version_number": row.active_version_number,
            "draft_version_number": row.draft_version_number,
            "identity": row.identity,
            "archived": row.archived_at is not None,
            "archived_at": None if row.archived_at is None else _timestamp(row.archived_at),
            "created_at": _timestamp(row.created_at),
            "updated_at": _timestamp(row.updated_at),
        }

    def insert_crew(claims: dict[str, Any], name: str, description: str) -> dict[str, Any] | None:
        now = datetime.now(UTC)
        crew_id = new_id("crw")
        if write_lock is None or writer is None:
            return _insert(engine, claims, name, description, crew_id, now)
        with write_lock:
            created = _insert(writer, claims, name, description, crew_id, now)
            if created is not None and checkpoints is not None and checkpoints.committed():
                connection = writer.raw_connection()
                try:
                    checkpoints.finish(connection)
                finally:
                    connection.close()
            return created

    def _insert(
        bind: Engine,
        claims: dict[str, Any],
        name: str,
        description: str,
        crew_id: str,
        now: datetime,
    ) -> dict[str, Any] | None:
        workspace_id = claims["workspace_id"]
        c = orm.crews
        with bind.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
            taken = conn.execute(
                select(c.c.id).where(and_(c.c.workspace_id == workspace_id, c.c.name == name))
            ).first()
            if taken is not None:
                return None
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(c).values(
                            id=crew_id,
                            workspace_id=workspace_id,
                            name=name,
                            description=description,
                            created_at=now,
                            updated_at=now,
                        )
                    )
            except IntegrityError:
                return None
            conn.execute(
                insert(orm.audit_log).values(
                    id=new_id("aud"),
                    workspace_id=workspace_id,
                    at=now,
                    actor_subject=claims["sub"],
                    actor_kind="user",
                    action="crew.created",
                    subject_type="crew",
                    subject_id=crew_id,
                    data={"name": name},
                )
            )
        stamp = _timestamp(now)
        return {
            "id": crew_id,
            "name": name,
            "description": description,
            "created_at": stamp,
            "updated_at": stamp,
        }

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def get_member(request: Request) -> Response:
        try:
            claims = await authenticate(request)
        except Unauthorized as exc:
            return _problem(401, "Unauthorized", str(exc))
        member_id = request.path_params["member_id"]
        body = await run_in_threadpool(read_member, claims["workspace_id"], member_id)
        if body is None:
            return _problem(404, "Not Found", f"No member {member_id}.")
        return JSONResponse(body)

    async def create_crew(request: Request) -> Response:
        try:
            claims = await authenticate(request)
        except Unauthorized as exc:
            return _problem(401, "Unauthorized", str(exc))
        if _ROLES[claims["role"]] < _ROLES["author"]:
            return _problem(403, "Forbidden", "Requires role author.")
        try:
            payload = await request.json()
        except ValueError:
            return _problem(400, "Bad Request", "The body is not JSON.")
        name = payload.get("name") if isinstance(payload, dict) else None
        if not isinstance(name, str) or not name:
            return _problem(400, "Bad Request", "name is required.")
        description = str(payload.get("description", ""))
        crew = await run_in_threadpool(insert_crew, claims, name, description)
        if crew is None:
            return _problem(409, "Conflict", f"A crew named {name!r} exists.")
        return JSONResponse(crew, status_code=201, headers={"Location": f"/v1/crews/{crew['id']}"})

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1/members/{member_id}", get_member, methods=["GET"]),
            Route("/v1/crews", create_crew, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    settle_for_serving()  # the collector tuned as the real server's (scaicrew.cli.served_app)
    pin_to_cpus(settings.cpu_affinity)  # and pinned alike (CPU_AFFINITY)
    return app
