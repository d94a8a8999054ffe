from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.job_status import JobStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.diagnose_job_links import DiagnoseJobLinks
    from ..models.diagnosis_report import DiagnosisReport
    from ..models.problem import Problem
    from ..models.progress import Progress


T = TypeVar("T", bound="DiagnoseJob")


@_attrs_define
class DiagnoseJob:
    """A `POST /diagnose` job: attribution, logit lens and tracing in one report.

    Attributes:
        created_at (datetime.datetime):
        id (str):
        model (str):
        progress (Progress):
        status (JobStatus):
        cancel_requested (bool | Unset):  Default: False.
        ended_at (datetime.datetime | None | Unset):
        error (None | Problem | Unset): Why the job failed or was canceled.
        expires_at (datetime.datetime | None | Unset): When the job and its result are deleted.
        kind (Literal['diagnose'] | Unset):  Default: 'diagnose'.
        links (DiagnoseJobLinks | Unset): `self` and `cancel` URLs.
        request_id (None | str | Unset): The `X-Request-ID` of the request that submitted the job (the client's, or one
            the API made); it is in the logs of both sides.
        result (DiagnosisReport | None | Unset):
        started_at (datetime.datetime | None | Unset):
    """

    created_at: datetime.datetime
    id: str
    model: str
    progress: Progress
    status: JobStatus
    cancel_requested: bool | Unset = False
    ended_at: datetime.datetime | None | Unset = UNSET
    error: None | Problem | Unset = UNSET
    expires_at: datetime.datetime | None | Unset = UNSET
    kind: Literal["diagnose"] | Unset = "diagnose"
    links: DiagnoseJobLinks | Unset = UNSET
    request_id: None | str | Unset = UNSET
    result: DiagnosisReport | None | Unset = UNSET
    started_at: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.diagnosis_report import DiagnosisReport  # noqa: PLC0415
        from ..models.problem import Problem  # noqa: PLC0415

        created_at = self.created_at.isoformat()

        id = self.id

        model = self.model

        progress = self.progress.to_dict()

        status = self.status.value

        cancel_requested = self.cancel_requested

        ended_at: None | str | Unset
        if isinstance(self.ended_at, Unset):
            ended_at = UNSET
        elif isinstance(self.ended_at, datetime.datetime):
            ended_at = self.ended_at.isoformat()
        else:
            ended_at = self.ended_at

        error: dict[str, Any] | None | Unset
        if isinstance(self.error, Unset):
            error = UNSET
        elif isinstance(self.error, Problem):
            error = self.error.to_dict()
        else:
            error = self.error

        expires_at: None | str | Unset
        if isinstance(self.expires_at, Unset):
            expires_at = UNSET
        elif isinstance(self.expires_at, datetime.datetime):
            expires_at = self.expires_at.isoformat()
        else:
            expires_at = self.expires_at

        kind = self.kind

        links: dict[str, Any] | Unset = UNSET
        if not isinstance(self.links, Unset):
            links = self.links.to_dict()

        request_id: None | str | Unset
        if isinstance(self.request_id, Unset):
            request_id = UNSET
        else:
            request_id = self.request_id

        result: dict[str, Any] | None | Unset
        if isinstance(self.result, Unset):
            result = UNSET
        elif isinstance(self.result, DiagnosisReport):
            result = self.result.to_dict()
        else:
            result = self.result

        started_at: None | str | Unset
        if isinstance(self.started_at, Unset):
            started_at = UNSET
        elif isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "id": id,
                "model": model,
                "progress": progress,
                "status": status,
            }
        )
        if cancel_requested is not UNSET:
            field_dict["cancel_requested"] = cancel_requested
        if ended_at is not UNSET:
            field_dict["ended_at"] = ended_at
        if error is not UNSET:
            field_dict["error"] = error
        if expires_at is not UNSET:
            field_dict["expires_at"] = expires_at
        if kind is not UNSET:
            field_dict["kind"] = kind
        if links is not UNSET:
            field_dict["links"] = links
        if request_id is not UNSET:
            field_dict["request_id"] = request_id
        if result is not UNSET:
            field_dict["result"] = result
        if started_at is not UNSET:
            field_dict["started_at"] = started_at

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.diagnose_job_links import DiagnoseJobLinks  # noqa: PLC0415
        from ..models.diagnosis_report import DiagnosisReport  # noqa: PLC0415
        from ..models.problem import Problem  # noqa: PLC0415
        from ..models.progress import Progress  # noqa: PLC0415

        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        id = d.pop("id")

        model = d.pop("model")

        progress = Progress.from_dict(d.pop("progress"))

        status = JobStatus(d.pop("status"))

        cancel_requested = d.pop("cancel_requested", UNSET)

        def _parse_ended_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                ended_at_type_0 = datetime.datetime.fromisoformat(data)

                return ended_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        ended_at = _parse_ended_at(d.pop("ended_at", UNSET))

        def _parse_error(data: object) -> None | Problem | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                error_type_0 = Problem.from_dict(data)

                return error_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Problem | Unset, data)

        error = _parse_error(d.pop("error", UNSET))

        def _parse_expires_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                expires_at_type_0 = datetime.datetime.fromisoformat(data)

                return expires_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        expires_at = _parse_expires_at(d.pop("expires_at", UNSET))

        kind = cast(Literal["diagnose"] | Unset, d.pop("kind", UNSET))
        if kind != "diagnose" and not isinstance(kind, Unset):
            raise ValueError(f"kind must match const 'diagnose', got '{kind}'")

        _links = d.pop("links", UNSET)
        links: DiagnoseJobLinks | Unset
        if isinstance(_links, Unset):
            links = UNSET
        else:
            links = DiagnoseJobLinks.from_dict(_links)

        def _parse_request_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        request_id = _parse_request_id(d.pop("request_id", UNSET))

        def _parse_result(data: object) -> DiagnosisReport | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                result_type_0 = DiagnosisReport.from_dict(data)

                return result_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(DiagnosisReport | None | Unset, data)

        result = _parse_result(d.pop("result", UNSET))

        def _parse_started_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                started_at_type_0 = datetime.datetime.fromisoformat(data)

                return started_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        started_at = _parse_started_at(d.pop("started_at", UNSET))

        diagnose_job = cls(
            created_at=created_at,
            id=id,
            model=model,
            progress=progress,
            status=status,
            cancel_requested=cancel_requested,
            ended_at=ended_at,
            error=error,
            expires_at=expires_at,
            kind=kind,
            links=links,
            request_id=request_id,
            result=result,
            started_at=started_at,
        )

        diagnose_job.additional_properties = d
        return diagnose_job

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
