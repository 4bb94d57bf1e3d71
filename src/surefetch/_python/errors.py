"""The errors of managed Python installs."""

from __future__ import annotations

from surefetch._errors import SurefetchError


class PythonInstallError(SurefetchError):
    """Installing a Python failed: "Failed to install cpython-3.12.4-linux-x86_64-gnu".

    ``key`` is the installation key; ``__cause__`` says why (for a download
    that ran out of retries: "Request failed after 3 retries in 7.1s", then
    "Failed to extract archive: NAME", then the network error).

    Example:
        >>> error = PythonInstallError("cpython-3.12.4-linux-x86_64-gnu")
        >>> print(error)
        Failed to install cpython-3.12.4-linux-x86_64-gnu
    """

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"Failed to install {key}")


class PythonNotFoundError(SurefetchError):
    """No Python matches a request: none available for this platform, or none installed.

    Example:
        >>> print(PythonNotFoundError("No Python matching '3.99' is installed"))
        No Python matching '3.99' is installed
    """
