"""Persistence of the cost ledger: one row per model call, append-only (nothing commits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, func, insert, select

from domain.cost.model import CostGroup, MemberCost
from domain.kernel.ids import new_id
from domain.kernel.unit_of_work import UnitOfWork
from domain.persistence import tables
from domain.persistence.driver import DriverStatements


class CostLedger:
    def __init__(self, connection: Connection) -> None:
        self._c = connection
        self._hot = DriverStatements(connection)  # a row per model call

    def add(
        self,
        workspace_id: str,
        run_id: str,
        member_id: str,
        model: str,
        tokens_in: int,
        tokens_out: int,
        cost_units: float,
        now: datetime,
    ) -> None:
        self._hot.execute(
            _INSERT_COST,
            {
                "id": new_id("cst"),
                "workspace_id": workspace_id,
                "run_id": run_id,
                "member_id": member_id,
                "at": now,
                "model": model,
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "cost_units": cost_units,
            },
        )

    def by_member(self, workspace_id: str, start: datetime, end: datetime) -> list[MemberCost]:
        """Runs created and ledger rows written in ``[start, end)``, per member."""
        r, c = tables.runs, tables.cost_ledger
        run_rows = self._c.execute(
            select(r.c.member_id, func.count().label("runs"))
            .where(r.c.workspace_id == workspace_id, r.c.created_at >= start, r.c.created_at < end)
            .group_by(r.c.member_id)
        ).all()
        cost_rows = self._c.execute(
            select(
                c.c.member_id,
                func.sum(c.c.tokens_in).label("tokens_in"),
                func.sum(c.c.tokens_out).label("tokens_out"),
                func.sum(c.c.cost_units).label("cost_units"),
            )
            .where(c.c.workspace_id == workspace_id, c.c.at >= start, c.c.at < end)
            .group_by(c.c.member_id)
        ).all()
        totals: dict[str, list[Any]] = {}
        for row in run_rows:
            totals.setdefault(row.member_id, [0, 0, 0, 0.0])[0] = int(row.runs)
        for row in cost_rows:
            entry = totals.setdefault(row.member_id, [0, 0, 0, 0.0])
            entry[1], entry[2] = int(row.tokens_in or 0), int(row.tokens_out or 0)
            entry[3] = float(row.cost_units or 0.0)
        return [
            MemberCost(member_id, v[0], v[1], v[2], round(v[3], 6))
            for member_id, v in sorted(totals.items())
        ]

    def grouped(
        self, workspace_id: str, start: datetime, end: datetime, dimensions: tuple[str, ...]
    ) -> list[CostGroup]:
        """Runs created and ledger rows written in ``[start, end)``, per combination of
        ``dimensions`` (``member``, ``crew``, ``origin``, ``day``), ordered by key."""
        r, c = tables.runs, tables.cost_ledger
        fields = [_FIELDS[d] for d in dimensions]
        run_columns = [self._column(d, r, r.c.created_at, r.c.member_id) for d in dimensions]
        cost_columns = [self._column(d, r, c.c.at, c.c.member_id) for d in dimensions]
        run_rows = self._c.execute(
            select(*run_columns, func.count().label("runs"))
            .where(r.c.workspace_id == workspace_id, r.c.created_at >= start, r.c.created_at < end)
            .group_by(*run_columns)
        ).all()
        cost_rows = self._c.execute(
            select(
                *cost_columns,
                func.sum(c.c.tokens_in).label("tokens_in"),
                func.sum(c.c.tokens_out).label("tokens_out"),
                func.sum(c.c.cost_units).label("cost_units"),
            )
            .select_from(c.join(r, r.c.id == c.c.run_id))
            .where(c.c.workspace_id == workspace_id, c.c.at >= start, c.c.at < end)
            .group_by(*cost_columns)
        ).all()
        totals: dict[tuple[str, ...], list[Any]] = {}
        width = len(dimensions)
        for row in run_rows:
            key = tuple(str(v) for v in row[:width])
            totals.setdefault(key, [0, 0, 0, 0.0])[0] = int(row.runs)
        for row in cost_rows:
            key = tuple(str(v) for v in row[:width])
            entry = totals.setdefault(key, [0, 0, 0, 0.0])
            entry[1], entry[2] = int(row.tokens_in or 0), int(row.tokens_out or 0)
            entry[3] = float(row.cost_units or 0.0)
        return [
            CostGroup(dict(zip(fields, key, strict=True)), v[0], v[1], v[2], round(v[3], 6))
            for key, v in sorted(totals.items())
        ]

    def _column(self, dimension: str, runs: Any, at: Any, member: Any) -> Any:
        if dimension == "member":
            return member.label("member_id")
        if dimension == "crew":
            return runs.c.crew_id.label("crew_id")
        if dimension == "origin":
            return runs.c.origin.label("origin")
        if self._c.dialect.name == "postgresql":  # the UTC calendar day of the instant
            return func.to_char(func.timezone("UTC", at), "YYYY-MM-DD").label("day")
        return func.substr(at, 1, 10).label("day")  # SQLite stores UTC as ISO text


#: The response field each dimension is keyed by.
_FIELDS = {"member": "member_id", "crew": "crew_id", "origin": "origin", "day": "day"}


class CostTx(UnitOfWork, Protocol):
    """What the cost use cases need of a unit of work."""

    cost: CostLedger


#: Every model call of a run adds a row: the statement is built once (see RunRepository).
_INSERT_COST = insert(tables.cost_ledger)
