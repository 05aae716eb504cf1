"""AWS errors in one line, without importing boto3 (``opsbench live --help`` and the
tests with fakes run without it)."""

from __future__ import annotations

from collections.abc import Mapping


def aws_error_types() -> tuple[type[BaseException], ...]:
    """The errors a boto3 call raises once botocore's retries are spent (none without
    boto3)."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return ()
    return (BotoCoreError, ClientError)


def aws_error_line(exc: BaseException) -> str:
    """A boto3 error in one line: the service's error code and message, or botocore's
    message (neither ever holds a credential)."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error", {})
        operation = getattr(exc, "operation_name", "")
        where = f"{operation}: " if operation else ""
        return f"{where}{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return " ".join(str(exc).split())
