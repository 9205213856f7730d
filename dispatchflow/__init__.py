"""dispatchflow: real-time dispatch and ETA for delivery marketplaces."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dispatchflow")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
