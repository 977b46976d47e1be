# FastAPI app: src.main:app (placeholder).
