"""A small client for the few kube-apiserver calls the driver makes, on the standard library.

Why not the official ``kubernetes`` package: it imports in about a second and
holds tens of MiB for thousands of generated models, on every node, to make
five kinds of request (get a Node and a ResourceClaim; get, create, update and
delete one ResourceSlice). ``http.client`` over ``ssl`` with the pod's
service-account token does that in a page, kept alive on one connection.

In a pod the defaults are the service account's: the API server from
KUBERNETES_SERVICE_HOST/PORT, the token and CA under
/var/run/secrets/kubernetes.io/serviceaccount. The token is re-read before a
request once a minute: the kubelet rotates projected tokens.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple
from urllib.parse import quote, urlsplit

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD = 60.0
TIMEOUT = 30.0


class ApiError(Exception):
    """A request failed: ``status`` is the HTTP status (0: no answer), the message one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Client:
    """JSON requests to one API server, authenticated by a bearer token file."""

    def __init__(self, server: Optional[str] = None, token_file: Optional[Path] = None, ca_file: Optional[Path] = None) -> None:
        if server is None:
            host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            if not host:
                raise ApiError(0, "no API server: not in a pod (KUBERNETES_SERVICE_HOST unset) and no --server given")
            server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        parts = urlsplit(server)
        if parts.scheme != "https" or not parts.hostname:
            raise ApiError(0, f"API server {server!r} is not an https:// URL")
        self.host, self.port = parts.hostname, parts.port or 443
        self.token_file = token_file or SERVICE_ACCOUNT / "token"
        self.context = ssl.create_default_context(cafile=str(ca_file or SERVICE_ACCOUNT / "ca.crt"))
        self._connection: Optional[http.client.HTTPSConnection] = None
        self._token: Tuple[float, str] = (float("-inf"), "")

    def token(self) -> str:
        read_at, token = self._token
        if time.monotonic() - read_at > TOKEN_REREAD:
            try:
                token = self.token_file.read_text().strip()
            except OSError as error:
                raise ApiError(0, f"cannot read token {self.token_file}: {error.strerror}") from None
            self._token = (time.monotonic(), token)
        return token

    def request(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """The decoded JSON answer; ApiError for a non-2xx status or no answer (retried once on a stale connection)."""
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"Authorization": f"Bearer {self.token()}", "Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            connection = self._connect()
            try:
                connection.request(method, path, body=payload, headers=headers)
                response = connection.getresponse()
                data = response.read()
                break
            except (OSError, http.client.HTTPException) as error:
                self.close()
                if attempt == 2:
                    raise ApiError(0, f"{method} {path}: {error}") from None
        if response.status >= 300:
            raise ApiError(response.status, f"{method} {path}: {response.status} {_reason(data) or response.reason}")
        return json.loads(data) if data else {}

    def _connect(self) -> http.client.HTTPSConnection:
        if self._connection is None:
            self._connection = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=TIMEOUT)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # -- the calls the driver makes -------------------------------------------------
    def get_node(self, name: str) -> Dict[str, Any]:
        return self.request("GET", f"/api/v1/nodes/{quote(name)}")

    def get_claim(self, namespace: str, name: str) -> Dict[str, Any]:
        return self.request("GET", f"/apis/resource.k8s.io/v1/namespaces/{quote(namespace)}/resourceclaims/{quote(name)}")

    def get_slice(self, name: str) -> Optional[Dict[str, Any]]:
        try:
            return self.request("GET", f"{SLICES}/{quote(name)}")
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def create_slice(self, body: Dict[str, Any]) -> Dict[str, Any]:
        return self.request("POST", SLICES, body)

    def update_slice(self, body: Dict[str, Any]) -> Dict[str, Any]:
        return self.request("PUT", f"{SLICES}/{quote(body['metadata']['name'])}", body)


SLICES = "/apis/resource.k8s.io/v1/resourceslices"


def _reason(data: bytes) -> str:
    """The ``message`` of a Status answer, on one line."""
    try:
        message = json.loads(data).get("message", "")
    except (ValueError, AttributeError):
        return ""
    return " ".join(str(message).split())
