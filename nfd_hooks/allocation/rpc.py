"""gRPC over unix sockets with grpclib and the hand-written messages of ``wire``.

grpclib is gRPC in pure Python (asyncio and the h2 HTTP/2 library): one wheel
for every architecture, armv7 included, and an idle server that costs no CPU
(grpcio's C core polls: bench/allocation_idle.py has both). A malformed message
is refused with INVALID_ARGUMENT and one log line; a handler's own failure is
INTERNAL with one log line; the server goes on either way.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Type

from grpclib.const import Cardinality, Handler, Status
from grpclib.encoding.base import CodecBase
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream

from nfd_hooks.allocation.wire import DecodeError, Message

Log = Callable[[str], None]


class Codec(CodecBase):
    """``application/grpc+proto`` through ``wire.Message``."""

    __content_subtype__ = "proto"

    def encode(self, message: Any, message_type: Any) -> bytes:
        if not isinstance(message, Message):
            raise TypeError(f"not a wire message: {type(message).__name__}")
        return message.encode()

    def decode(self, data: bytes, message_type: Any) -> Any:
        try:
            return message_type.decode(data)
        except DecodeError as error:
            raise GRPCError(Status.INVALID_ARGUMENT, f"malformed {message_type.__name__}: {error}") from None


class Service:
    """A set of methods served under one path prefix (``/<package>.<Service>/``)."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.methods: Dict[str, Handler] = {}

    def unary(self, path: str, request: Type[Message], reply: Type[Message], func: Callable[[Any], Awaitable[Message]]) -> None:
        async def handle(stream: Stream[Any, Any]) -> None:
            message = await self._receive(stream, path)
            try:
                answer = await func(message)
            except GRPCError:
                raise
            except Exception as error:  # any failure: one line and a status, never a dead server
                self.log(f"{path}: {type(error).__name__}: {error}")
                raise GRPCError(Status.INTERNAL, f"{type(error).__name__}: {error}") from None
            await stream.send_message(answer)

        self.methods[path] = Handler(handle, Cardinality.UNARY_UNARY, request, reply)

    def unary_stream(self, path: str, request: Type[Message], reply: Type[Message], func: Callable[[Any, Stream[Any, Any]], Awaitable[None]]) -> None:
        async def handle(stream: Stream[Any, Any]) -> None:
            message = await self._receive(stream, path)
            await func(message, stream)

        self.methods[path] = Handler(handle, Cardinality.UNARY_STREAM, request, reply)

    async def _receive(self, stream: Stream[Any, Any], path: str) -> Any:
        try:
            message = await stream.recv_message()
        except GRPCError as error:
            self.log(f"{path}: refused: {error.message}")
            raise
        if message is None:
            raise GRPCError(Status.INVALID_ARGUMENT, "no request message")
        return message

    def __mapping__(self) -> Dict[str, Handler]:
        return self.methods


async def serve(services: List[Service], path: Path) -> Server:
    """A server on the unix socket ``path`` (an old socket file there is replaced)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    server = Server(services, codec=Codec())
    await server.start(path=str(path))
    return server


def socket_present(path: Path, inode: Optional[int]) -> bool:
    """Whether our socket file is still there (the same one we bound): the kubelet
    removes plugin sockets when it restarts (device plugins), an operator may too."""
    try:
        return inode is None or os.stat(path).st_ino == inode
    except OSError:
        return False


def inode(path: Path) -> Optional[int]:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


async def close(server: Optional[Server]) -> None:
    if server is not None:
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), 5)
        except asyncio.TimeoutError:
            pass
