from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.variant_detail import VariantDetail
from ...types import Response


def _get_kwargs(
    model: str,
    ref: str,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/models/{model}/variants/{ref}".format(
            model=quote(str(model), safe=""),
            ref=quote(str(ref), safe=""),
        ),
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Problem | VariantDetail | None:
    if response.status_code == 200:
        response_200 = VariantDetail.from_dict(response.json())

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
) -> Response[Problem | VariantDetail]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    model: str,
    ref: str,
    *,
    client: AuthenticatedClient,
) -> Response[Problem | VariantDetail]:
    """Show a variant version: components, provenance, evaluation report

    Args:
        model (str): A served model's name.
        ref (str): `name` (latest version) or `name@version`.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | VariantDetail]
    """

    kwargs = _get_kwargs(
        model=model,
        ref=ref,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    model: str,
    ref: str,
    *,
    client: AuthenticatedClient,
) -> Problem | VariantDetail | None:
    """Show a variant version: components, provenance, evaluation report

    Args:
        model (str): A served model's name.
        ref (str): `name` (latest version) or `name@version`.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | VariantDetail
    """

    return sync_detailed(
        model=model,
        ref=ref,
        client=client,
    ).parsed


async def asyncio_detailed(
    model: str,
    ref: str,
    *,
    client: AuthenticatedClient,
) -> Response[Problem | VariantDetail]:
    """Show a variant version: components, provenance, evaluation report

    Args:
        model (str): A served model's name.
        ref (str): `name` (latest version) or `name@version`.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | VariantDetail]
    """

    kwargs = _get_kwargs(
        model=model,
        ref=ref,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    model: str,
    ref: str,
    *,
    client: AuthenticatedClient,
) -> Problem | VariantDetail | None:
    """Show a variant version: components, provenance, evaluation report

    Args:
        model (str): A served model's name.
        ref (str): `name` (latest version) or `name@version`.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | VariantDetail
    """

    return (
        await asyncio_detailed(
            model=model,
            ref=ref,
            client=client,
        )
    ).parsed
