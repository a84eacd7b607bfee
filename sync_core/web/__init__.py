"""The HTTP answers behind function_app.py: the routes and their models, /status, /health, /dashboard and the
OpenAPI document.

Its modules are imported by name (`from sync_core.web import api`); the package imports none of them
itself, so loading one module never loads the rest."""

__all__ = [
    "api",
    "api_models",
    "dashboard",
    "health",
    "health_models",
    "openapi",
    "responses",
    "runtime_info",
    "status",
]
