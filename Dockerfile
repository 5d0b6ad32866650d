# chatpulse container image.  Multi-stage, slim, non-root; FFmpeg and streamlink inside.
#   docker build -t chatpulse .                       # lexicon scoring (no torch)
#   docker build -t chatpulse:ml --build-arg VARIANT=ml .   # + transformers/onnx backends (CPU torch),
#                                                            embeddings and topics (offline model)
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ARG VARIANT=base
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY chatpulse ./chatpulse
COPY bus ./bus
COPY collector ./collector
COPY scorer ./scorer
COPY detector ./detector
COPY clipper ./clipper
COPY grafana ./grafana
COPY analytics ./analytics
COPY forecast ./forecast
COPY topics ./topics
COPY sql ./sql
RUN python -m venv /opt/chatpulse \
 && /opt/chatpulse/bin/pip install --upgrade pip \
 && if [ "$VARIANT" = "ml" ]; then \
      /opt/chatpulse/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu \
      && /opt/chatpulse/bin/pip install '.[ml,bus,embed,onnx,forecast]'; \
    else \
      /opt/chatpulse/bin/pip install '.[bus]'; \
    fi

FROM python:${PYTHON_VERSION}-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 chatpulse \
 && mkdir -p /data && chown chatpulse /data
COPY --from=build /opt/chatpulse /opt/chatpulse
ENV PATH=/opt/chatpulse/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TZ=UTC \
    CHATPULSE_DATA_DIR=/data \
    CHATPULSE_METRICS_HOST=0.0.0.0 \
    CHATPULSE_CLIPPER_HOST=0.0.0.0
USER chatpulse
WORKDIR /data
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=20s --start-period=30s --retries=3 CMD ["chatpulse", "doctor"]
ENTRYPOINT ["tini", "--", "chatpulse"]
CMD ["--help"]
