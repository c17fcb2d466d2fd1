"""A pytest plugin that fails any test which tries to open a connection to a non-loopback address.

Tests must never reach real AWS. Blocking at name resolution and at ``connect`` covers boto3, urllib, httpx and
raw sockets; a blocked attempt is recorded, because client libraries may swallow the exception we raise, and
the test then fails in teardown with the host it tried to reach.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

_ATTEMPTS: list[str] = []
_REAL_GETADDRINFO = socket.getaddrinfo
_REAL_CONNECT = socket.socket.connect
_REAL_CONNECT_EX = socket.socket.connect_ex
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class NetworkGuardError(OSError):
    """Raised when a test tries to leave the machine."""


def is_loopback(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host).strip("[]")
    if host in _LOOPBACK_NAMES or host == "":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _blocked(host: Any, port: Any) -> NetworkGuardError:
    where = f"{host}:{port}" if port not in (None, "") else str(host)
    _ATTEMPTS.append(where)
    return NetworkGuardError(f"network guard: test tried to reach {where} (only loopback is allowed in tests)")


def _guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    if not is_loopback(host):
        raise _blocked(host, port)
    return _REAL_GETADDRINFO(host, port, *args, **kwargs)


def _address_host(sock: socket.socket, address: Any) -> tuple[Any, Any] | None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        return address[0], address[1]
    return None


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    hp = _address_host(self, address)
    if hp is not None and not is_loopback(hp[0]):
        raise _blocked(*hp)
    return _REAL_CONNECT(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    hp = _address_host(self, address)
    if hp is not None and not is_loopback(hp[0]):
        raise _blocked(*hp)
    return _REAL_CONNECT_EX(self, address)


def install() -> None:
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


def uninstall() -> None:
    socket.getaddrinfo = _REAL_GETADDRINFO  # type: ignore[assignment]
    socket.socket.connect = _REAL_CONNECT  # type: ignore[method-assign]
    socket.socket.connect_ex = _REAL_CONNECT_EX  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    install()


def pytest_unconfigure(config: pytest.Config) -> None:
    uninstall()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    _ATTEMPTS.clear()
    outcome = yield
    if _ATTEMPTS and not item.get_closest_marker("allow_network_attempt"):
        hosts = ", ".join(sorted(set(_ATTEMPTS)))
        _ATTEMPTS.clear()
        outcome.force_exception(
            pytest.fail.Exception(f"test tried to open a connection to a non-loopback address: {hosts}", pytrace=False)
        )
