"""Persistence: engine, scoped sessions, the declarative base."""

from control_plane.db.base import Base, Entity, JSONType, Scoped, utcnow
from control_plane.db.scope import Scope
from control_plane.db.session import Database, session_scope

__all__ = ["Base", "Database", "Entity", "JSONType", "Scope", "Scoped", "session_scope", "utcnow"]
