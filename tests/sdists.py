"""Small source distributions for the wheel tests, made on the spot.

Each sdist's backend is an in-tree wrapper (``backend-path``) around the
real one (setuptools, flit_core or hatchling). The wrapper appends a line
to ``record`` every time a backend process imports it, so a test can tell
whether any backend process ran, and it can be told to misbehave
(``mode``): fail with output, write a corrupt or mislabelled wheel, or hang
after saying it started.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

REAL = {
    "setuptools": ("setuptools.build_meta", "setuptools>=61"),
    "flit": ("flit_core.buildapi", "flit_core>=3.4"),
    "hatchling": ("hatchling.build", "hatchling>=1.0"),
}

HOOKS = (
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_wheel",
    "get_requires_for_build_sdist",
    "build_sdist",
)

_WRAPPER = """
import os, sys, time, zipfile
import {real} as _real

RECORD = {record!r}
MODE = {mode!r}
with open(RECORD, "a") as _file:
    _file.write(f"backend process {{os.getpid()}}\\n")

for _name in {hooks!r}:
    if hasattr(_real, _name):
        globals()[_name] = getattr(_real, _name)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open(RECORD, "a") as file:
        file.write(f"build_wheel {{config_settings!r}}\\n")
    if MODE == "fail":
        print("compiling the flux capacitor")
        print("fatal: the flux capacitor is missing", file=sys.stderr)
        sys.exit(3)
    if MODE == "hang":
        open(RECORD + ".started", "w").close()
        time.sleep(600)
    name = _real.build_wheel(wheel_directory, config_settings, metadata_directory)
    if MODE == "corrupt":
        with open(os.path.join(wheel_directory, name), "r+b") as file:
            file.truncate(40)
    if MODE == "mislabelled":
        other = name.replace("-1.0-", "-9.9-")
        os.rename(os.path.join(wheel_directory, name), os.path.join(wheel_directory, other))
        name = other
    return name
"""

_C_SOURCE = """
#include <Python.h>
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speed", NULL, -1, methods};
PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&module); }
"""


def has_compiler() -> bool:
    return shutil.which("cc") is not None or shutil.which("gcc") is not None


def make_sdist(
    directory: Path,
    *,
    backend: str = "setuptools",
    record: Path,
    mode: str = "ok",
    name: str | None = None,
    extension: bool = False,
) -> Path:
    """Write ``<name>-1.0.tar.gz`` into ``directory`` and return its path."""
    real, requirement = REAL[backend]
    name = name or f"demo_{backend}{'_c' if extension else ''}"
    files: dict[str, str] = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nSummary: A demo.\n",
        f"{name}/__init__.py": '"""A demo."""\n',
        "_recording.py": _WRAPPER.format(real=real, record=str(record), mode=mode, hooks=HOOKS),
    }
    pyproject = (
        "[build-system]\n"
        f'requires = ["{requirement}"]\n'
        'build-backend = "_recording"\n'
        'backend-path = ["."]\n\n'
        "[project]\n"
        f'name = "{name}"\nversion = "1.0"\ndescription = "A demo."\n'
    )
    if backend == "setuptools":
        pyproject += f'\n[tool.setuptools]\npackages = ["{name}"]\n'
    if backend == "hatchling":
        pyproject += f'\n[tool.hatch.build.targets.wheel]\npackages = ["{name}"]\n'
    if extension:
        files[f"{name}/_speed.c"] = _C_SOURCE
        files["setup.py"] = (
            "from setuptools import Extension, setup\n"
            f'setup(ext_modules=[Extension("{name}._speed", ["{name}/_speed.c"])])\n'
        )
    files["pyproject.toml"] = pyproject
    top = f"{name}-1.0"
    path = directory / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for member, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{member}")
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1_600_000_000  # zip (a wheel) cannot hold times before 1980
            archive.addfile(info, io.BytesIO(data))
    return path


def backend_processes(record: Path) -> int:
    """How many backend processes have started (each imports the wrapper once)."""
    if not record.exists():
        return 0
    return sum(line.startswith("backend process") for line in record.read_text().splitlines())


def wheel_builds(record: Path) -> list[str]:
    """The ``build_wheel`` calls so far, with their config settings."""
    if not record.exists():
        return []
    return [line for line in record.read_text().splitlines() if line.startswith("build_wheel")]
