# One image for the API and the GPU workers (PyPI's torch wheels bundle the CUDA runtime;
# the host needs only the NVIDIA driver and container toolkit).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PROXNS_ARTIFACT_DIR=/srv/artifacts \
    PROXNS_DATA_ROOT=/srv/data

WORKDIR /app
RUN pip install torch==2.14.1 torchvision==0.29.1
COPY . .
RUN pip install -e . \
    && useradd --create-home --uid 1000 proxns \
    && mkdir -p /srv/artifacts /srv/data /app/var \
    && chown -R proxns /srv /app/var

USER proxns
EXPOSE 8000
CMD ["proxns", "serve", "--host", "0.0.0.0", "--port", "8000"]
