"""Schemathesis CLI against a real server: every check, every phase, zero failures expected.

Creates a fresh database (a temporary SQLite file, or a fresh database on the PostgreSQL server
named by ``TEST_DATABASE_URL``), migrates and seeds it, serves the app with uvicorn on
127.0.0.1:PORT (``ENV=test``), runs ``schemathesis run`` against ``/openapi.json`` with a
session token for the seeded workspace, stops the server and exits with Schemathesis' code.

    .venv/bin/python contract-tests/run_cli.py [--port 8765] [--seed 1] [--max-examples 100]

Extra arguments after ``--`` go to ``schemathesis run`` (e.g. ``-- --report junit``).

``--fresh`` runs it as an outsider would (``make contract-nohooks``): no seed data (only the
token's workspace and its admin exist, as ``scaicrew token`` makes them), no hooks; the OpenAPI
links are all Schemathesis has to chain ids. Afterwards the run's HAR is read: every operation
must have answered 2xx at least once, except ``NO_2XX_WITHOUT_SECRETS`` (each needs a secret
no outsider has), and every documented 501 must be exactly the documented problem.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from contract_seed import seed  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from domain.database import Database  # noqa: E402
from scaicrew.migrate import upgrade  # noqa: E402
from scaicrew.settings import SessionGroup, Settings  # noqa: E402
from tests.support.databases import create_postgres, drop_postgres  # noqa: E402
from tests.support.mcp_server import McpServerProcess  # noqa: E402
from tests.support.oidc_provider import start_oidc_provider  # noqa: E402
from tests.support.processes import free_port  # noqa: E402

SESSION_SECRET = "contract-cli-session-secret-" + secrets.token_hex(16)

# Operations an outside run cannot bring to 2xx, and the secret each one needs.
NO_2XX_WITHOUT_SECRETS = {
    "completeLogin": "the identity provider's authorization code and the login's state",
    "redeemSessionCode": "a one-shot session code, handed to the browser by the callback",
    "refreshSession": "a refresh token, obtained only by redeeming a session code",
    "receiveWebhook": "an HMAC-SHA256 signature made with the trigger's secret",
}
# Deferred operations: their only answer to a valid request is the documented 501.
DEFERRED = {"retryRun", "upgradeTemplate", "exportMemberToScaiflow"}


def log(message: str) -> None:
    sys.stderr.write(f"[contract-cli] {message}\n")
    sys.stderr.flush()


@contextmanager
def fresh_database(workdir: Path) -> Iterator[str]:
    """Yield the URL of an empty database; drop it afterwards (PostgreSQL)."""
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        yield f"sqlite:///{workdir / 'contract.db'}"
        return
    url, name = create_postgres(server, "contract")
    try:
        yield url
    finally:
        drop_postgres(server, name)


@contextmanager
def server(
    database_url: str, port: int, logfile: Path, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """Serve the app with uvicorn in a subprocess; yield its base URL."""
    env = {
        **os.environ,
        "ENV": "test",
        "DATABASE_URL": database_url,
        "SESSION_SECRET": SESSION_SECRET,
        "LOG_LEVEL": "warning",
        "STREAM_MAX_SECONDS": "0.5",  # GET /v1/stream ends, so each of its cases does
        **(extra_env or {}),
    }
    base_url = f"http://127.0.0.1:{port}"
    with logfile.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "scaicrew.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_for_health(process, base_url)
            yield base_url
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


@contextmanager
def oidc_provider(workdir: Path) -> Iterator[dict[str, str]]:
    """Run a real OIDC provider process on loopback; yield the server's login settings."""
    provider = start_oidc_provider(workdir / "oidc-provider.log")
    try:
        yield {
            "OIDC_ISSUER": provider.issuer,
            "OIDC_CLIENT_ID": "scaicrew-contract",
            "OIDC_CLIENT_SECRET": "contract-client-secret",
            "OIDC_REDIRECT_URI": "http://127.0.0.1:9/v1/auth/callback",
            "FRONTEND_URL": "http://127.0.0.1:9/app",
        }
    finally:
        provider.stop()


