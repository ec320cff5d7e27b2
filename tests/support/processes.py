"""Real ``scaicrew`` processes (server or worker) for multi-process tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from scaicrew.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(settings: Settings, **overrides: Any) -> dict[str, str]:
    """The process environment for ``settings`` plus ``overrides`` (upper-cased names)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL", "TOOL_"))}
    env.update(
        ENV="test",
        DATABASE_URL=settings.database_url,
        SESSION_SECRET=settings.session.secret.get_secret_value(),
        LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
    )
    env.update({k.upper(): str(v) for k, v in overrides.items()})
    return env


class Process:
    """A ``python -m scaicrew.cli ...`` child with its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._handle = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scaicrew.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._handle.close()

    def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.alive(), f"process exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output()}"
            time.sleep(0.05)


def serve(settings: Settings, log: Path, **overrides: Any) -> tuple[Process, str]:
    """Start ``scaicrew serve --no-migrate`` on a free port; return it once /health answers."""
    process, base_url = launch(settings, log, **overrides)
    wait_until_serving(process, base_url)
    return process, base_url


def launch(settings: Settings, log: Path, **overrides: Any) -> tuple[Process, str]:
    """Start ``scaicrew serve --no-migrate`` on a free port, without waiting for it (start
    several, then ``wait_until_serving`` each: they start up at the same time)."""
    port = free_port()
    process = Process(
        ["serve", "--no-migrate", "--host", "127.0.0.1", "--port", str(port)],
        environment(settings, **overrides),
        log,
    )
    return process, f"http://127.0.0.1:{port}"


def wait_until_serving(process: Process, base_url: str) -> None:
    """Return once the server answers /health (60 s at most: a loaded 2-core machine starting
    several servers at once has taken over 30 s)."""
    deadline = time.monotonic() + 60
    while True:
        assert process.alive(), f"server exited:\n{process.output()}"
        try:
            if httpx.get(base_url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"server never answered:\n{process.output()}"
        time.sleep(0.05)
