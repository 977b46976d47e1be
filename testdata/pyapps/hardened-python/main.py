"""Seed 004's app: `main:app`, served by uvicorn on ${PORT} with a /health
endpoint for the image's healthcheck."""

import getpass

from fastapi import FastAPI

from src import NAME

app = FastAPI()


@app.get("/health")
async def health_check():
    return {"status": "healthy"}


@app.get("/items/{item_id}")
async def item(item_id: int):
    # pydantic-core, a native wheel, parses item_id: "x" is a 422.
    return {"app": NAME, "item_id": item_id, "user": getpass.getuser()}
