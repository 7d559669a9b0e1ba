"""Listening ports: checked when the command line is read and again just before a server
starts, so that a wrong or busy port is one sentence and exit 2, never a server's traceback
after it has already printed "startup complete"."""

from __future__ import annotations

import argparse
import errno
import socket


def port_arg(text: str, allow_any: bool = False) -> int:
    """argparse ``type`` for a TCP port: 1-65535 (0 too with ``allow_any``: the OS picks)."""
    low = 0 if allow_any else 1
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not low <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: give a number from {low} to 65535")
    return port


def any_port_arg(text: str) -> int:
    """argparse ``type`` for a port where 0 means "any free port"."""
    return port_arg(text, allow_any=True)


def port_problem(port: int, host: str = "127.0.0.1", who: str = "another `streamsvc api` "
                 "or dashboard") -> str | None:
    """Why nothing can listen on ``host:port`` now (None: it can)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # as servers bind: a port left in TIME_WAIT by the last run is free, a listener is not
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except PermissionError:
            return f"not allowed to listen on port {port}; pass --port with a port above 1023"
        except socket.gaierror:
            return f"cannot listen on host {host!r}: no such address on this machine"
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"cannot listen on {host}: that address is not on this machine"
            return (f"port {port} is already in use ({who}?); stop it or pass --port with a "
                    "free port")
    return None
