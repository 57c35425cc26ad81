"""Wire and DSL types shared with the tenant runtime: pure data, no I/O."""

from control_plane.contracts.ids import uuid7, uuid7_time

CONTRACT_VERSION = 1

__all__ = ["CONTRACT_VERSION", "uuid7", "uuid7_time"]
