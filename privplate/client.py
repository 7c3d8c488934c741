"""A small HTTP client for the commands that talk to a privplate server as a person
(officers approving unseal requests on their own machines, investigators fetching images)."""

from __future__ import annotations

import contextlib
import os
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from privplate import errors as e

if TYPE_CHECKING:  # the server extra; imported when a command first talks to a server
    import httpx

DEFAULT_SERVER = "http://127.0.0.1:8470"
#: Not PRIVPLATE_SERVER: that would be the ``server`` section of the deployment's settings.
SERVER_URL_ENV = "PRIVPLATE_SERVER_URL"
_BY_TYPE: dict[str, type[e.PrivplateError]] = {
    "authentication_failed": e.AuthenticationFailed,
    "permission_denied": e.PermissionDenied,
    "purpose_denied": e.PurposeDenied,
    "unseal_refused": e.UnsealRefused,
    "quota_exceeded": e.QuotaExceeded,
    "not_found": e.NotFound,
    "evidence_expired": e.EvidenceExpired,
    "already_exists": e.AlreadyExists,
    "conflict": e.Conflict,
    "sealing_error": e.SealingError,
}


def server_url(given: str | None) -> str:
    return (given or os.environ.get(SERVER_URL_ENV) or DEFAULT_SERVER).rstrip("/")


class ApiClient:
    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        import httpx  # noqa: PLC0415 - the CLI loads without an HTTP library

        self._http = httpx.Client(base_url=base_url, timeout=timeout)
        self._transport_error = httpx.HTTPError
        self._token: str | None = None

    def _check(self, answer: httpx.Response) -> httpx.Response:
        if answer.status_code < 400:
            return answer
        try:
            error = answer.json()["error"]
            kind, message = str(error["type"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            kind, message = "http_error", f"the server answered {answer.status_code}"
        raise _BY_TYPE.get(kind, e.InvalidRequest)(message)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            answer = self._http.request(method, path, headers=headers, **kwargs)
        except self._transport_error as exc:
            raise e.StoreError(
                f"cannot reach the privplate server ({type(exc).__name__}); check --server"
            ) from None
        return self._check(answer)

    def login(self, name: str, password: str) -> None:
        answer = self.request("POST", "/sessions", json={"name": name, "password": password})
        self._token = str(answer.json()["token"])

    def close(self) -> None:
        if self._token:
            with contextlib.suppress(e.PrivplateError):
                self.request("DELETE", "/sessions/current")
            self._token = None
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
