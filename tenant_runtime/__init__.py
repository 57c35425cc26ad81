"""StoreOps tenant runtime: executes workflow templates for one retailer, in isolation.

It may import only ``control_plane.contracts`` from the control plane (checked by
import-linter in ``make lint``).
"""

from importlib.metadata import PackageNotFoundError, version

from control_plane.contracts import CONTRACT_VERSION

try:
    __version__ = version("storeops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["CONTRACT_VERSION", "__version__"]
