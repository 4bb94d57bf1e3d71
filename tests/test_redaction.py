"""Credentials never shown: the rule for secret-looking query keys, argparse's messages,
and the real URL (not the redacted one) wherever the real one is needed."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from hypothesis import given, strategies as st

from surefetch._cache.layout import url_key
from surefetch._cli.main import main
from surefetch._url import Redactor, is_secret_key, parse_url, redact_url
from surefetch.testing import ChaosServer, Fault

DATA = random.Random(10).randbytes(50_000)
SHA = hashlib.sha256(DATA).hexdigest()
SECRET = "S3cretPW"

# (key, an example value): every one of these is hidden.
SECRET_PAIRS = [
    ("code", "4/0AX4XfWh"),  # an OAuth authorization code
    ("access_token", "ya29.a0AfH6"),
    ("id_token", "eyJhbGciOi"),
    ("refresh_token", "1//0gLm"),
    ("client_secret", "GOCSPX-x1"),
    ("api_key", "AIzaSyD-1"),
    ("apikey", "k-123456"),
    ("X-Api-Key", "k-123456"),
    ("key", "0123456789"),
    ("password", "hunter22"),
    ("passwd", "hunter22"),
    ("pwd", "hunter22"),
    ("auth", "Zm9vOmJhcg"),
    ("authorization", "Bearer-x"),
    ("credential", "c-123456"),
    ("session", "s-123456"),
    ("sessionid", "s-123456"),
    ("sid", "s-123456"),
    ("cookie", "a=b;c=d"),
    ("jwt", "eyJhbGciOi"),
    ("hmac", "a1b2c3d4e5"),
    # AWS Signature Version 4: every X-Amz-* parameter is part of the signature.
    ("X-Amz-Signature", "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"),
    ("X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"),
    ("X-Amz-Security-Token", "IQoJb3JpZ2luX2VjE"),
    ("X-Amz-Date", "20130524T000000Z"),
    ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
    # AWS Signature Version 2 and CloudFront signed URLs.
    ("AWSAccessKeyId", "AKIAIOSFODNN7EXAMPLE"),
    ("Signature", "vjbyPxybdZaNmGa%2ByT272YEAiv4%3D"),
    ("Key-Pair-Id", "K2JCJMDEHXQW5F"),
    # Google Cloud Storage V4 signed URLs.
    ("X-Goog-Signature", "5eae8c4d3a1b"),
    ("X-Goog-Credential", "sa@project.iam.gserviceaccount.com/20190301/auto/storage/goog4_request"),
    ("GoogleAccessId", "sa@project.iam.gserviceaccount.com"),
    # An Azure shared access signature: the signature and the fields it signs.
    ("sv", "2021-08-06"),
    ("ss", "bfqt"),
    ("srt", "sco"),
    ("sp", "racwdl"),
    ("se", "2030-01-01T00:00:00Z"),
    ("st", "2024-01-01T00:00:00Z"),
    ("spr", "https"),
    ("sr", "b"),
    ("si", "policy-1"),
    ("sig", "lO%2Bwr%2F0m1o8Y%3D"),
    ("skoid", "00000000-0000"),
    ("sktid", "00000000-0000"),
]
# Keys that are not secret: their values stay, so that a URL stays recognisable.
PUBLIC_PAIRS = [
    ("version", "1.2"),
    ("v", "3"),
    ("name", "f.tar.gz"),
    ("filename", "a-1.0-py3-none-any.whl"),
    ("format", "zip"),
    ("page", "2"),
    ("id", "42"),
    ("ref", "main"),
    ("download", "1"),
    ("dl", "1"),
    ("arch", "x86_64"),
    ("platform", "linux"),
    ("python", "3.12"),
    ("alt", "media"),
    ("generation", "1700000000000000"),
    ("raw", "true"),
    ("response-content-type", "application/octet-stream"),
    ("Expires", "1700000000"),
    ("sha256", SHA),
]


@pytest.mark.parametrize(("key", "value"), SECRET_PAIRS)
def test_a_secret_looking_key_has_its_value_hidden(key: str, value: str) -> None:
    url = f"https://h.example/f.tar.gz?{key}={value}&version=1.2"
    shown = redact_url(url)
    assert shown == f"https://h.example/f.tar.gz?{key}=***&version=1.2"
    assert is_secret_key(key)
    if len(value) >= 3:
        assert value not in Redactor([url]).scrub(f"GET {url} failed ({value})")


@pytest.mark.parametrize(("key", "value"), PUBLIC_PAIRS)
def test_a_public_key_keeps_its_value(key: str, value: str) -> None:
    url = f"https://h.example/f.tar.gz?{key}={value}&token=abc"
    assert redact_url(url) == f"https://h.example/f.tar.gz?{key}={value}&token=***"
    assert not is_secret_key(key)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # The rest of the URL keeps its exact form: no re-encoding of what stays.
        ("https://h/x?a=b%2Fc&sig=abc&q=a+b", "https://h/x?a=b%2Fc&sig=***&q=a+b"),
        # An encoded key is decoded before the rule is applied.
        ("https://h/x?access%5Ftoken=abc", "https://h/x?access%5Ftoken=***"),
        # A token in the fragment (the OAuth implicit flow) is never sent, but is shown.
        ("https://h/x#access_token=abc&state=1", "https://h/x#access_token=***&state=1"),
        ("https://h/x#section-2", "https://h/x#section-2"),
        # Without a scheme, user:password@ is still user information.
        ("alice:S3cretPW@h.example/x", "***@h.example/x"),
        ("//alice:S3cretPW@h.example/x", "//***@h.example/x"),
        ("https://h/x?token", "https://h/x?token"),
        ("https://h/x?", "https://h/x?"),
    ],
)
def test_redact_url_forms(url: str, shown: str) -> None:
    assert redact_url(url) == shown


SECRET_WORDS = ["token", "secret", "password", "passwd", "pwd", "auth", "credential", "session"]
SECRET_WORDS += ["sig", "signature", "key", "code", "cookie", "jwt", "hmac"]
AZURE_KEYS = ["sv", "ss", "srt", "sp", "se", "st", "spr", "sr", "si", "sip", "sig", "skoid"]
affix = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-", max_size=6)
secret_keys = st.one_of(
    st.builds(
        lambda before, word, after, upper: (
            (before + word + after).upper() if upper else before + word + after
        ),
        affix,
        st.sampled_from(SECRET_WORDS),
        affix,
        st.booleans(),
    ),
    st.builds(
        lambda prefix, rest: prefix + rest,
        st.sampled_from(["X-Amz-", "x-amz-", "X-Goog-", "x-goog-"]),
        st.text(min_size=1, max_size=12),
    ),
    st.sampled_from(AZURE_KEYS),
)
public_keys = st.sampled_from([key for key, _ in PUBLIC_PAIRS])
values = st.text(min_size=1, max_size=30)


@given(
    pairs=st.lists(
        st.tuples(st.one_of(secret_keys, public_keys), values),
        min_size=1,
        max_size=6,
    )
)
def test_no_value_of_a_secret_key_survives(pairs: list[tuple[str, str]]) -> None:
    query = urlencode(pairs)
    url = f"https://h.example/f.tar.gz?{query}"
    shown = urlsplit(redact_url(url)).query
    seen = parse_qsl(shown, keep_blank_values=True)
    assert [k for k, _ in seen] == [k for k, _ in pairs]
    for (key, value), (_, visible) in zip(pairs, seen, strict=True):
        assert visible == ("***" if is_secret_key(key) else value)
    # Whatever the rule hides, a text quoting the URL loses too (a value long
    # enough to be scrubbed out of free text: see `secrets_of`).
    scrubbed = Redactor([url]).scrub(f"failed: {url} ({shown})")
    for key, value in pairs:
        encoded = urlencode([(key, value)]).partition("=")[2]
        if is_secret_key(key) and len(value) >= 3 and "*" not in value:
            assert value not in scrubbed and encoded not in scrubbed


@given(key=secret_keys)
def test_every_generated_secret_key_is_secret(key: str) -> None:
    assert is_secret_key(key)


@given(pairs=st.lists(st.tuples(public_keys, values), min_size=1, max_size=6))
def test_a_url_without_secrets_is_shown_unchanged(pairs: list[tuple[str, str]]) -> None:
    url = f"https://h.example/f.tar.gz?{urlencode(pairs)}"
    assert redact_url(url) == url


# --- argparse's own messages -------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        # An extra positional argument: "unrecognized arguments: ..."
        ["fetch", f"http://alice:{SECRET}@h.invalid/a", f"http://bob:{SECRET}@h.invalid/b"],
        ["fetch", "http://h.invalid/a", f"http://h.invalid/b?X-Amz-Signature={SECRET}"],
        ["fetch", "http://h.invalid/a", f"extra?token={SECRET}"],
        ["fetch", "http://h.invalid/a", f"--bogus=http://alice:{SECRET}@h.invalid/"],
        ["cache", "dir", f"https://t:{SECRET}@h.invalid/"],
        # An invalid choice of command quotes it.
        [f"http://alice:{SECRET}@h.invalid/"],
        ["cache", f"http://alice:{SECRET}@h.invalid/"],
        # Not argparse, but the same class: a URL that is refused says why, redacted.
        ["fetch", f"alice:{SECRET}@h.invalid/a"],
        ["fetch", "http://h.invalid/a", "--mirror", f"alice:{SECRET}@h.invalid/b"],
    ],
)
def test_usage_errors_never_echo_a_credential(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code  # type: ignore[assignment]
    out, err = capsys.readouterr()
    assert code == 2, err
    assert SECRET not in out + err, err
    assert "error" in err and "***" in err, err


# --- the real URL where it is needed ------------------------------------------------------


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    with ChaosServer(files={"/f.bin": DATA}) as chaos:
        yield chaos


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SUREFETCH_NO_RETRY_DELAY", "1")
    monkeypatch.setenv("SUREFETCH_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("SUREFETCH_HTTP_RETRIES", "SUREFETCH_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


def test_the_real_query_is_sent_and_keys_the_cache_while_output_is_redacted(
    server: ChaosServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = "X-Amz-Credential=AKIAEXAMPLE1&X-Amz-Signature=abc123sig&sv=2021-08-06&code=c0de42"
    url = f"{server.url('/f.bin')}?{query}"
    server.script("/f.bin", [Fault.status(503)])
    assert main(["fetch", url, "--json", "-v"]) == 0
    out, err = capsys.readouterr()
    assert [r.target for r in server.requests] == [f"/f.bin?{query}"] * 2
    for secret in ("AKIAEXAMPLE1", "abc123sig", "2021-08-06", "c0de42"):
        assert secret not in out + err
    record = json.loads(out)
    assert record["url"] == redact_url(url)
    assert "X-Amz-Signature=***" in err  # the retry's log line names the URL, redacted
    # Keyed by the real URL: the entry is where the real URL's key says, and
    # another signature is another entry.
    assert Path(record["path"]).parent.parent.name == url_key(parse_url(url).url)
    other = url.replace("abc123sig", "def456sig")
    assert main(["fetch", other]) == 0
    assert main(["fetch", url]) == 0
    assert server.request_count() == 3
    # The entry's metadata on disk holds the redacted URL, never the secret.
    for meta in (tmp_path / "cache").rglob("entry.json"):
        text = meta.read_text()
        assert "abc123sig" not in text and "def456sig" not in text


def test_redaction_does_not_spoil_the_json_output(
    server: ChaosServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # A secret that happens to occur in the file's hash or path: the real values
    # in --json stay real; only the URL is redacted.
    url = f"{server.url('/f.bin')}?token={SHA[10:20]}"
    assert main(["fetch", url, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["sha256"] == SHA
    assert Path(record["path"]).read_bytes() == DATA
    assert record["url"].endswith("?token=***")
