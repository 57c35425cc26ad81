"""Incident triage models, offline: a text classifier per target (category, priority)
behind one interface, and their evaluation."""
