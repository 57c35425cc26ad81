"""StoreOps control plane: tenancy, identity, catalog, deployments, telemetry, billing."""
