"""White-label branding: themes, assets, domains, host -> brand resolution."""
