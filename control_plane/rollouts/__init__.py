"""Fleet rollouts: a template version moved across many tenants in gated waves."""
