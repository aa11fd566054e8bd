"""JSON-RPC 2.0 envelopes shaped like Odoo 14's `type='json'` routes.

Browsers and Odoo's JS read these shapes: a method returning None answers with no
`result` key at all; a refusal is an error object with code 200, "Odoo Server Error"
and `data.name` / `data.message` / `data.arguments`.
"""

import functools
import inspect
import json
from typing import Any, Callable, Dict, Tuple

from werkzeug.wrappers import Request, Response

SERVER_ERROR = "Odoo Server Error"


class RpcError(Exception):
    """A refusal shown to the caller as Odoo shows an exception raised by a route."""

    def __init__(self, message: str, name: str = "builtins.Exception", status: int = 200) -> None:
        super().__init__(message)
        self.name = name
        self.status = status


def parse(request: Request) -> Tuple[Any, dict]:
    """The request's id and params; RpcError with an HTTP 400 status when the body is not
    a JSON-RPC call."""
    try:
        call = _DECODER.decode(request.get_data().decode())  # UTF-8, as Odoo reads it
    except (ValueError, RecursionError) as error:  # bad JSON, bad UTF-8, NaN, nested too deep
        raise RpcError(f"Invalid JSON data: {error}", "werkzeug.exceptions.BadRequest", 400) from None
    if not isinstance(call, dict):
        raise RpcError("Invalid JSON-RPC request: expected an object", "werkzeug.exceptions.BadRequest", 400)
    params = call.get("params", {})
    if not isinstance(params, dict):
        raise RpcError("Invalid JSON-RPC request: params must be an object",
                       "werkzeug.exceptions.BadRequest", 400)
    return call.get("id"), params


def bind(method: Callable[..., Any], *args: Any, **params: Any) -> inspect.BoundArguments:
    """The call's params bound to `method`'s signature, before the call: missing or
    unexpected params are the caller's mistake (answered as Odoo does, a
    `builtins.TypeError`), while a TypeError raised inside the method stays a bug."""
    try:
        return _signature(method).bind(*args, **params)
    except TypeError as error:
        raise RpcError(f"{method.__qualname__}() {error}", "builtins.TypeError") from None


_signature = functools.lru_cache(maxsize=64)(inspect.signature)  # bound methods of one object compare equal


def _refuse_constant(name: str) -> Any:
    """NaN and Infinity are not JSON: stored, they would make every later poll answer of
    their channel unreadable by browsers (`JSON.parse` rejects them)."""
    raise ValueError(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)  # `json.loads` with an option builds one per call


def answer(call_id: Any, value: Any) -> Response:
    envelope: Dict[str, Any] = {"jsonrpc": "2.0", "id": call_id}
    if value is not None:
        envelope["result"] = value
    return json_response(envelope, 200)


def fail(call_id: Any, error: Exception) -> Response:
    if isinstance(error, RpcError):
        name, status = error.name, error.status
    else:
        name, status = qualified_name(error), 200
    message = str(error)
    data = {"name": name, "message": message, "arguments": [message]}
    error_object = {"code": 200, "message": SERVER_ERROR, "data": data}
    return json_response({"jsonrpc": "2.0", "id": call_id, "error": error_object}, status)


def qualified_name(error: BaseException) -> str:
    """The exception's name as Odoo shows it: `psycopg2.errors.UndefinedTable`, `builtins.TypeError`."""
    return f"{type(error).__module__}.{type(error).__qualname__}"


def json_response(envelope: dict, status: int) -> Response:
    return Response(json.dumps(envelope), status=status, mimetype="application/json")
