"""The TLS context the process's HTTP clients share.

Building one loads the CA store: 58 ms of CPU each time on the host of BENCHMARKS.md's sixth
session, where a client given a built context takes 4.6 ms. Every engine, every watcher run
in a worker process and every HTTP source made its own; now they share one, built as httpx
builds its default (certifi's CA bundle, or the file or folder ``SSL_CERT_FILE`` or
``SSL_CERT_DIR`` names), and built again if those variables change. A client must leave it
as it is: no client certificate loaded into it, and HTTP/1.1 only (httpcore sets the ALPN
list on the context at each connection; every client here asks for the same one). The
built-in domain lookups keep a context of their own: plugins import the public API only.
"""

from __future__ import annotations

import os
import ssl
from functools import cache
from typing import Any

import httpx


def shared_context() -> ssl.SSLContext:
    """The verifying context httpx would build for a client now, built once per
    process (and per value of ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``)."""
    return _built(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@cache
def _built(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    # httpx reads the two variables itself: they are this cache's key, not its arguments.
    del cert_file, cert_dir
    return httpx.create_ssl_context()


def client(**options: Any) -> httpx.AsyncClient:
    """An HTTP client as the engine gives watchers theirs: on the shared context, following
    redirects; ``options`` as ``httpx.AsyncClient`` takes them (timeout, headers, auth)."""
    return httpx.AsyncClient(verify=shared_context(), follow_redirects=True, **options)
