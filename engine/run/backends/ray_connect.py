"""Reaching Ray: import it lazily, check an address fast, join a cluster or start one.

Every failure is a :class:`~engine.run.backends.BackendError` with what to do, in bounded
time: an address where nothing listens fails after a TCP timeout, one that listens but
is no Ray head after ``join_timeout``.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

from engine.run.backends import BackendError

INSTALL_HINT = "pip install 'iqa-purification-lab[cluster]' (or: pip install 'ray[default]>=2.9')"
MIN_RAY = (2, 9)
PROJECT_ROOT = Path(__file__).resolve().parents[3]


def import_ray():
    """Ray, imported only when the back end is used.

    Raises:
        BackendError: Ray is missing or older than 2.9.
    """
    try:
        import ray
    except ImportError:
        raise BackendError(f"the ray back end needs Ray {MIN_RAY[0]}.{MIN_RAY[1]} or newer, "
                           f"which is not installed: {INSTALL_HINT}") from None
    version = tuple(int(p) for p in ray.__version__.split(".")[:2] if p.isdigit())
    if version < MIN_RAY:
        raise BackendError(f"the ray back end needs Ray >= {MIN_RAY[0]}.{MIN_RAY[1]}, found "
                           f"{ray.__version__}: {INSTALL_HINT}")
    return ray


def describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def host_port(ray, address: str) -> tuple[str, int] | None:
    """The host and port behind ``auto`` or ``HOST:PORT``.

    ``None`` when ``auto`` cannot be resolved here (Ray then reports it).
    """
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address

            address = canonicalize_bootstrap_address("auto") or ""
        except ConnectionError as exc:
            raise BackendError(f"--ray-address auto: no running Ray cluster found on this machine "
                               f"({describe(exc)}); start one with `ray start --head` or give "
                               f"HOST:6379") from None
        except Exception:  # noqa: BLE001 - a private helper; Ray itself reports the problem
            return None
    bare = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = bare.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise BackendError(f"bad Ray address {address!r}: expected auto or HOST:PORT (e.g. 10.0.0.5:6379)")
    return host.strip("[]"), int(port)


def check_reachable(ray, address: str, timeout: float) -> None:
    """Fail fast when nothing listens at the address (``ray.init`` would retry for minutes).

    Raises:
        BackendError: naming the address and what to check.
    """
    hp = host_port(ray, address)
    if hp is None:
        return
    try:
        socket.create_connection(hp, timeout=timeout).close()
    except OSError as exc:
        port = ("its Ray Client server port (10001 unless `--ray-client-server-port` says otherwise)"
                if address.startswith("ray://") else "the port")
        raise BackendError(f"cannot reach the Ray cluster at {address} within {timeout:g} s "
                           f"({describe(exc)}): start it on the head node with `ray start --head`, "
                           f"and check the address, {port} and the firewall") from None


def use_token_if_available() -> None:
    """Send the cluster's auth token over Ray Client too.

    A driver on a Ray node finds the token itself; Ray Client (Ray ≥ 2.5x, token
    authentication) sends it only in token mode and otherwise waits until its connection
    times out. Ray's own helper turns token mode on when a token is available (the file
    ``~/.ray/auth_token``, ``RAY_AUTH_TOKEN_PATH`` or ``RAY_AUTH_TOKEN``) and leaves an
    explicit ``RAY_AUTH_MODE`` alone; Ray versions without token authentication have no
    such helper and need nothing.
    """
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available)
    except ImportError:
        return
    notices = logging.getLogger(maybe_enable_token_auth_if_token_available.__module__)
    level = notices.level
    notices.setLevel(logging.ERROR)  # its "token authentication is enabled" notice is noise here
    try:
        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    except Exception:  # noqa: BLE001 - a private helper; the handshake then reports the problem
        pass
    finally:
        notices.setLevel(level)


def connect(ray, address: str | None, *, num_cpus: int | None, timeout: float,
            join_timeout: float = 60.0) -> bool:
    """Join the cluster at ``address``, or start a local Ray instance without one.

    A process already connected to Ray keeps its connection (an address is still checked
    first). Joining runs in a helper thread given ``join_timeout`` seconds: a port that
    accepts connections but is no Ray head would otherwise keep ``ray.init`` retrying.
    Returns whether this call started the connection (its owner shuts it down).
    """
    if address and address.startswith("ray://"):
        use_token_if_available()
    if address:
        check_reachable(ray, address, timeout)
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": False}
    if address:
        # Ship this driver's engine package: the workers run the same code as the driver.
        kwargs.update(address=address, runtime_env={"py_modules": [str(PROJECT_ROOT / "engine")]})
    else:
        # "local": a new instance even when a cluster started with `ray start` runs here.
        kwargs.update(address="local", num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False)
    what = f"join the Ray cluster at {address}" if address else "start a local Ray instance"
    failure: list[BaseException] = []

    def init() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller's thread
            failure.append(exc)

    if not address:
        init()
    else:
        # Ray Client's server now and then fails to start a session for a new client (its
        # proxy forks while gRPC threads run) and the client times out: one more try.
        for _attempt in range(2 if address.startswith("ray://") else 1):
            failure.clear()
            joiner = threading.Thread(target=init, name="ray-join", daemon=True)
            joiner.start()
            joiner.join(join_timeout)
            if joiner.is_alive():
                raise BackendError(f"cannot {what}: it accepts connections but no Ray handshake completed "
                                   f"within {join_timeout:g} s — is it the head's GCS port (6379 by default)?")
            if not (failure and isinstance(failure[0], ConnectionError)):
                break
    if failure:
        raise BackendError(f"cannot {what}: {describe(failure[0])}") from None
    return True
