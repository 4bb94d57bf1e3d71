"""Redirects over real TLS: a downgrade from https to http is refused unless allowed."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

import surefetch
from surefetch import DownloadError, RetryEvent
from surefetch._cli.main import main
from surefetch.testing import ChaosServer, Fault, no_wait

# The protocol matrix: every test runs on both transports of the synchronous API.
pytestmark = pytest.mark.usefixtures("transport")

DATA = b"plaintext bytes " * 4096


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(autouse=True)
def _environment(
    monkeypatch: pytest.MonkeyPatch, authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    for name in (
        "SUREFETCH_HTTP_RETRIES",
        "SUREFETCH_OFFLINE",
        "SUREFETCH_CACHE_DIR",
        "SUREFETCH_ALLOW_INSECURE_REDIRECTS",
    ):
        monkeypatch.delenv(name, raising=False)
    with no_wait():
        yield


def _tls(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def secure(authority: trustme.CA) -> Iterator[ChaosServer]:
    with ChaosServer(files={"/data.bin": DATA}, ssl_context=_tls(authority)) as server:
        yield server


@pytest.fixture
def plain() -> Iterator[ChaosServer]:
    with ChaosServer(files={"/data.bin": DATA}) as server:
        yield server


@pytest.fixture
def events() -> Iterator[list[RetryEvent]]:
    seen: list[RetryEvent] = []
    unsubscribe = surefetch.add_retry_hook(seen.append)
    yield seen
    unsubscribe()


def _redirect(server: ChaosServer, to: str, *, times: int = 1) -> None:
    server.script("/data.bin", [Fault.status(302, headers={"Location": to})] * times)


def test_a_redirect_from_https_to_http_is_refused(
    secure: ChaosServer, plain: ChaosServer, tmp_path: Path, events: list[RetryEvent]
) -> None:

    _redirect(secure, plain.url("/data.bin") + "?sig=t0psecret")
    url = secure.url("/data.bin", userinfo="alice:pw1234") + "?token=s3cret"
    with pytest.raises(DownloadError) as info:
        surefetch.fetch(url, cache=tmp_path, retries=3)
    cause = info.value.__cause__
    assert cause is not None
    text = str(cause)
    assert text.startswith(
        f"Refusing to follow the redirect from {secure.url('/data.bin')}?token=*** "
        f"to {plain.url('/data.bin')}?sig=***: "
    )
    assert "allow_insecure_redirects" in text and "SUREFETCH_ALLOW_INSECURE_REDIRECTS" in text
    assert "s3cret" not in text and "t0psecret" not in text and "pw1234" not in text
    assert not surefetch.classify(cause).retry
    assert events == []  # fatal: never retried
    assert secure.request_count() == 1
    assert plain.request_count() == 0  # not one plaintext byte was asked for
    assert not list(tmp_path.glob("downloads-v1/*/*"))


@pytest.mark.parametrize("how", ["keyword", "fetch_many", "environment", "config file"])
def test_a_downgrade_is_followed_when_allowed(
    secure: ChaosServer,
    plain: ChaosServer,
    tmp_path: Path,
    how: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _redirect(secure, plain.url("/data.bin"))
    kwargs: dict[str, object] = {}
    if how == "keyword":
        kwargs["allow_insecure_redirects"] = True
    elif how == "environment":
        monkeypatch.setenv("SUREFETCH_ALLOW_INSECURE_REDIRECTS", "1")
    else:
        monkeypatch.chdir(tmp_path)
        (tmp_path / "surefetch.toml").write_text("allow_insecure_redirects = true\n")
    url = secure.url("/data.bin", userinfo="alice:pw1234")
    if how == "fetch_many":
        many = surefetch.fetch_many([url], cache=tmp_path / "cache", allow_insecure_redirects=True)
        path = many[0]
    else:
        path = surefetch.fetch(url, cache=tmp_path / "cache", **kwargs)  # type: ignore[arg-type]
    assert path.read_bytes() == DATA
    assert secure.requests[0].headers.get("authorization", "").startswith("Basic ")
    assert "authorization" not in plain.requests[0].headers  # another origin


def test_the_keyword_wins_over_the_setting(
    secure: ChaosServer, plain: ChaosServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUREFETCH_ALLOW_INSECURE_REDIRECTS", "1")
    _redirect(secure, plain.url("/data.bin"))
    with pytest.raises(DownloadError) as info:
        surefetch.fetch(secure.url("/data.bin"), cache=tmp_path, allow_insecure_redirects=False)
    assert str(info.value.__cause__).startswith("Refusing to follow the redirect")
    assert plain.request_count() == 0


def test_the_command_line_refuses_a_downgrade_unless_asked(
    secure: ChaosServer,
    plain: ChaosServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _redirect(secure, plain.url("/data.bin"), times=2)
    args = ["fetch", secure.url("/data.bin"), "--cache-dir", str(tmp_path)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: Failed to download {secure.url('/data.bin')}\n")
    assert f"to {plain.url('/data.bin')}" in err and "--allow-insecure-redirects" in err
    assert plain.request_count() == 0
    assert main([*args, "--allow-insecure-redirects"]) == 0
    assert Path(capsys.readouterr().out.strip()).read_bytes() == DATA


def test_redirects_that_keep_the_scheme_are_followed(
    secure: ChaosServer, plain: ChaosServer, authority: trustme.CA, tmp_path: Path
) -> None:
    with ChaosServer(files={"/data.bin": DATA}, ssl_context=_tls(authority)) as other:
        _redirect(secure, "/moved.bin")  # relative: the same origin
        secure.script(
            "/moved.bin", [Fault.status(307, headers={"Location": other.url("/data.bin")})]
        )
        url = secure.url("/data.bin", userinfo="alice:pw1234")
        assert surefetch.fetch(url, cache=tmp_path / "a").read_bytes() == DATA
        assert [r.path for r in secure.requests] == ["/data.bin", "/moved.bin"]
        assert all(r.headers.get("authorization") for r in secure.requests)
        assert "authorization" not in other.requests[0].headers  # another origin
    with ChaosServer() as hop:
        hop.script("/data.bin", [Fault.status(301, headers={"Location": plain.url("/data.bin")})])
        assert surefetch.fetch(hop.url("/data.bin"), cache=tmp_path / "b").read_bytes() == DATA


def test_a_redirect_loop_is_a_clear_error_and_not_retried(
    plain: ChaosServer, tmp_path: Path, events: list[RetryEvent]
) -> None:
    _redirect(plain, plain.url("/data.bin"), times=50)
    with pytest.raises(DownloadError) as info:
        surefetch.fetch(plain.url("/data.bin"), cache=tmp_path, retries=3)
    assert "redirect" in str(info.value.__cause__).lower()
    assert events == []
    assert plain.request_count() == 11  # the first request and ten redirects
