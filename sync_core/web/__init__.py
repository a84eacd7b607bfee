"""The HTTP answers: the routes, their models and responses, /status, /health, /dashboard and the OpenAPI document."""
