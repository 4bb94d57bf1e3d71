"""Running an sdist's PEP 517 backend through pypa/build, with its output captured.

``build.ProjectBuilder`` calls the hooks in a subprocess; the runner given
here captures that subprocess's output (logged at INFO, so ``-v`` shows it)
and keeps its last lines for the error when the backend fails. Isolation is
``build.env.DefaultIsolatedEnv``: a fresh environment whose build
requirements are installed by the installer it picks (pip, which reads the
environment's pip configuration: its index, find-links and constraints).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from surefetch._errors import SurefetchError
from surefetch._log import logger

#: How many of the backend's last output lines an error shows.
TAIL_LINES = 20
_DEFAULT_BACKEND = "setuptools.build_meta:__legacy__"


class BackendError(SurefetchError):
    """The build backend (or the installation of its requirements) failed.

    ``output`` holds the backend's last output lines (at most `TAIL_LINES`);
    the command line prints them under the error's ``Caused by:`` lines.

    Example:
        >>> error = BackendError("The build backend exited with status 1", output=("boom",))
        >>> str(error), error.output
        ('The build backend exited with status 1', ('boom',))
    """

    def __init__(self, message: str, *, output: Sequence[str] = ()) -> None:
        self.output = tuple(output)
        super().__init__(message)

    @property
    def surefetch_output(self) -> tuple[str, ...]:
        """The lines `surefetch._cli.output.format_error` prints as "Last output"."""
        return self.output


@dataclass
class _CapturingRunner:
    """A pyproject_hooks runner: the hook subprocess with its output captured and logged."""

    lines: list[str] = field(default_factory=list)

    def __call__(
        self,
        cmd: Sequence[str],
        cwd: str | None = None,
        extra_environ: Mapping[str, str] | None = None,
    ) -> None:
        env = dict(os.environ)
        if extra_environ:
            env.update(extra_environ)
        done = subprocess.run(
            list(cmd),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
        text = done.stdout.decode("utf-8", errors="replace")
        for line in text.splitlines():
            self.lines.append(line)
            logger.info("  backend: %s", line)
        if done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, list(cmd), output=done.stdout)

    def tail(self) -> list[str]:
        return [line for line in self.lines if line.strip()][-TAIL_LINES:]


def backend_name(source_dir: Path) -> str:
    """The ``build-backend`` that ``pyproject.toml`` names (PEP 517's default without one).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> text = '[build-system]\\nbuild-backend = "flit_core.buildapi"'
        >>> _ = (d / "pyproject.toml").write_text(text)
        >>> backend_name(d)
        'flit_core.buildapi'
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - the oldest Pythons
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    try:
        with open(source_dir / "pyproject.toml", "rb") as file:
            data = tomllib.load(file)
    except (OSError, ValueError):
        return _DEFAULT_BACKEND
    system = data.get("build-system")
    backend = system.get("build-backend") if isinstance(system, dict) else None
    return backend if isinstance(backend, str) else _DEFAULT_BACKEND


def _status(error: BaseException) -> str:
    cause = getattr(error, "exception", None)
    if isinstance(cause, subprocess.CalledProcessError):
        return f"The build backend exited with status {cause.returncode}"
    return f"The build backend failed: {error}"


def run_backend(
    source_dir: Path,
    output_dir: Path,
    *,
    isolation: bool,
    config_settings: Mapping[str, str | Sequence[str]] | None,
) -> Path:
    """Build a wheel of the project in ``source_dir`` into ``output_dir``; return its path.

    With ``isolation`` the backend's requirements are installed into a fresh
    environment; without, the current interpreter must already have them.
    """
    import build
    from build.env import DefaultIsolatedEnv

    runner = _CapturingRunner()
    settings = dict(config_settings) if config_settings else None
    try:
        if isolation:
            with DefaultIsolatedEnv() as env:
                builder = build.ProjectBuilder.from_isolated_env(env, source_dir, runner=runner)
                _install(env, builder.build_system_requires, runner)
                _install(env, builder.get_requires_for_build("wheel", settings), runner)
                built = builder.build("wheel", output_dir, config_settings=settings)
        else:
            builder = build.ProjectBuilder(
                source_dir, python_executable=sys.executable, runner=runner
            )
            missing = builder.check_dependencies("wheel", settings)
            if missing:
                shown = ", ".join(sorted(" -> ".join(chain) for chain in missing))
                raise BackendError(
                    f"The build requirements are not installed (needed without isolation): {shown}"
                )
            built = builder.build("wheel", output_dir, config_settings=settings)
    except build.BuildBackendException as error:
        raise BackendError(_status(error), output=runner.tail()) from None
    except build.BuildException as error:
        raise BackendError(f"The build backend cannot run: {error}", output=runner.tail()) from None
    return Path(built)


def _install(env: object, requirements: set[str], runner: _CapturingRunner) -> None:
    try:
        env.install(requirements)  # type: ignore[attr-defined]
    except subprocess.CalledProcessError as error:
        output = error.output or b""
        text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
        lines = [line for line in text.splitlines() if line.strip()][-TAIL_LINES:]
        wanted = ", ".join(sorted(requirements))
        raise BackendError(
            f"Installing the build requirements ({wanted}) failed with status {error.returncode}",
            output=lines or runner.tail(),
        ) from None
