"""The arguments of a fetch as one value, and the settings it runs with, resolved once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from surefetch._fetch.request import FetchRequest, open_cache

if TYPE_CHECKING:
    from collections.abc import Sequence

    from surefetch._cache.store import Cache
    from surefetch._config import Settings
    from surefetch._extract.limits import ExtractLimits
    from surefetch._http.host_budget import HostRetryBudget
    from surefetch._http.session import Sessions
    from surefetch._http.stats import ProgressCallback
    from surefetch._retry.policy import RetryPolicy


@dataclass(frozen=True, slots=True)
class FetchArgs:
    """The keyword arguments of `fetch`, `afetch` and `afetch_result`, as one value.

    Its fields are exactly those functions' parameters (a test checks it),
    so each of them builds one with ``FetchArgs(**locals())`` and nothing is
    written out or forwarded twice.
    """

    url: str
    sha256: str | None = None
    size: int | None = None
    mirrors: Sequence[str] = ()
    cache: Cache | str | os.PathLike[str] | None = None
    policy: RetryPolicy | None = None
    retries: int | None = None
    offline: bool | None = None
    refresh: bool = False
    progress: ProgressCallback | None = None
    extract: bool = False
    strip_components: int = 0
    limits: ExtractLimits | None = None
    extract_to: str | os.PathLike[str] | None = None
    allow_insecure_redirects: bool | None = None
    max_age: float | None = None

    def request(self) -> FetchRequest:
        """What to fetch, checked when it is resolved."""
        return FetchRequest(
            self.url,
            sha256=self.sha256,
            mirrors=tuple(self.mirrors),
            size=self.size,
            extract=self.extract or self.extract_to is not None,
            strip_components=self.strip_components,
            extract_to=None if self.extract_to is None else os.fspath(self.extract_to),
        )

    def options(self) -> Options:
        """How to fetch it: the settings, resolved."""
        return make_options(
            cache=self.cache,
            policy=self.policy,
            retries=self.retries,
            offline=self.offline,
            refresh=self.refresh,
            progress=self.progress,
            limits=self.limits,
            allow_insecure_redirects=self.allow_insecure_redirects,
            max_age=self.max_age,
        )


@dataclass(frozen=True, slots=True)
class Options:
    """Everything a fetch needs besides the request, resolved once."""

    cache: Cache
    policy: RetryPolicy
    offline: bool
    refresh: bool
    host_budget: HostRetryBudget
    progress: ProgressCallback | None
    connect_timeout: float
    read_timeout: float
    limits: ExtractLimits | None = None
    allow_insecure_redirects: bool = False
    max_age: float | None = None

    def sessions(self, *, limit: int = 100, keep: bool = False) -> Sessions:
        """A lazily made HTTP session with these timeouts and ``limit`` connections.

        With ``keep``, the session kept by the running event loop (`Sessions`).
        """
        from surefetch._http.session import Sessions

        return Sessions(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            limit=limit,
            keep=keep,
        )


def make_options(
    *,
    cache: Cache | str | os.PathLike[str] | None,
    policy: RetryPolicy | None,
    retries: int | None,
    offline: bool | None,
    refresh: bool,
    progress: ProgressCallback | None,
    limits: ExtractLimits | None = None,
    allow_insecure_redirects: bool | None = None,
    max_age: float | None = None,
) -> Options:
    """The `Options` of a call: its arguments over the settings (variables, config files)."""
    from surefetch._config import (
        ALLOW_INSECURE_REDIRECTS,
        CONNECT_TIMEOUT,
        HTTP_TIMEOUT,
        OFFLINE,
        Settings,
    )
    from surefetch._http.host_budget import default_host_budget
    from surefetch._retry.budget import default_policy

    settings = Settings()
    policy = policy or default_policy()
    if retries is not None:
        policy = policy.replace(retries=retries)
    return Options(
        cache=open_cache(cache, settings),
        policy=policy,
        offline=settings.get(OFFLINE) if offline is None else offline,
        refresh=refresh,
        host_budget=default_host_budget,
        progress=progress,
        connect_timeout=settings.get(CONNECT_TIMEOUT),
        read_timeout=settings.get(HTTP_TIMEOUT),
        limits=limits,
        allow_insecure_redirects=(
            settings.get(ALLOW_INSECURE_REDIRECTS)
            if allow_insecure_redirects is None
            else allow_insecure_redirects
        ),
        max_age=resolve_max_age(max_age, settings),
    )


def resolve_max_age(max_age: float | None, settings: Settings | None = None) -> float | None:
    """The ``max_age`` of a call: its argument (checked), else the setting."""
    from surefetch._config import MAX_AGE, Settings

    if max_age is None:
        return (settings or Settings()).get(MAX_AGE)
    return MAX_AGE.parse(max_age, label="max_age")
