"""TLS: verification is on by default, SSL_CERT_FILE is honoured, certificate errors are fatal."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

import surefetch
from surefetch import DownloadError
from surefetch.testing import ChaosServer, no_wait

# The protocol matrix: every test runs on both transports of the synchronous API.
pytestmark = pytest.mark.usefixtures("transport")


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(authority: trustme.CA) -> Iterator[ChaosServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    with ChaosServer(files={"/secret.bin": b"over tls" * 100}, ssl_context=context) as server:
        yield server


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SUREFETCH_HTTP_RETRIES", raising=False)
    with no_wait():
        yield


def test_an_unknown_certificate_authority_is_fatal_at_once(
    tls_server: ChaosServer, tmp_path: Path
) -> None:
    url = tls_server.url("/secret.bin")
    assert url.startswith("https://")
    retried: list[surefetch.RetryEvent] = []
    unsubscribe = surefetch.add_retry_hook(retried.append)
    try:
        with pytest.raises(DownloadError) as info:
            surefetch.fetch(url, cache=tmp_path / "cache", retries=3)
    finally:
        unsubscribe()
    assert retried == []  # a certificate error is never retried
    cause = info.value.__cause__
    assert cause is not None
    assert not isinstance(cause, surefetch.RetriesExhausted)
    assert surefetch.classify(cause).reason.startswith("TLS certificate error")
    assert not list((tmp_path / "cache").glob("downloads-v1/*/*"))


def test_ssl_cert_file_is_honoured(
    tls_server: ChaosServer,
    authority: trustme.CA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    path = surefetch.fetch(tls_server.url("/secret.bin"), cache=tmp_path / "cache")
    assert path.read_bytes() == b"over tls" * 100
    assert tls_server.request_count() == 1


def test_fetch_many_verifies_with_ssl_cert_file(
    tls_server: ChaosServer,
    authority: trustme.CA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    tls_server.add_file("/other.bin", b"second" * 100)
    urls = [tls_server.url("/secret.bin"), tls_server.url("/other.bin")]
    paths = surefetch.fetch_many(urls, cache=tmp_path / "cache", concurrency=2)
    assert [p.read_bytes() for p in paths] == [b"over tls" * 100, b"second" * 100]
