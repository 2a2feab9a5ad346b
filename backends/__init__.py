"""The built-in backend plugins, one module each.

The core finds them only through the entry-point group
`mlp_backends.backends` (see pyproject.toml), exactly as it finds a
third-party plugin. Each module imports its array library lazily.
"""
