"""Resident memory of a process, read from ``/proc/<pid>/status`` (Linux), in MB."""

from __future__ import annotations


def status_mb(field: str, pid: int | str = "self") -> float:
    """One memory line of ``/proc/<pid>/status`` in MB; 0 if the process is gone or the line is missing.

    ``VmHWM`` (the peak resident set) is per address space, so unlike ``ru_maxrss`` it is not inherited from the
    parent across ``exec`` (which would floor every figure at the harness's own size); ``VmRSS`` is the current
    resident set.

    Args:
        field: ``"VmHWM"`` or ``"VmRSS"``.
        pid: Process id, or ``"self"``.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
