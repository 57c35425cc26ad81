"""The tenant runtime's HTTP surface: JSON API, signed webhooks in, and the retailer portal."""

from tenant_runtime.api.app import create_runtime_app

__all__ = ["create_runtime_app"]
