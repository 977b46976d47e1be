"""Seed 003's ECS service: a Flask app with its templates in /app/templates."""

import getpass

from flask import Flask, render_template

app = Flask(__name__)


@app.route("/")
def index():
    return render_template("index.html", user=getpass.getuser())


@app.route("/health")
def health_check():
    return {"status": "healthy"}, 200
