"""The browser side's lower CPU priority, and keeping it lower.

Three things stand between a ``nice`` value and Chromium actually yielding the CPU to
the prober, on Linux:

* ``nice`` is inherited: lowered in the browser process before Playwright starts, it
  holds for Playwright's driver and Chromium (:func:`lower_this_process`);
* Chromium raises its own threads' priority when it may (as root, to −8), so the right
  to raise it (``CAP_SYS_NICE``) is dropped from what programs started from the browser
  process can have (the bounding set; without root there is nothing to drop);
* Playwright's driver starts Chromium in a session of its own, and where the kernel
  groups the CPU by session (``CONFIG_SCHED_AUTOGROUP``, the processes outside any CPU
  cgroup, as on most desktops and plain VMs) a session's share is set by its *group*
  nice: Chromium's session would share the CPU evenly with the prober's whatever the
  nice of its processes. :func:`lower_autogroups` gives every descendant session the
  same niceness (``/proc/<pid>/autogroup``). Under systemd or Kubernetes the processes
  share the service's or the container's cgroup, and the nice values are what count.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

_PR_CAPBSET_DROP = 24
_CAP_SYS_NICE = 23


def lower_this_process(niceness: int) -> None:
    """Lower this process's priority by ``niceness``, for it and what it starts."""
    os.nice(niceness)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_CAPBSET_DROP, _CAP_SYS_NICE, 0, 0, 0)  # fails (EPERM) unless root: then it was never had
    except (OSError, AttributeError):  # no prctl: not Linux
        pass


def autogroup(pid: int | str) -> tuple[str, int] | None:
    """``(group, nice)`` of the scheduling autogroup of ``pid``, or None where the kernel
    has none or ``pid`` is in its default group (the file reads empty)."""
    try:
        with open(f"/proc/{pid}/autogroup") as file:
            group, _, nice = file.read().split()
        return group, int(nice)
    except (OSError, ValueError):
        return None


def descendants(root: int) -> list[int]:
    """The processes descending from ``root`` (from ``/proc``; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as stat:
                        parent = int(stat.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def lower_autogroups(niceness: int) -> int:
    """Give the autogroup of every session started below this process (Chromium's) at
    least ``niceness``; how many groups were changed."""
    # A process that never started a session of its own (one started by init without
    # ``setsid``) is in the kernel's default group, whose file reads empty: Chromium's
    # session is then still a group of its own beside it, and must be lowered all the same.
    own = autogroup("self")
    own_group = own[0] if own is not None else None
    changed: set[str] = set()
    for pid in descendants(os.getpid()):
        group = autogroup(pid)
        if group is None or group[0] == own_group or group[0] in changed or group[1] >= niceness:
            continue
        try:
            with open(f"/proc/{pid}/autogroup", "w") as file:
                file.write(str(niceness))
        except OSError:  # gone meanwhile, or not ours to change
            continue
        changed.add(group[0])
    return len(changed)
