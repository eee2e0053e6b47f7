"""What Linux says of this process, for tests whose child processes measure themselves
(run with the tests directory as their working directory, so that they can import
helpers.proc_status)."""


def status(field: str) -> int:
    """A field of /proc/self/status, e.g. "VmHWM:" (kB) or "Threads:" (a count)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak() -> int:
    """Start the peak resident set (VmHWM) again from what is resident now; returns that
    (bytes)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return status("VmRSS:") * 1024


def peak_added(since: int) -> int:
    """Bytes the peak resident set rose above `since` (a reset_peak() result)."""
    return status("VmHWM:") * 1024 - since
