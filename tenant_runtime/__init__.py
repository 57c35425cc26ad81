"""StoreOps tenant runtime: executes workflow templates for one retailer, in isolation."""
