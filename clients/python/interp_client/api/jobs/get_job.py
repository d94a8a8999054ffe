from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.attribute_job import AttributeJob
from ...models.diagnose_job import DiagnoseJob
from ...models.edit_job import EditJob
from ...models.erase_job import EraseJob
from ...models.problem import Problem
from ...models.score_job import ScoreJob
from ...models.trace_job import TraceJob
from ...models.vector_job import VectorJob
from ...types import UNSET, Response, Unset


def _get_kwargs(
    job_id: str,
    *,
    wait: float | Unset = 0.0,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["wait"] = wait

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/jobs/{job_id}".format(
            job_id=quote(str(job_id), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> AttributeJob | DiagnoseJob | EditJob | EraseJob | ScoreJob | TraceJob | VectorJob | Problem | None:
    if response.status_code == 200:

        def _parse_response_200(
            data: object,
        ) -> AttributeJob | DiagnoseJob | EditJob | EraseJob | ScoreJob | TraceJob | VectorJob:
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                response_200_type_0 = ScoreJob.from_dict(data)

                return response_200_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                response_200_type_1 = VectorJob.from_dict(data)

                return response_200_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                response_200_type_2 = AttributeJob.from_dict(data)

                return response_200_type_2
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                response_200_type_3 = EraseJob.from_dict(data)

                return response_200_type_3
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                response_200_type_4 = EditJob.from_dict(data)

                return response_200_type_4
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                response_200_type_5 = TraceJob.from_dict(data)

                return response_200_type_5
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            response_200_type_6 = DiagnoseJob.from_dict(data)

            return response_200_type_6

        response_200 = _parse_response_200(response.json())

        return response_200

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

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
) -> Response[AttributeJob | DiagnoseJob | EditJob | EraseJob | ScoreJob | TraceJob | VectorJob | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    job_id: str,
    *,
    client: AuthenticatedClient,
    wait: float | Unset = 0.0,
) -> Response[AttributeJob | DiagnoseJob | EditJob | EraseJob | ScoreJob | TraceJob | VectorJob | Problem]:
    """Job status, progress and result

    Args:
        job_id (str): The job id from the 202 response.
        wait (float | Unset): Wait up to this many seconds for the job to end (long-poll; capped
            by the server). Default: 0.0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AttributeJob | DiagnoseJob | EditJob | EraseJob | ScoreJob | TraceJob | VectorJob | Problem]
    """

    kwargs = _get_kwargs(
        job_id=job_id,
        wait=wait,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    job_id: str,
    *,
    client: AuthenticatedClient,
    wait: float | Unset = 0.0,
) -> AttributeJob | DiagnoseJob | EditJob | EraseJob | ScoreJob | TraceJob | VectorJob | Problem | None:
    """Job status, progress and result

    Args:
        job_id (str): The job id from the 202 response.
        wait (float | Unset): Wait up to this many seconds for the job to end (long-poll; capped
            by the server). Default: 0.0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AttributeJob | DiagnoseJob | EditJob | EraseJob | ScoreJob | TraceJob | VectorJob | Problem
    """

    return sync_detailed(
        job_id=job_id,
        client=client,
        wait=wait,
    ).parsed


async def asyncio_detailed(
    job_id: str,
    *,
    client: AuthenticatedClient,
    wait: float | Unset = 0.0,
) -> Response[AttributeJob | DiagnoseJob | EditJob | EraseJob | ScoreJob | TraceJob | VectorJob | Problem]:
    """Job status, progress and result

    Args:
        job_id (str): The job id from the 202 response.
        wait (float | Unset): Wait up to this many seconds for the job to end (long-poll; capped
            by the server). Default: 0.0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AttributeJob | DiagnoseJob | EditJob | EraseJob | ScoreJob | TraceJob | VectorJob | Problem]
    """

    kwargs = _get_kwargs(
        job_id=job_id,
        wait=wait,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    job_id: str,
    *,
    client: AuthenticatedClient,
    wait: float | Unset = 0.0,
) -> AttributeJob | DiagnoseJob | EditJob | EraseJob | ScoreJob | TraceJob | VectorJob | Problem | None:
    """Job status, progress and result

    Args:
        job_id (str): The job id from the 202 response.
        wait (float | Unset): Wait up to this many seconds for the job to end (long-poll; capped
            by the server). Default: 0.0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AttributeJob | DiagnoseJob | EditJob | EraseJob | ScoreJob | TraceJob | VectorJob | Problem
    """

    return (
        await asyncio_detailed(
            job_id=job_id,
            client=client,
            wait=wait,
        )
    ).parsed
