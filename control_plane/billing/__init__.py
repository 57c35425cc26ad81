"""Usage metering and white-label billing: meters from telemetry, price books, period
close into immutable invoices, credit notes."""

READ = "billing:read"
WRITE = "billing:write"
