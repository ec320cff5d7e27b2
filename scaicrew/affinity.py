"""Pinning a serving process to CPUs (``CPU_AFFINITY``; README, Performance).

One API process runs its event loop and its thread pool under one GIL. Spread over two cores,
every hand-over of the GIL between the loop and a handler thread (at each database call) is
a cross-core wake-up with cold caches: measured on the 2-core machine, the same process used
282 us of CPU per GET pinned to one core and 694 us unpinned, and served 2.2 times the
requests. Pinning is opt-in: a core shared with other busy processes is a bottleneck the
kernel can no longer route around.
"""

from __future__ import annotations

import fcntl
import os
import tempfile

from scaicrew.settings import SettingsError

#: The descriptors of this process's CPU claims (``pin_to_one_of``), open for its life.
_claims: list[int] = []


def usable_cpus(cpus: tuple[str, ...]) -> set[int]:
    """The CPUs ``cpus`` names, checked against those this process may run on.

    :raises SettingsError: a CPU this process may not run on, or no CPU affinity on this
        platform.
    """
    wanted = {int(cpu) for cpu in cpus}
    if not hasattr(os, "sched_setaffinity"):
        raise SettingsError("CPU_AFFINITY needs a platform with sched_setaffinity (Linux).")
    allowed = os.sched_getaffinity(0)
    if not wanted <= allowed:
        raise SettingsError(
            f"CPU_AFFINITY names CPUs {sorted(wanted - allowed)} this process may not run on "
            f"(it may run on {sorted(allowed)})."
        )
    return wanted


def pin_to_cpus(cpus: tuple[str, ...]) -> None:
    """Pin this process (every thread it has, and so every thread it starts) to ``cpus``;
    nothing when ``cpus`` is empty.

    :raises SettingsError: as ``usable_cpus``.
    """
    if cpus:
        _pin(usable_cpus(cpus))


def pin_to_one_of(cpus: tuple[str, ...], group: str) -> int | None:
    """Pin this process to one CPU of ``cpus`` that no other process of ``group`` holds (the
    processes of one ``serve --workers`` share a group); the CPU, or None when ``cpus`` is
    empty. With every CPU held (more processes than CPUs), pinned to all of ``cpus``.

    The claim is a lock on a file per CPU, held for the life of the process: a process that
    dies frees its CPU for the one that replaces it.

    :raises SettingsError: as ``usable_cpus``.
    """
    if not cpus:
        return None
    wanted = sorted(usable_cpus(cpus))
    directory = claims_directory(group)
    os.makedirs(directory, exist_ok=True)
    for cpu in wanted:
        handle = os.open(os.path.join(directory, str(cpu)), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            continue
        _claims.append(handle)  # kept open: the claim lasts as long as the process
        _pin({cpu})
        return cpu
    _pin(set(wanted))
    return None


def claims_directory(group: str) -> str:
    """Where the processes of ``group`` claim their CPUs (``pin_to_one_of``)."""
    return os.path.join(tempfile.gettempdir(), f"scaicrew-cpus-{group}")


def _pin(cpus: set[int]) -> None:
    # A thread's affinity is its own: threads already started (a metrics exporter, say) are
    # pinned one by one; the ones started later inherit the mask of the thread starting them.
    for task in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(task), cpus)
        except ProcessLookupError:  # it ended meanwhile
            continue
