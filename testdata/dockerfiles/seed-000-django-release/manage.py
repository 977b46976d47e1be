# placeholder: Django's manage.py
