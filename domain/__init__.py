"""The ScaiCrew domain: rules and use cases, free of HTTP and of any web framework.

One package per capability, each with the same inner shape (``model``, ``use_cases``,
``repository``, and ``errors`` where it has its own), over a small shared ``kernel``:

    kernel       actors and roles, errors, ids, clock, paging, signals, unit-of-work protocol
    audit        the append-only audit log every capability writes
    workspaces   workspaces and memberships
    identity     OIDC login, session codes, refresh tokens
    tools        the tool catalog, effect classes, running a tool call, notes, MCP tool servers
    members      crews, members, versions, the compiler, handoff rules, input schemas
    cost         the cost ledger and its rollups
    budgets      spending limits per scope and period, and their accounting
    runs         starting runs (one path), the dispatcher, run events, approvals
    triggers     schedules and signed webhooks, and firing them
    authoring    conversational authoring, derivers, templates
    stream       the workspace event log and the live-stream hub
    persistence  tables, engine and SQL helpers, below every repository
    database     the SQL unit of work over every repository (wired by the composition root)
    use_cases    every capability's service, built once over one database

Other packages use a capability through its package (``domain.members``), never its modules.
"""

from domain.kernel import Actor, ActorKind, DomainError, Role

__all__ = ["Actor", "ActorKind", "DomainError", "Role"]
