"""trailseal.server: the ASGI application (native API under /v1, façades under /compat)."""
