"""The job's runtime service as an agent sees it: rollout requests in, inference and feedback calls out.

During a multi-turn RFT job the service sends each rollout to the team's agent (``instance`` = one task row,
``metadata`` = the job ARN, a trajectory id, the runtime endpoint and region). The agent plays the task, calling
the policy model through the runtime's OpenAI-compatible chat endpoint with the two rollout headers, then reports
how it went: ``POST /complete-rollout`` (the trajectory is sealed, ``ready`` or ``failed``) and ``POST
/update-reward`` (one reward per turn, once). docs/agentic-rft.md#the-runtime-service describes the contract.

:class:`RuntimeServer` plays that service on this machine for the pre-job check (:mod:`novaflow.agents.check`) and
for the embedded AWS's emulator, which plugs in the stand-in policy and learns from the rewards. Its
:class:`Ledger` keeps, per trajectory, what the agent did - inference calls with and without the headers,
completions, rewards - and the service's answers follow the botocore model of ``sagemakerjobruntime``: a missing
header is a ``ValidationException``, an unknown trajectory ``ResourceNotFoundException``, a second completion or
reward a ``ConflictException`` whose message the rollout SDK recognises ("not in valid status").
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JOB_ARN_HEADER = "X-Amzn-SageMaker-Job-Arn"
TRAJECTORY_HEADER = "X-Amzn-SageMaker-Trajectory-Id"
RUNTIME_ENV = "RFT_RUNTIME_ENDPOINT"
"""Where the rollout SDK looks for the runtime service when the rollout's metadata names none."""
CHAT_PATHS = ("/v1/chat/completions", "/chat/completions", "/sample")

Policy = Callable[[str, str, dict[str, Any]], str]
"""(job ARN, trajectory id, chat request body) -> the assistant's reply text."""


def rollout_event(
    task: dict[str, Any],
    *,
    job_arn: str,
    trajectory_id: str,
    endpoint: str,
    region: str,
    inference_params: dict[str, Any] | None = None,
    model_name: str | None = None,
) -> dict[str, Any]:
    """What the service sends the agent for one rollout (the rollout SDK's ``RolloutRequest``)."""
    event: dict[str, Any] = {
        "instance": task,
        "metadata": {"job_arn": job_arn, "trajectory_id": trajectory_id, "endpoint": endpoint, "region": region},
    }
    if inference_params:
        event["inference_params"] = inference_params
    if model_name:
        event["model_name"] = model_name
        event["model_endpoint"] = endpoint.rstrip("/") + "/v1"
    return event


@dataclass
class Trajectory:
    """What one rollout's agent did, as the runtime service saw it."""

    job_arn: str
    trajectory_id: str
    status: str = "open"
    """open -> ready | failed (CompleteRollout) -> reward-received (UpdateReward)."""
    chat_calls: int = 0
    calls_without_headers: int = 0
    completions: int = 0
    reward_reports: int = 0
    rewards: list[float] = field(default_factory=list)
    turns: list[dict[str, Any]] = field(default_factory=list)
    """What the policy was asked and answered, in order (the emulator learns from it)."""
    problems: list[str] = field(default_factory=list)


