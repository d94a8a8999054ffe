from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.vector_info import VectorInfo
from ...types import UNSET, Response, Unset


def _get_kwargs(
    ref: str,
    *,
    model: None | str | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_model: None | str | Unset
    if isinstance(model, Unset):
        json_model = UNSET
    else:
        json_model = model
    params["model"] = json_model

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/steering/vectors/{ref}".format(
            ref=quote(str(ref), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | VectorInfo | None:
    if response.status_code == 200:
        response_200 = VectorInfo.from_dict(response.json())

        return response_200

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())

        return response_409

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if response.status_code == 500:
        response_500 = Problem.from_dict(response.json())

        return response_500

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Problem | VectorInfo]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    ref: str,
    *,
    client: AuthenticatedClient,
    model: None | str | Unset = UNSET,
) -> Response[Problem | VectorInfo]:
    """Show a stored control vector

    Args:
        ref (str): `name` (latest version) or `name@version`.
        model (None | str | Unset): Model name; the default model when omitted.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | VectorInfo]
    """

    kwargs = _get_kwargs(
        ref=ref,
        model=model,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    ref: str,
    *,
    client: AuthenticatedClient,
    model: None | str | Unset = UNSET,
) -> Problem | VectorInfo | None:
    """Show a stored control vector

    Args:
        ref (str): `name` (latest version) or `name@version`.
        model (None | str | Unset): Model name; the default model when omitted.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | VectorInfo
    """

    return sync_detailed(
        ref=ref,
        client=client,
        model=model,
    ).parsed


async def asyncio_detailed(
    ref: str,
    *,
    client: AuthenticatedClient,
    model: None | str | Unset = UNSET,
) -> Response[Problem | VectorInfo]:
    """Show a stored control vector

    Args:
        ref (str): `name` (latest version) or `name@version`.
        model (None | str | Unset): Model name; the default model when omitted.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | VectorInfo]
    """

    kwargs = _get_kwargs(
        ref=ref,
        model=model,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    ref: str,
    *,
    client: AuthenticatedClient,
    model: None | str | Unset = UNSET,
) -> Problem | VectorInfo | None:
    """Show a stored control vector

    Args:
        ref (str): `name` (latest version) or `name@version`.
        model (None | str | Unset): Model name; the default model when omitted.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | VectorInfo
    """

    return (
        await asyncio_detailed(
            ref=ref,
            client=client,
            model=model,
        )
    ).parsed
