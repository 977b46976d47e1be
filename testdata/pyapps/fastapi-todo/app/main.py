"""Seed 001's to-do API: `app.main:app`, served by uvicorn on port 8000.
The seed keeps its to-dos in MongoDB; this one keeps them in memory, so it
runs with no service next to it."""

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(title="FastTodo")


class Todo(BaseModel):
    id: int
    title: str
    done: bool = False


TODOS = [Todo(id=1, title="run as appuser")]


@app.get("/health")
async def health_check():
    return {"status": "healthy"}


@app.get("/todos")
async def list_todos() -> list[Todo]:
    return TODOS


@app.get("/todos/{todo_id}")
async def get_todo(todo_id: int) -> Todo:
    return next(t for t in TODOS if t.id == todo_id)
