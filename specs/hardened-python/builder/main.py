# ASGI entry point: main:app (placeholder).