def _wait_for_health(process: subprocess.Popen[bytes], base_url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited early with code {process.returncode}")
        try:
            if httpx.get(f"{base_url}/health", timeout=2).is_success:
                time.sleep(0.3)  # another process on the port would answer while ours dies
                if process.poll() is not None:
                    raise RuntimeError(f"uvicorn exited early with code {process.returncode}")
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not answer /health within 30 s")


ALL_PHASES = "examples,coverage,fuzzing,stateful"


def schemathesis_command(
    base_url: str,
    token: str,
    args: argparse.Namespace,
    extra: list[str],
    config: Path | None = None,
    phases: str = ALL_PHASES,
) -> list[str]:
    executable = Path(sys.executable).with_name("schemathesis")
    return [
        str(executable),
        *(["--config-file", str(config)] if config else []),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        phases,
        "--header",
        f"Authorization: Bearer {token}",
        "--seed",
        str(args.seed),
        "--max-examples",
        str(args.max_examples),
        "--request-timeout",
        "30",
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        *extra,
    ]


# Without seed data, ids come only from the links: give the stateful phase room to follow them
# (it is cheap next to the other phases). The checks, phases and the rest stay as configured.
OUTSIDER_STATEFUL = """
[phases.stateful]
max-steps = 15

[phases.stateful.inference]
# Follow the contract's own links: inferred ones (hundreds) drown the designed chains.
algorithms = []

[phases.stateful.generation]
max-examples = 300
"""


def outsider_config(workdir: Path) -> Path:
    """schemathesis.toml plus more stateful scenarios and steps."""
    config = workdir / "schemathesis.toml"
    config.write_text((ROOT / "schemathesis.toml").read_text() + OUTSIDER_STATEFUL)
    return config


def outsider_token(database: Database, settings: Settings) -> str:
    """A workspace with one admin and nothing in it but one tool server on the MCP server the
    deployment allows (as its operator would connect it: an outsider has no MCP server on an
    allowed host; the listing shows its URL, which a registration may then name), and that
    admin's session token."""
    from contract_seed import SUBJECT, admin_token, new_workspace_id, tool_servers

    from domain.kernel import Actor, Role
    from scaicrew.app import build_use_cases

    workspace_id = new_workspace_id()
    use_cases = build_use_cases(settings, database)
    use_cases.workspaces.ensure_member(workspace_id, SUBJECT, Role.ADMIN, name="Outsider")
    tool_servers(use_cases, Actor(workspace_id, SUBJECT, Role.ADMIN), settings)
    return admin_token(settings, workspace_id)


def _statuses_by_operation(hars: list[Path]) -> tuple[dict[str, set[int]], list[str]]:
    """Every status each operation answered in the runs' HARs, and the 501s that are not the
    documented problem."""
    from handlers.openapi_document import load_spec
    from handlers.operations import operations

    spec = load_spec(ROOT / "openapi.yaml")
    routes = [
        (re.compile("^" + re.sub(r"\\{[^/}]+\\}", "[^/]+", re.escape(path)) + "$"), m, op)
        for path, m, op in operations(spec)
    ]
    reached: dict[str, set[int]] = {op["operationId"]: set() for _, _, op in operations(spec)}
    wrong_501: list[str] = []
    entries = [e for har in hars for e in json.loads(har.read_text())["log"]["entries"]]
    for entry in entries:
        request, response = entry["request"], entry["response"]
        path = urlsplit(request["url"]).path
        for pattern, method, op in routes:
            if method.upper() == request["method"] and pattern.match(path):
                reached[op["operationId"]].add(response["status"])
                if response["status"] == 501 and not _is_not_implemented(response):
                    wrong_501.append(f"{op['operationId']}: {response['content'].get('text')}")
                break
    return reached, wrong_501


def not_reached(reached: dict[str, set[int]]) -> set[str]:
    """The operations that must answer 2xx and have not (``reached``: each operation's
    statuses, as ``_statuses_by_operation`` reads them from the runs' HARs)."""
    return {
        op
        for op, statuses in reached.items()
        if op not in NO_2XX_WITHOUT_SECRETS
        and op not in DEFERRED
        and not any(200 <= s < 300 for s in statuses)
    }


def unfinished(reached: dict[str, set[int]]) -> set[str]:
    """The operations a later round still has to reach: those without their 2xx, and the
    deferred ones without their 501."""
    return not_reached(reached) | {op for op in DEFERRED if 501 not in reached[op]}


def _fresh_outsider(database_url: str, settings: Settings) -> str:
    """A token of a new outsider's workspace (as ``scaicrew token`` makes one)."""
    database = Database(database_url)
    try:
        return outsider_token(database, settings)
    finally:
        database.dispose()


def check_coverage(hars: list[Path], *, final: bool = True) -> int:
    """0 if every operation reached 2xx in one of the runs' HARs (but the documented
    exceptions) and every 501 was the documented problem; 1 otherwise, saying which (the
    per-operation table and the verdict are logged only for the ``final`` check)."""
    reached, wrong_501 = _statuses_by_operation(hars)
    missing = sorted(not_reached(reached))
    not_501 = sorted(op for op in DEFERRED if 501 not in reached[op])
    unreachable = {*NO_2XX_WITHOUT_SECRETS, *DEFERRED}
    unexpected = sorted(op for op in unreachable if any(200 <= s < 300 for s in reached[op]))
    if not final:
        if missing:
            log("not reached 2xx yet (another round follows): " + ", ".join(missing))
        return 1 if missing or not_501 or wrong_501 or unexpected else 0
    for op, statuses in sorted(reached.items()):
        log(f"  {op}: {sorted(statuses)}")
    if missing:
        log("no 2xx reached for: " + ", ".join(missing))
    if not_501:
        log("deferred operations never answered 501: " + ", ".join(not_501))
    if wrong_501:
        log("501s that are not the documented problem: " + "; ".join(wrong_501[:5]))
    if unexpected:
        log("2xx from operations documented as unreachable: " + ", ".join(unexpected))
    return 1 if missing or not_501 or wrong_501 or unexpected else 0


def focus_of(unreached: set[str]) -> set[str]:
    """The operations of the next focused round: the unreached operation with the most
    operations leading to it, those, and every other unreached operation that nothing else
    leads to (the approvals and ``cancelRun`` share one chain; triggers and tool servers go to
    later rounds). Fewer operations, fewer links to choose from at each step: the chain to a
    pending approval is followed to its end far more often."""
    chains = {op: link_ancestors({op}) for op in unreached}
    widest = max(sorted(chains), key=lambda op: len(chains[op]))
    focus = set(chains[widest])
    focus |= {op for op, chain in chains.items() if chain - {op} <= focus}
    return {op2 for op in focus for op2 in chains.get(op, {op})}


def link_ancestors(targets: set[str]) -> set[str]:
    """``targets`` and every operation from which the contract's links lead to one of them
    (the operations a stateful scenario passes through to reach them)."""
    from handlers.openapi_document import load_spec
    from handlers.operations import operations

    spec = load_spec(ROOT / "openapi.yaml")
    sources: dict[str, set[str]] = {}
    for _, _, op in operations(spec):
        for response in op.get("responses", {}).values():
            for link in (response.get("links") or {}).values():
                sources.setdefault(link["operationId"], set()).add(op["operationId"])
    found, frontier = set(targets), list(targets)
    while frontier:
        for source in sources.get(frontier.pop(), ()):
            if source not in found:
                found.add(source)
                frontier.append(source)
    return found


def _is_not_implemented(response: dict[str, Any]) -> bool:
    content = response.get("content", {})
    if not content.get("mimeType", "").startswith("application/problem+json"):
        return False
    try:
        body = json.loads(content.get("text", ""))
    except ValueError:
        return False
    return (
        body.get("status") == 501
        and body.get("type") == "/problems/not-implemented"
        and body.get("error", {}).get("code") == "NotImplemented"
    )


def _runs(
    args: argparse.Namespace,
    base_url: str,
    token: str,
    new_token: Callable[[], str] | None,
    extra: list[str],
    config: Path | None,
    workdir: Path,
) -> int:
    """One Schemathesis run, or for ``--fresh`` up to ``--rounds`` of them, until every
    operation has answered 2xx in one. Every check of every round must pass.

    The first round runs every phase over every operation. What it leaves unreached are
    operations whose ids only links supply, at the end of long chains (a pending approval
    needs a crew, a member whose tool needs approval, its publication, a run and the listing
    of its approvals): with 88 operations and 110 links a scenario seldom follows one chain
    to its end. So each later round runs only the stateful phase, and only over the
    operations still unreached and those whose links lead to them (Schemathesis' own
    ``--include-operation-id``): the same links, a smaller choice at each step. On a loaded
    machine the first round's other phases can spend its whole ``--max-time``, which is one
    more reason the later rounds are stateful only."""
    rounds = args.rounds if args.fresh else 1
    hars: list[Path] = []
    code = 0
    for index in range(rounds):
        round_args = argparse.Namespace(**{**vars(args), "seed": args.seed + index})
        round_extra = list(extra)
        phases = ALL_PHASES
        if args.fresh:
            har = workdir / f"run-{index + 1}.har"
            round_extra = ["--report", "har", "--report-har-path", str(har), *round_extra]
            if hars:
                # The HARs are read once a round (tens of MB by the last).
                left = unfinished(_statuses_by_operation(hars)[0])
                if not left:  # what failed is no reach: another round cannot help
                    return check_coverage(hars)
                phases = "stateful"
                # Each focused round in a workspace of its own: what a round did to its
                # workspace (a budget of a millionth of a unit that blocks every run, an admin
                # promoted in its stead) must not keep the next from reaching what it aims at.
                if new_token is not None:
                    token = new_token()
                focus = sorted(focus_of(left))
                log(
                    f"round {index + 1}: stateful, over {len(focus)} operations: {', '.join(focus)}"
                )
                round_extra = [
                    *(arg for op in focus for arg in ("--include-operation-id", op)),
                    *round_extra,
                ]
            hars.append(har)
        command = schemathesis_command(base_url, token, round_args, round_extra, config, phases)
        log("running " + " ".join("<token>" if "Bearer" in c else c for c in command))
        code = subprocess.call(command, cwd=ROOT)
        if code != 0 or not args.fresh:
            return code
        last = index == rounds - 1
        code = check_coverage(hars, final=last)
        if code == 0:
            return check_coverage(hars) if not last else 0
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 (default): a free port")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--fresh", action="store_true", help="no seed data: only the token's workspace exists"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="--fresh: at most this many runs (new seeds, same server) until every operation "
        "reached 2xx; a failed check in any run fails at once",
    )
    parser.add_argument(
        "--max-time",
        type=int,
        default=None,
        help="seconds for the whole Schemathesis run (fuzzing and stateful repeat until spent)",
    )
    args = parser.parse_args(argv)
    args.port = args.port or free_port()
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="scaicrew-contract-"))
    logfile = workdir / "uvicorn.log"
    code = 1
    mcp: McpServerProcess | None = None
    try:
        # A real MCP server on loopback, the only host tool servers may be registered on.
        mcp = McpServerProcess()
        tool_env = {"TOOL_SERVER_ALLOWED_HOSTS": mcp.host}
        with fresh_database(workdir) as database_url:
            upgrade(database_url)
            settings = Settings(
                env="test",
                database_url=database_url,
                session=SessionGroup(secret=SecretStr(SESSION_SECRET)),
            ).with_changes(tool_server_allowed_hosts=mcp.host)
            database = Database(database_url)
            try:
                if args.fresh:
                    token = outsider_token(database, settings)
                    log("fresh database: one workspace and its admin, nothing else")
                else:
                    seeded = seed(database, settings)
                    token = seeded.token
                    log(
                        f"seeded workspace {seeded.workspace_id}: crew {seeded.crew_id}, "
                        f"members {', '.join(seeded.member_ids)}"
                    )
            finally:
                database.dispose()
            config = outsider_config(workdir) if args.fresh else None
            new_token = (lambda: _fresh_outsider(database_url, settings)) if args.fresh else None
            if args.max_time:
                extra = ["--max-time", str(args.max_time), *extra]
            with oidc_provider(workdir) as login_env:
                env = {**login_env, **tool_env}
                with server(database_url, args.port, logfile, env) as base_url:
                    code = _runs(args, base_url, token, new_token, extra, config, workdir)
    except Exception as exc:  # report setup failures together with the server log
        log(f"setup failed: {exc!r}")
        code = 2
    finally:
        if mcp is not None:
            mcp.stop()
        if code != 0 and logfile.exists():
            server_log = logfile.read_text(errors="replace").strip()
            if server_log:
                log("server log:\n" + server_log[-20000:])
        if args.keep:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        log(f"finished in {time.monotonic() - started:.1f} s with exit code {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())
