"""A small client for the few kube-apiserver calls the driver makes, on the standard library.

Why not the official ``kubernetes`` package: thousands of generated models,
imported on every node, to make five kinds of request (get a Node and a ResourceClaim; get, create and update
one ResourceSlice). Why not ``http.client`` either: it imports the ``email``
package to parse headers, resident against the driver's 30 MiB budget
(bench/allocation_idle.py). HTTP/1.1 as the API server speaks it to a client
(a status line, headers, a body of Content-Length bytes or in chunks) is a page
over ``ssl`` with the pod's service-account token, kept alive on one connection.

In a pod the defaults are the service account's: the API server from
KUBERNETES_SERVICE_HOST/PORT, the token and CA under
/var/run/secrets/kubernetes.io/serviceaccount. The token is re-read before a
request once a minute: the kubelet rotates projected tokens.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple
from urllib.parse import quote, urlsplit

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD = 60.0
TIMEOUT = 30.0
MAX_LINE = 64 * 1024  # a status or header line
MAX_BODY = 64 * 1024 * 1024  # far above any object the driver reads (etcd's own limit is 1.5 MiB)


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
        self._connection: Optional[ssl.SSLSocket] = None
        self._reader: Any = None
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
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Authorization: Bearer {self.token()}",
                "Accept: application/json", f"Content-Length: {len(payload)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        message = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
        for attempt in (1, 2):
            try:
                connection = self._connect()
                connection.sendall(message)
                status, reason, data, keep = _response(self._reader)
                break
            except (OSError, ValueError) as error:
                self.close()
                if attempt == 2:
                    raise ApiError(0, f"{method} {path}: {error}") from None
        if not keep:
            self.close()
        if status >= 300:
            raise ApiError(status, f"{method} {path}: {status} {_reason(data) or reason}")
        try:
            return json.loads(data) if data else {}
        except (ValueError, RecursionError):
            raise ApiError(0, f"{method} {path}: the answer is not JSON") from None

    def _connect(self) -> ssl.SSLSocket:
        if self._connection is None:
            raw = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
            try:
                self._connection = self.context.wrap_socket(raw, server_hostname=self.host)
            except BaseException:
                raw.close()
                raise
            self._reader = self._connection.makefile("rb")
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._reader.close()
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


def _line(reader: Any) -> bytes:
    line: bytes = reader.readline(MAX_LINE + 1)
    if not line.endswith(b"\n"):
        raise ValueError("connection closed" if not line else "a line too long")
    return line.rstrip(b"\r\n")


def _response(reader: Any) -> Tuple[int, str, bytes, bool]:
    """Status, reason, body and whether the connection stays open, of one HTTP/1.1 response."""
    while True:
        version, _, rest = _line(reader).decode("latin-1").partition(" ")
        code, _, reason = rest.partition(" ")
        if not (version.startswith("HTTP/1.") and code.isdigit()):
            raise ValueError(f"not an HTTP/1.1 status line: {version} {rest}"[:200])
        headers: Dict[str, str] = {}
        while True:
            line = _line(reader)
            if not line:
                break
            name, colon, value = line.decode("latin-1").partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        if not 100 <= int(code) < 200:  # an informational answer is followed by the real one
            break
    keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size = int(_line(reader).split(b";")[0].strip() or b"x", 16)
            if size == 0:
                while _line(reader):  # trailers
                    pass
                break
            if len(body) + size > MAX_BODY:
                raise ValueError("answer too large")
            body += _exactly(reader, size)
            if _line(reader):
                raise ValueError("a chunk longer than its size")
        return int(code), reason, bytes(body), keep
    if "content-length" in headers:
        length = int(headers["content-length"])
        if not 0 <= length <= MAX_BODY:
            raise ValueError("answer too large")
        return int(code), reason, _exactly(reader, length), keep
    data = reader.read(MAX_BODY + 1)  # no length: the body ends with the connection
    if len(data) > MAX_BODY:
        raise ValueError("answer too large")
    return int(code), reason, data, False


def _exactly(reader: Any, size: int) -> bytes:
    data: bytes = reader.read(size)
    if len(data) != size:
        raise ValueError("connection closed in the middle of an answer")
    return data
