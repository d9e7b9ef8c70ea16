"""``custodes serve`` (the HTTP API, portal and dashboard) and ``custodes token`` (API tokens).

``serve`` listens on loopback by default. A non-loopback address needs TLS (``--tls-cert`` and
``--tls-key``) or an explicit ``--insecure-public`` (for a TLS-terminating proxy in front):
bearer tokens and ID numbers must not cross a network in clear. The access log is on, with
query strings left out (ID numbers never travel in URLs; this keeps anything else out too).
"""

from __future__ import annotations

import gc
import ipaddress
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from custodes._cli_common import AsJson, Home, emit, err, open_vault, out
from custodes.clock import system_clock
from custodes.errors import InputError, NotFound
from custodes.model import CredentialKind

__all__ = ["run_server", "serve_command", "token_app"]

_STDIN = "-"
token_app = typer.Typer(help="API tokens: shown once when created, stored only as a hash.")

Host = Annotated[str, typer.Option("--host", help="Address to listen on.")]
Port = Annotated[int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)]
TlsCert = Annotated[Path | None, typer.Option("--tls-cert", help="TLS certificate (PEM).")]
TlsKey = Annotated[Path | None, typer.Option("--tls-key", help="TLS private key (PEM).")]
InsecurePublic = Annotated[
    bool,
    typer.Option(
        "--insecure-public",
        help="Listen on a non-loopback address without TLS (only behind a TLS proxy).",
    ),
]
AccessLog = Annotated[
    bool, typer.Option("--access-log/--no-access-log", help="Log each request (no query strings).")
]
TrustedProxy = Annotated[
    str | None,
    typer.Option(
        "--trusted-proxy",
        help=(
            "Address(es) of a reverse proxy whose X-Forwarded-For/-Proto headers to believe "
            "(comma-separated IPs or networks). Default: none; clients are who connected."
        ),
    ),
]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_exposure(host: str, tls: bool, insecure_public: bool) -> None:
    if not _is_loopback(host) and not tls and not insecure_public:
        raise InputError(
            f"refusing to serve on {host} without TLS: pass --tls-cert and --tls-key, or "
            "--insecure-public if a TLS-terminating proxy is in front"
        )


def trusted_proxies(value: str | None) -> str | None:
    """The comma-separated proxy addresses of ``--trusted-proxy``, checked (None: none).

    Raises:
        InputError: an item is not an IP address or network.
    """
    if value is None:
        return None
    items = [item.strip() for item in value.split(",")]
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise InputError(f"--trusted-proxy: {item!r} is not an IP address or network") from None
    return ",".join(items)


FULL_PASS_EVERY = 100  # the collector's third threshold while serving (CPython's default: 10)


def run_server(
    app: Any,
    *,
    host: str,
    port: int,
    access_log: bool = True,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    trusted_proxy: str | None = None,
) -> None:
    """Serve ``app`` with uvicorn until interrupted (one process: the vault batches commits).

    The access log is custodes' own (``custodes.api._accesslog``): batched, no query strings.
    Forwarding headers are believed only from ``trusted_proxy`` (checked by
    :func:`trusted_proxies`): uvicorn's default believes any client on loopback, which would
    let a local client pick the address the portal's sign-in throttle counts failures under.
    """
    import uvicorn

    from custodes.api._accesslog import AccessLog

    logged = AccessLog(app, stream=sys.stdout) if access_log else None
    # What exists now (modules, the app, the vault and its caches so far) lives as long as the
    # server: frozen, the garbage collector's full passes no longer walk it. Those passes stop
    # the loop, every request in flight with it; they were the longest stalls of a loaded
    # server (50-150 ms, docs/benchmarks.md, HTTP, 2026-12-07 night).
    gc.collect()
    gc.freeze()
    # What it builds while serving (caches of keys, subjects, credentials: hundreds of
    # thousands of objects, none of them garbage) is walked by every full pass all the same:
    # 20-50 ms with every request in flight stalled, every ~1.5 s under load, which alone put
    # the reads' p99 past 25 ms. Full passes a tenth as often (after 100 middle-generation
    # passes, not 10); the young generations are collected as before.
    previous = gc.get_threshold()
    gc.set_threshold(previous[0], previous[1], FULL_PASS_EVERY)
    try:
        uvicorn.run(
            logged or app,
            host=host,
            port=port,
            access_log=False,
            log_level="info" if access_log else "warning",
            server_header=False,
            proxy_headers=trusted_proxy is not None,
            forwarded_allow_ips=trusted_proxy,
            ssl_certfile=str(tls_cert) if tls_cert else None,
            ssl_keyfile=str(tls_key) if tls_key else None,
        )
    finally:
        gc.set_threshold(*previous)
        if logged is not None:
            logged.flush()


