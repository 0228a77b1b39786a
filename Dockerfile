# One image for every service; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DISTILLERY_VAR_DIR=/var/lib/distillery
WORKDIR /app
COPY requirements.txt .
# torch==2.13.0 is pinned; build with a torch index that matches your CUDA driver if needed:
#   docker build --build-arg PIP_EXTRA_INDEX_URL=... .
ARG PIP_EXTRA_INDEX_URL=
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# What environment.json records as the project's version where the image has no .git:
#   docker build --build-arg DISTILLERY_RELEASE=$(git rev-parse HEAD) .
ARG DISTILLERY_RELEASE=
ENV DISTILLERY_RELEASE=$DISTILLERY_RELEASE
# Hashed, compressed static files for WhiteNoise; the key only lets settings load for this step.
RUN mkdir -p /var/lib/distillery \
    && DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-at-build-time-only-never-used-to-sign-anything \
       python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["gunicorn", "webapp.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
