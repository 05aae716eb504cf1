"""boto3 clients for the AWS adapters: one factory, the default credential chain only.

Every adapter in :mod:`adapters.aws` takes an :class:`AwsClients` and asks it for the
clients it needs; none builds an endpoint or reads a credential itself. Credentials come
from boto3's default chain (environment, shared config/credentials files, SSO, container
or instance role); this module never takes, prints or logs a key. ``endpoint_url`` points
every client at one endpoint (a moto server in tests); left ``None``, boto3's own
resolution applies (including ``AWS_ENDPOINT_URL``). Throttling and 5xx answers are
retried by botocore's ``standard`` (or ``adaptive``) retry mode, ``max_attempts`` sends in
all.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

RetryMode = Literal["standard", "adaptive"]


class AwsClients:
    """A cached boto3 client per service, all in one region and on one endpoint.

    Parameters
    ----------
    region
        The AWS region, e.g. ``"us-east-1"``.
    endpoint_url
        One endpoint for every service (e.g. ``http://127.0.0.1:5000`` for moto), or
        ``None`` for boto3's usual endpoint resolution.
    max_attempts
        Sends per call in all (the first plus retries), >= 1.
    retry_mode
        botocore's retry mode: ``"standard"`` (default) or ``"adaptive"``.
    connect_timeout_s, read_timeout_s
        Socket timeouts in seconds (> 0).
    """

    def __init__(
        self,
        region: str,
        endpoint_url: str | None = None,
        *,
        max_attempts: int = 5,
        retry_mode: RetryMode = "standard",
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
    ) -> None:
        if not region:
            raise ValueError("region must be a non-empty AWS region name, e.g. us-east-1")
        if max_attempts < 1:
            raise ValueError(f"max_attempts {max_attempts} must be >= 1 (sends in all)")
        if retry_mode not in ("standard", "adaptive"):
            raise ValueError(f"retry_mode {retry_mode!r} must be 'standard' or 'adaptive'")
        if connect_timeout_s <= 0 or read_timeout_s <= 0:
            raise ValueError("timeouts must be > 0 seconds")
        self.region = region
        self.endpoint_url = endpoint_url
        self.max_attempts = max_attempts
        self.retry_mode: RetryMode = retry_mode
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        """The boto3 client of ``service`` (one per service, created on first use)."""
        with self._lock:
            cached = self._clients.get(service)
            if cached is None:
                cached = self._clients[service] = self._new_client(service)
            return cached

    def _new_client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        if self._session is None:
            self._session = boto3.session.Session(region_name=self.region)
        config = Config(
            region_name=self.region,
            retries={"mode": self.retry_mode, "total_max_attempts": self.max_attempts},
            connect_timeout=self.connect_timeout_s,
            read_timeout=self.read_timeout_s,
        )
        return self._session.client(service, endpoint_url=self.endpoint_url, config=config)

    def __repr__(self) -> str:  # never anything about credentials
        return (
            f"AwsClients(region={self.region!r}, endpoint_url={self.endpoint_url!r}, "
            f"max_attempts={self.max_attempts}, retry_mode={self.retry_mode!r})"
        )
