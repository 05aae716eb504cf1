# opsbench inference container (SageMaker bring-your-own-container).
#
# SageMaker runs `docker run IMAGE serve`, mounts the model's artefact folder at
# /opt/ml/model and sends GET /ping and POST /invocations to port 8080. Which agent the
# artefact belongs to comes from the OPSBENCH_AGENT environment variable (scaling,
# cost-rl, anomaly, security), set in the SageMaker model's Environment.
#
#   docker build -t opsbench-serve .
#   docker run -p 8080:8080 -v "$PWD/model:/opt/ml/model:ro" -e OPSBENCH_AGENT=anomaly \
#       opsbench-serve serve
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# torch first, the CPU build: an unpinned torch pulled in by stable-baselines3 would be a
# multi-GB CUDA build
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /opt/opsbench
COPY pyproject.toml README.md ./
COPY sim ./sim
COPY agents ./agents
COPY bench ./bench
COPY adapters ./adapters
COPY features ./features
COPY scenarios ./scenarios
RUN pip install .

COPY docker/serve /usr/local/bin/serve
RUN chmod 0755 /usr/local/bin/serve

# artefacts written at run time (model caches) go to a writable folder, not the code's
WORKDIR /opt/ml
EXPOSE 8080
CMD ["serve"]
