"""The durable workflow engine: run and step state, leases and fencing, the sweeper."""
