"""StoreOps tenant runtime: executes workflow templates for one retailer, in isolation.

It may import only ``control_plane.contracts`` from the control plane (checked by
import-linter in ``make lint``).
"""

from control_plane.contracts import CONTRACT_VERSION

__all__ = ["CONTRACT_VERSION"]