def serve_command(
    host: Host = "127.0.0.1",
    port: Port = 8470,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    insecure_public: InsecurePublic = False,
    access_log: AccessLog = True,
    trusted_proxy: TrustedProxy = None,
    home: Home = None,
) -> None:
    """Serve the HTTP API (under /v1, OpenAPI at /openapi.json), portal and dashboard."""
    from custodes.api import create_app
    from custodes.config import Settings, default_home

    if (tls_cert is None) != (tls_key is None):
        raise InputError("--tls-cert and --tls-key go together")
    _check_exposure(host, tls_cert is not None, insecure_public)
    proxies = trusted_proxies(trusted_proxy)
    app = create_app(Settings.load(home or default_home()))
    scheme = "https" if tls_cert else "http"
    err.print(f"custodes: serving on {scheme}://{host}:{port} (Ctrl-C stops)", highlight=False)
    run_server(
        app,
        host=host,
        port=port,
        access_log=access_log,
        tls_cert=tls_cert,
        tls_key=tls_key,
        trusted_proxy=proxies,
    )


@token_app.command("create")
def token_create(
    accessor: Annotated[str, typer.Option("--as", help="The accessor the token acts as.")],
    days: Annotated[
        int | None,
        typer.Option("--days", help="Valid for this many days (default: api.token_days)."),
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Create an API token for an accessor; it is printed once and stored only as a hash."""
    from custodes.api import Credentials

    if days is not None and days <= 0:
        raise InputError("--days must be a positive number of days")
    with open_vault(home) as vault:
        principal = vault.principal(accessor)
        ttl = timedelta(days=days or vault.settings.api.token_days)
        with vault.store.transaction() as tx:
            tx.delete_expired_credentials(system_clock())  # housekeeping, while we are here
        credentials = Credentials(store=vault.store)
        token = credentials.issue(CredentialKind.API_TOKEN, principal.accessor, ttl)
    data = {"token": token, "accessor": principal.accessor, "days": ttl.days}
    emit(
        data,
        as_json,
        lambda: out.print(
            f"API token for [bold]{principal.accessor}[/bold] ({principal.role} at "
            f"{principal.org}), valid {ttl.days} days. It is shown only now:\n{token}",
            highlight=False,
        ),
    )


@token_app.command("revoke")
def token_revoke(
    token: Annotated[
        str, typer.Argument(help="The token, or '-' to read it from standard input.")
    ] = _STDIN,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Revoke an API token (a running server stops accepting it within seconds)."""
    from custodes.api import Credentials

    # Reading it from stdin keeps the token out of shell history and the process list.
    secret = sys.stdin.readline().strip() if token == _STDIN else token.strip()
    if not secret:
        raise InputError("no token given")
    with open_vault(home) as vault:
        existed = Credentials(store=vault.store).revoke(CredentialKind.API_TOKEN, secret)
    if not existed:
        raise NotFound("no such API token (already revoked, or mistyped)")
    emit({"revoked": True}, as_json, lambda: out.print("token revoked"))
