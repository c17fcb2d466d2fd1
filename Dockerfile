# The novaflow image for ECS tasks and Kubernetes Jobs: Prefect's Python image with novaflow installed, the flows
# under /opt/novaflow (where the production deployments of prefect.yaml start), run as an unprivileged user.
# No credentials go in: a flow run gets them from its ECS task role or Kubernetes service account, or from the
# AwsCredentials block picked in the run form.
#
#   docker build -t novaflow:0.1.0 .
FROM prefecthq/prefect:3.9.1-python3.11

WORKDIR /opt/novaflow
COPY pyproject.toml README.md prefect.yaml ./
COPY novaflow ./novaflow
COPY tasks ./tasks
COPY flows ./flows
COPY reward_lambda ./reward_lambda
# The curation filters' kernels and the near-duplicate decision's loops (numba) are compiled here, once, into a cache
# the user owns: site-packages is not writable by it, so without this every container would compile them again
# (~10 s of CPU) on its first filtered run.
# A generic x86-64 target keeps the cache valid on whatever CPU the task lands on.
ENV NUMBA_CACHE_DIR=/opt/novaflow/numba-cache \
    NUMBA_CPU_NAME=generic
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --create-home --home-dir /home/novaflow novaflow \
    && install -d -o novaflow -g novaflow /opt/novaflow/novaflow-runs \
    && python -m novaflow.data.kernels \
    && python -m novaflow.data.lsh \
    && chown -R novaflow:novaflow /opt/novaflow/numba-cache

USER 10001
ENV HOME=/home/novaflow \
    PREFECT_HOME=/home/novaflow/.prefect
