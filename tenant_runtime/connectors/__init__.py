"""Connectors: how a tenant runtime calls a retailer's systems (ERP, POS, WMS...)."""

from tenant_runtime.connectors.auth import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    ConnectorAuth,
    NoAuth,
    OAuth2ClientCredentials,
)
from tenant_runtime.connectors.errors import ConnectorConfigError, ConnectorError, ErrorClass
from tenant_runtime.connectors.rest import IDEMPOTENCY_HEADER, RestConnector
from tenant_runtime.connectors.retry import RetryPolicy, parse_retry_after

__all__ = [
    "IDEMPOTENCY_HEADER",
    "ApiKeyAuth",
    "BasicAuth",
    "BearerAuth",
    "ConnectorAuth",
    "ConnectorConfigError",
    "ConnectorError",
    "ErrorClass",
    "NoAuth",
    "OAuth2ClientCredentials",
    "RestConnector",
    "RetryPolicy",
    "parse_retry_after",
]
