"""The webhook receiver: ``POST /webhooks/{provider}/{token}``, served by ``talkinghead serve``.

Each job submitted by a client with a ``webhook_base`` gets a callback URL carrying its own
secret token. A callback is applied only if the token matches a job of that provider and, for
signed backends, the signature verifies; unsigned callbacks are confirmed by re-reading the
task. Anything else gets a 4xx and leaves the journal untouched.
"""

from __future__ import annotations

from typing import Any

from .client import AsyncClient
from .errors import InputError, WebhookIgnored, WebhookRejected

MAX_BODY = 1 << 20  # callbacks are small JSON; refuse anything bigger before reading it all


def create_app(client: AsyncClient, *, max_body: int = MAX_BODY) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def receive(request: Request) -> JSONResponse:
        provider, token = request.path_params["provider"], request.path_params["token"]
        if provider not in client.providers:
            return JSONResponse({"error": f"unknown provider {provider!r}"}, status_code=404)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body:
            return JSONResponse({"error": "body too large"}, status_code=413)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body:
                return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            job = await client.receive_webhook(provider, token, dict(request.headers), body)
        except WebhookIgnored as exc:
            return JSONResponse({"ignored": str(exc)}, status_code=200)
        except WebhookRejected as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status_code)
        except InputError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"job_id": job.id, "status": job.status.value})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "providers": sorted(client.providers)})

    return Starlette(routes=[Route("/webhooks/{provider}/{token}", receive, methods=["POST"]),
                             Route("/healthz", health, methods=["GET"])])


def serve(client: AsyncClient, host: str = "127.0.0.1", port: int = 8787) -> None:
    import uvicorn

    uvicorn.run(create_app(client), host=host, port=port, log_level="warning")
