"""The runtime's own database: runs, steps, the outbox and dead letters (SQLAlchemy Core)."""
