"""The HTTP service: app factory, configuration, the single writer, the server."""
