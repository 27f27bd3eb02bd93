"""TLS for the fake servers: one throwaway CA per test session, trusted through ``SSL_CERT_FILE``.

The bot makes every client context with `trio_companion.gateway.tls.make_ssl_context`, which
trusts the file named by ``SSL_CERT_FILE`` when it is set. `trust_fake_ca` writes this CA's
certificate to a temporary file and points the variable at it for one test, so the bot verifies
the fakes' certificates exactly as it verifies discord.com's; there is no test-only path in the
bot. Fixtures (registered in ``tests/conftest.py``):

- `fake_ca`: the session's `trustme.CA`;
- `server_ssl_context`: a server context with a leaf certificate for ``127.0.0.1`` and
  ``localhost``, for the fake REST server and the fake gateway alike;
- `trust_fake_ca`: sets ``SSL_CERT_FILE`` for the test; returns the PEM's path.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from trio_companion.gateway.tls import CA_FILE_ENV

__all__ = ["fake_ca", "server_ssl_context", "trust_fake_ca"]


@pytest.fixture(scope="session")
def fake_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_ssl_context(fake_ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    fake_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def trust_fake_ca(fake_ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pem = tmp_path / "fake-ca.pem"
    fake_ca.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv(CA_FILE_ENV, str(pem))
    return pem
