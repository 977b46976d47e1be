# ASGI entry point: config.asgi:application (placeholder).
