"""The control plane <-> runtime link: bootstrap tokens, desired state, reported status."""
