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
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --create-home --home-dir /home/novaflow novaflow \
    && install -d -o novaflow -g novaflow /opt/novaflow/novaflow-runs

USER 10001
ENV HOME=/home/novaflow \
    PREFECT_HOME=/home/novaflow/.prefect
