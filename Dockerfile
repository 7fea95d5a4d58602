# One image for web, worker and the one-shot migrate job (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# bubblewrap: run_python's sandbox (docs/security.md). Without it the worker does not offer the tool.
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# The admin's CSS and JS, served by WhiteNoise from gunicorn (settings.STATIC_ROOT, var/static).
RUN python manage.py collectstatic --noinput --verbosity 0
RUN useradd --create-home horizon && chown -R horizon /app
USER horizon
EXPOSE 8000
# The worker (docker-compose.yml): celery -A horizon_project worker -l INFO -Q horizon,horizon.control -P threads --concurrency 500 -E
CMD ["gunicorn", "horizon_project.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2"]
