from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.extract_vector_request import ExtractVectorRequest
from ...models.problem import Problem
from ...models.vector_info import VectorInfo
from ...models.vector_job import VectorJob
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: ExtractVectorRequest,
    idempotency_key: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["idempotency-key"] = idempotency_key

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/steering/vectors",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Problem | VectorInfo | VectorJob | None:
    if response.status_code == 201:
        response_201 = VectorInfo.from_dict(response.json())

        return response_201

    if response.status_code == 202:
        response_202 = VectorJob.from_dict(response.json())

        return response_202

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())

        return response_409

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if response.status_code == 500:
        response_500 = Problem.from_dict(response.json())

        return response_500

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Problem | VectorInfo | VectorJob]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: ExtractVectorRequest,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[Problem | VectorInfo | VectorJob]:
    """Extract and store a control vector (201 when small; 202 with a job when large)

    Args:
        idempotency_key (None | str | Unset): Retries with the same key return the same job (a
            different body with the same key is a 409).
        body (ExtractVectorRequest): Extract a control vector from contrasting prompts and store
            it under a name.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | VectorInfo | VectorJob]
    """

    kwargs = _get_kwargs(
        body=body,
        idempotency_key=idempotency_key,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    body: ExtractVectorRequest,
    idempotency_key: None | str | Unset = UNSET,
) -> Problem | VectorInfo | VectorJob | None:
    """Extract and store a control vector (201 when small; 202 with a job when large)

    Args:
        idempotency_key (None | str | Unset): Retries with the same key return the same job (a
            different body with the same key is a 409).
        body (ExtractVectorRequest): Extract a control vector from contrasting prompts and store
            it under a name.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | VectorInfo | VectorJob
    """

    return sync_detailed(
        client=client,
        body=body,
        idempotency_key=idempotency_key,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: ExtractVectorRequest,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[Problem | VectorInfo | VectorJob]:
    """Extract and store a control vector (201 when small; 202 with a job when large)

    Args:
        idempotency_key (None | str | Unset): Retries with the same key return the same job (a
            different body with the same key is a 409).
        body (ExtractVectorRequest): Extract a control vector from contrasting prompts and store
            it under a name.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | VectorInfo | VectorJob]
    """

    kwargs = _get_kwargs(
        body=body,
        idempotency_key=idempotency_key,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: ExtractVectorRequest,
    idempotency_key: None | str | Unset = UNSET,
) -> Problem | VectorInfo | VectorJob | None:
    """Extract and store a control vector (201 when small; 202 with a job when large)

    Args:
        idempotency_key (None | str | Unset): Retries with the same key return the same job (a
            different body with the same key is a 409).
        body (ExtractVectorRequest): Extract a control vector from contrasting prompts and store
            it under a name.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | VectorInfo | VectorJob
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
            idempotency_key=idempotency_key,
        )
    ).parsed
