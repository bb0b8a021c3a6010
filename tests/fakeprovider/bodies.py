"""Error bodies that every dialect sends the same way (their shapes are what routers key on)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

ORG = "org_x"  # the organization id quoted in OpenAI/Groq style messages

_SERVER_MESSAGES = {498: "Capacity Exceeded", 529: "Overloaded"}


def reason_phrase(status: int) -> str:
    if status in _SERVER_MESSAGES:
        return _SERVER_MESSAGES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error"


def model_not_found(model: str) -> dict[str, Any]:
    message = f"The model `{model}` does not exist or you do not have access to it."
    return {
        "error": {"message": message, "type": "invalid_request_error", "code": "model_not_found"}
    }


def too_large(model: str) -> dict[str, Any]:
    message = (
        f"Request too large for model `{model}` in organization `{ORG}` service tier "
        "`on_demand` on tokens per minute (TPM): Limit 6000, Requested 9000, please reduce "
        "your message size and try again."
    )
    return {"error": {"message": message, "type": "tokens", "code": "rate_limit_exceeded"}}


def bad_request(message: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    }


def server_error(status: int) -> dict[str, Any]:
    return {"error": {"message": reason_phrase(status), "type": "server_error"}}


def gemini_invalid_key() -> list[Any]:
    return [
        {
            "error": {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            }
        }
    ]
