"""Writes go through these services; views, commands, admin actions and Celery tasks call them."""
