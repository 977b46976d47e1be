# Django's manage.py (placeholder).
