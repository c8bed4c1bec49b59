"""A pytest told to stop with SIGTERM (a `kill`, a time limit that signals
it alone) ends as on Ctrl-C, so the fixtures' finalizers run: they stop the
servers the tests started and unmount the disk tests' file systems.
SIGTERM's default ended pytest at once and left them running (review rv103).
Both suites' conftests call stop_as_on_ctrl_c from pytest_configure."""

import contextlib
import os
import signal
import sys
import threading

_xdist_controller = False  # set by stop_as_on_ctrl_c


def _terminated(signum, frame):
    # Once: a second SIGTERM (a group signalled, then its controller passing
    # it on) must not cut the finalizers short.
    signal.signal(signal.SIGTERM, lambda *_: None)
    if _xdist_controller:
        # A controller signalled alone passes it on to its workers, which
        # started the servers: ended by the controller instead, they ran no
        # finalizers.
        for pid in _children_running(sys.executable):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
    raise KeyboardInterrupt(f"signal {signum}")


def _children_running(executable):
    """The pids of this process's children that run executable."""
    me, exe, found = str(os.getpid()), os.path.realpath(executable), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]
            if ppid == me and os.path.realpath(f"/proc/{pid}/exe") == exe:
                found.append(int(pid))
        except OSError:
            continue
    return found


def stop_as_on_ctrl_c(config):
    global _xdist_controller
    _xdist_controller = bool(getattr(config.option, "numprocesses", None)) and \
        "PYTEST_XDIST_WORKER" not in os.environ
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
