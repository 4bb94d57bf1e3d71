"""Proxies from the environment (``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``), on both transports.

Through a real forward proxy on loopback (`ForwardProxy`): plain ``http``
goes to the proxy in absolute form, ``https`` through a ``CONNECT`` tunnel
(verified end to end against the origin's certificate), the proxy's
credentials go in ``Proxy-Authorization``, and ``NO_PROXY`` keeps a host
off the proxy.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

import surefetch
from forward_proxy import ForwardProxy
from surefetch import DownloadError
from surefetch.testing import ChaosServer, no_wait

# The protocol matrix: every test runs on both transports of the synchronous API.
pytestmark = pytest.mark.usefixtures("transport")

DATA = b"through the proxy " * 5000
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(autouse=True)
def _environment(
    monkeypatch: pytest.MonkeyPatch, authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("SUREFETCH_HTTP_RETRIES", raising=False)
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    with no_wait():
        yield


@pytest.fixture
def plain() -> Iterator[ChaosServer]:
    with ChaosServer(files={"/data.bin": DATA}) as server:
        yield server


@pytest.fixture
def secure(authority: trustme.CA) -> Iterator[ChaosServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    with ChaosServer(files={"/data.bin": DATA}, ssl_context=context) as server:
        yield server


def test_plain_http_goes_to_the_proxy_in_absolute_form(
    plain: ChaosServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        path = surefetch.fetch(plain.url("/data.bin"), cache=tmp_path)
    assert path.read_bytes() == DATA
    assert [(a.method, a.target) for a in proxy.asked] == [("GET", plain.url("/data.bin"))]
    assert plain.request_count() == 1


def test_https_goes_through_a_connect_tunnel_and_is_verified(
    secure: ChaosServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        path = surefetch.fetch(secure.url("/data.bin"), cache=tmp_path)
    assert path.read_bytes() == DATA
    assert [(a.method, a.target) for a in proxy.asked] == [("CONNECT", f"127.0.0.1:{secure.port}")]


def test_fetch_many_goes_through_the_proxy_for_both_schemes(
    plain: ChaosServer, secure: ChaosServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        urls = [plain.url("/data.bin"), secure.url("/data.bin")]
        paths = surefetch.fetch_many(urls, cache=tmp_path)
    assert [p.read_bytes() for p in paths] == [DATA, DATA]
    asked = sorted((a.method, a.target) for a in proxy.asked)
    assert asked == [("CONNECT", f"127.0.0.1:{secure.port}"), ("GET", plain.url("/data.bin"))]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_proxy_credentials_are_sent_to_the_proxy(
    plain: ChaosServer,
    secure: ChaosServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scheme: str,
) -> None:
    server = plain if scheme == "http" else secure
    expected = "Basic cHJveHl1c2VyOnByb3h5cGFzcw=="  # proxyuser:proxypass
    with ForwardProxy(authorization=expected) as proxy:
        monkeypatch.setenv(f"{scheme.upper()}_PROXY", proxy.url("proxyuser:proxypass"))
        path = surefetch.fetch(server.url("/data.bin"), cache=tmp_path)
    assert path.read_bytes() == DATA
    assert [a.authorization for a in proxy.asked] == [expected]
    # The origin never sees the proxy's credentials.
    assert all("proxy-authorization" not in r.headers for r in server.requests)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_proxy_that_refuses_the_credentials_is_not_retried(
    plain: ChaosServer,
    secure: ChaosServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scheme: str,
) -> None:
    server = plain if scheme == "http" else secure
    with ForwardProxy(authorization="Basic c29tZW9uZTplbHNl") as proxy:
        monkeypatch.setenv(f"{scheme.upper()}_PROXY", proxy.url("proxyuser:wrong"))
        with pytest.raises(DownloadError) as info:
            surefetch.fetch(server.url("/data.bin"), cache=tmp_path, retries=3)
    assert len(proxy.asked) == 1  # a 407 is no reason to ask again
    assert "407" in str(info.value.__cause__)
    assert server.request_count() == 0


def test_no_proxy_keeps_a_host_off_the_proxy(
    plain: ChaosServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        path = surefetch.fetch(plain.url("/data.bin"), cache=tmp_path)
    assert path.read_bytes() == DATA
    assert proxy.asked == []
    assert plain.request_count() == 1
