"""Schemathesis CLI against a real server: every check, every phase, zero failures expected.

Creates a fresh database (a temporary SQLite file, or a fresh database on the PostgreSQL server
named by ``TEST_DATABASE_URL``), migrates and seeds it, serves the app with uvicorn on
127.0.0.1:PORT (``ENV=test``), runs ``schemathesis run`` against ``/openapi.json`` with a
session token for the seeded workspace, stops the server and exits with Schemathesis' code.

    .venv/bin/python contract-tests/run_cli.py [--port 8765] [--seed 1] [--max-examples 100]

Extra arguments after ``--`` go to ``schemathesis run`` (e.g. ``-- --report junit``).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from contract_seed import seed  # noqa: E402

from domain.unit_of_work import Database  # noqa: E402
from scaicrew.migrate import upgrade  # noqa: E402
from scaicrew.settings import Secret, Settings  # noqa: E402
from tests.support.databases import create_postgres, drop_postgres  # noqa: E402
from tests.support.oidc_provider import start_oidc_provider  # noqa: E402
from tests.support.processes import free_port  # noqa: E402

SESSION_SECRET = "contract-cli-session-secret-" + secrets.token_hex(16)


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
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not answer /health within 30 s")


def schemathesis_command(
    base_url: str, token: str, args: argparse.Namespace, extra: list[str]
) -> list[str]:
    executable = Path(sys.executable).with_name("schemathesis")
    return [
        str(executable),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
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
    args = parser.parse_args(argv)
    args.port = args.port or free_port()

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="scaicrew-contract-"))
    logfile = workdir / "uvicorn.log"
    code = 1
    try:
        with fresh_database(workdir) as database_url:
            upgrade(database_url)
            settings = Settings(
                env="test", database_url=database_url, session_secret=Secret(SESSION_SECRET)
            )
            database = Database(database_url)
            try:
                seeded = seed(database, settings)
            finally:
                database.dispose()
            log(
                f"seeded workspace {seeded.workspace_id}: crew {seeded.crew_id}, "
                f"members {', '.join(seeded.member_ids)}"
            )
            with oidc_provider(workdir) as login_env:
                with server(database_url, args.port, logfile, login_env) as base_url:
                    command = schemathesis_command(base_url, seeded.token, args, extra)
                    log("running " + " ".join("<token>" if "Bearer" in c else c for c in command))
                    code = subprocess.call(command, cwd=ROOT)
    except Exception as exc:  # report setup failures together with the server log
        log(f"setup failed: {exc!r}")
        code = 2
    finally:
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
