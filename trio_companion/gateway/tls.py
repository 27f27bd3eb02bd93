"""The one TLS client context for every outgoing connection (REST and the gateway websocket).

Trust comes from, in order:

1. the PEM file named by the standard ``SSL_CERT_FILE`` environment variable, when it is set: the
   context then trusts *only* that file, exactly as OpenSSL, ``requests`` and ``httpx`` do. This is
   also how the tests make the bot trust their fake Discord: they point ``SSL_CERT_FILE`` at a
   throwaway CA. There is no test-only code path in the bot.
2. otherwise the operating system's store plus certifi's Mozilla bundle, so a slim container with
   no system CA certificates still reaches discord.com.

Hostname checking and certificate verification are always on (`ssl.create_default_context`);
nothing here can turn them off.
"""

from __future__ import annotations

import os
import ssl
from typing import Final

import certifi

__all__ = ["CA_FILE_ENV", "make_ssl_context"]

CA_FILE_ENV: Final = (
    "SSL_CERT_FILE"  # the variable OpenSSL reads (SSL_CTX_set_default_verify_paths)
)


def make_ssl_context() -> ssl.SSLContext:
    """Return a new client context that verifies servers against the configured trust store.

    Pass it to ``httpx.AsyncClient(verify=...)`` and to the websocket connect call. It reads
    certificate files synchronously, so call it once at start-up, not on a hot path.

    Raises `FileNotFoundError` or `ssl.SSLError` when ``SSL_CERT_FILE`` names a file that is
    missing or holds no usable certificate: a typo there must fail loudly, not fall back to a
    different store.
    """
    ca_file = os.environ.get(CA_FILE_ENV)
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=certifi.where())
    return context
