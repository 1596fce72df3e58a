"""PID 1 of every sandbox: reaps orphaned processes and ends the sandbox on SIGTERM.

Runs as `python3 -I -S /.cove/agent/init.py`, so it imports nothing beyond the standard library and
keeps an idle session's memory small.
"""

import os
import signal

HANDLED = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}


def reap_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> None:
    # Blocked signals are queued for sigwaitinfo even for a namespace's init, so none is missed.
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
    print("cove-init: ready", flush=True)
    while True:
        received = signal.sigwaitinfo(HANDLED)
        if received.si_signo != signal.SIGCHLD:
            return
        reap_children()


if __name__ == "__main__":
    main()
