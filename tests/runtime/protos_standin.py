"""A stand-in for the host's protobuf message classes, which the worker hands to azure_functions_runtime as `protos`.

Each class records the keyword arguments it was built with, as attributes and in `fields`. Only the classes and
enum values the runtime's init, metadata, load and indexing paths touch are here: an unexpected attribute fails
loudly, so a runtime that starts needing more shows up as an AttributeError rather than a silent pass."""

from __future__ import annotations

from typing import Any


class Message:
    """A protobuf message as the runtime builds it: keyword arguments only."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields
        for name, value in fields.items():
            setattr(self, name, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fields!r})"


class BindingInfo(Message):
    # enum BindingInfo.Direction: `in` is a Python keyword, so it is only reachable with getattr, as in protobuf.
    out = 1
    inout = 2
    # enum BindingInfo.DataType
    undefined = 0
    string = 1
    binary = 2
    stream = 3


setattr(BindingInfo, "in", 0)


class StatusResult(Message):
    # enum StatusResult.Status
    Failure = 0
    Success = 1
    Cancelled = 2


class RpcException(Message):
    pass


class WorkerMetadata(Message):
    pass


class WorkerInitResponse(Message):
    pass


class FunctionMetadataResponse(Message):
    pass


class FunctionLoadResponse(Message):
    pass


class RpcFunctionMetadata(Message):
    pass


class RpcRetryOptions(Message):
    # enum RpcRetryOptions.RetryStrategy
    exponential_backoff = 0
    fixed_delay = 1


class TypedData(Message):
    pass


class RpcHttp(Message):
    pass


class ParameterBinding(Message):
    pass


class InvocationResponse(Message):
    pass
