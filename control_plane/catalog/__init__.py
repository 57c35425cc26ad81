"""The workflow template catalog: lint, publish, versions, forks, visibility."""