class Ledger:
    """Trajectories by id; every mutation under one lock (the agent calls from many threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.trajectories: dict[str, Trajectory] = {}
        self.headerless_calls = 0
        """Inference calls that named no trajectory at all (so they cannot be charged to one)."""

    def open(self, job_arn: str, trajectory_id: str) -> Trajectory:
        with self.lock:
            trajectory = Trajectory(job_arn, trajectory_id)
            self.trajectories[trajectory_id] = trajectory
            return trajectory

    def get(self, trajectory_id: str) -> Trajectory | None:
        with self.lock:
            return self.trajectories.get(trajectory_id)


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class RuntimeServer:
    """An HTTP server playing the runtime service for the jobs registered with it (``with`` starts and stops it)."""

    def __init__(self, policy: Policy, host: str = "127.0.0.1", port: int = 0) -> None:
        self.policy = policy
        self.ledger = Ledger()
        self.jobs: set[str] = set()
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> RuntimeServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="rft-runtime", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RuntimeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def register_job(self, job_arn: str) -> None:
        with self.ledger.lock:
            self.jobs.add(job_arn)

    # -- the operations -----------------------------------------------------------------------------------
    def _trajectory(self, job_arn: str | None, trajectory_id: str | None) -> Trajectory:
        if not job_arn:
            raise ServiceError(400, "ValidationException", f"Missing required header {JOB_ARN_HEADER} (JobArn).")
        if not trajectory_id:
            raise ServiceError(400, "ValidationException", "Missing required TrajectoryId.")
        if job_arn not in self.jobs:
            raise ServiceError(404, "ResourceNotFoundException", f"Job {job_arn} is not running.")
        trajectory = self.ledger.get(trajectory_id)
        if trajectory is None or trajectory.job_arn != job_arn:
            raise ServiceError(404, "ResourceNotFoundException", f"Trajectory {trajectory_id} not found.")
        return trajectory

    def chat(self, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        job_arn, trajectory_id = headers.get(JOB_ARN_HEADER.lower()), headers.get(TRAJECTORY_HEADER.lower())
        if not job_arn or not trajectory_id:
            with self.ledger.lock:
                found = self.ledger.trajectories.get(trajectory_id or "")
                if found is not None:
                    found.calls_without_headers += 1
                else:
                    self.ledger.headerless_calls += 1
            missing = JOB_ARN_HEADER if not job_arn else TRAJECTORY_HEADER
            raise ServiceError(400, "ValidationException", f"Missing required header {missing}.")
        trajectory = self._trajectory(job_arn, trajectory_id)
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise ServiceError(400, "ValidationException", "The request body needs a non-empty 'messages' list.")
        with self.ledger.lock:
            if trajectory.status != "open":
                trajectory.problems.append("called the inference endpoint after completing the rollout")
            trajectory.chat_calls += 1
        text = self.policy(job_arn, trajectory_id, body)
        return {
            "id": f"chatcmpl-{trajectory_id}-{trajectory.chat_calls}",
            "object": "chat.completion",
            "model": str(body.get("model") or "policy"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": len(text.split()), "total_tokens": len(text.split())},
        }

    def complete(self, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        job_arn = headers.get(JOB_ARN_HEADER.lower()) or body.get("JobArn")
        trajectory = self._trajectory(job_arn, body.get("TrajectoryId"))
        status = str(body.get("Status") or "ready")
        if status not in ("ready", "failed"):
            raise ServiceError(400, "ValidationException", f"Status {status!r} must be ready or failed.")
        with self.ledger.lock:
            trajectory.completions += 1
            if trajectory.status != "open":
                trajectory.problems.append("completed the rollout twice")
                raise ServiceError(
                    409,
                    "ConflictException",
                    f"Cannot transition trajectory {trajectory.trajectory_id} to {status}: it is not in valid "
                    f"status ({trajectory.status}).",
                )
            trajectory.status = status
        return {}

    def update_reward(self, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        job_arn = headers.get(JOB_ARN_HEADER.lower()) or body.get("JobArn")
        trajectory = self._trajectory(job_arn, body.get("TrajectoryId"))
        rewards = body.get("Rewards")
        with self.ledger.lock:
            trajectory.reward_reports += 1
            if trajectory.reward_reports > 1:
                trajectory.problems.append("reported a reward twice")
                raise ServiceError(
                    409,
                    "ConflictException",
                    f"Cannot transition trajectory {trajectory.trajectory_id} to reward-received: it is not in valid "
                    f"status ({trajectory.status}).",
                )
            if not _numbers(rewards):
                trajectory.problems.append(f"reported Rewards={json.dumps(rewards)[:60]}, not a list of finite numbers")
                raise ServiceError(400, "ValidationException", "Rewards must be a non-empty list of finite numbers.")
            if trajectory.status == "open":
                trajectory.problems.append("reported the reward before completing the rollout")
                raise ServiceError(
                    409,
                    "ConflictException",
                    f"Cannot transition trajectory {trajectory.trajectory_id} to reward-received: it is not in valid "
                    "status (open); call CompleteRollout first.",
                )
            trajectory.rewards = [float(r) for r in rewards or ()]
            trajectory.status = "reward-received"
        return {}


def _numbers(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )


def _handler(server: RuntimeServer) -> type[BaseHTTPRequestHandler]:
    routes: dict[str, Callable[[dict[str, str], dict[str, Any]], dict[str, Any]]] = {
        "/complete-rollout": server.complete,
        "/update-reward": server.update_reward,
        **dict.fromkeys(CHAT_PATHS, server.chat),
    }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            route = routes.get(self.path.split("?", 1)[0].rstrip("/") or "/")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                if route is None:
                    raise ServiceError(404, "UnknownOperationException", f"No operation at {self.path}.")
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    raise ServiceError(400, "ValidationException", "The request body is not JSON.") from None
                if not isinstance(body, dict):
                    raise ServiceError(400, "ValidationException", "The request body must be a JSON object.")
                headers = {k.lower(): v for k, v in self.headers.items()}
                self._send(200, route(headers, body), {})
            except ServiceError as exc:
                self._send(exc.status, {"message": exc.message}, {"x-amzn-ErrorType": exc.code})

        def _send(self, status: int, document: dict[str, Any], extra: dict[str, str]) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
