# FastAPI app: app.main:app (placeholder).
