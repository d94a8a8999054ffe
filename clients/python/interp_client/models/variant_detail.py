from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.variant_component import VariantComponent
    from ..models.variant_detail_hyperparameters import VariantDetailHyperparameters
    from ..models.variant_detail_provenance import VariantDetailProvenance
    from ..models.variant_detail_report_type_0 import VariantDetailReportType0
    from ..models.variant_detail_request import VariantDetailRequest


T = TypeVar("T", bound="VariantDetail")


@_attrs_define
class VariantDetail:
    """A variant version with its provenance: components, request, hyperparameters, report.

    Attributes:
        components (list[VariantComponent]):
        hidden_size (int):
        hyperparameters (VariantDetailHyperparameters):
        lineage (list[str]): Ancestors, oldest first.
        model (str):
        name (str):
        provenance (VariantDetailProvenance): Job id and other facts of its making.
        report (None | VariantDetailReportType0): The evaluation report of the job that made it.
        request (VariantDetailRequest): The request that made it.
        version (int):
        created_at (None | str | Unset):
        method (None | str | Unset): What made it: `leace`, `orth`, `rome`, ...
        n_components (int | None | Unset):
        parent (None | str | Unset): The variant it was derived from (`name@version`); null for the base model. Serving
            the parent rolls this one back.
        parent_sha256 (None | str | Unset):
        ref (None | str | Unset): `name@version`: this version, forever.
        sha256 (None | str | Unset): sha256 of the stored components file.
    """

    components: list[VariantComponent]
    hidden_size: int
    hyperparameters: VariantDetailHyperparameters
    lineage: list[str]
    model: str
    name: str
    provenance: VariantDetailProvenance
    report: None | VariantDetailReportType0
    request: VariantDetailRequest
    version: int
    created_at: None | str | Unset = UNSET
    method: None | str | Unset = UNSET
    n_components: int | None | Unset = UNSET
    parent: None | str | Unset = UNSET
    parent_sha256: None | str | Unset = UNSET
    ref: None | str | Unset = UNSET
    sha256: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.variant_detail_report_type_0 import VariantDetailReportType0  # noqa: PLC0415

        components = []
        for components_item_data in self.components:
            components_item = components_item_data.to_dict()
            components.append(components_item)

        hidden_size = self.hidden_size

        hyperparameters = self.hyperparameters.to_dict()

        lineage = self.lineage

        model = self.model

        name = self.name

        provenance = self.provenance.to_dict()

        report: dict[str, Any] | None
        if isinstance(self.report, VariantDetailReportType0):
            report = self.report.to_dict()
        else:
            report = self.report

        request = self.request.to_dict()

        version = self.version

        created_at: None | str | Unset
        if isinstance(self.created_at, Unset):
            created_at = UNSET
        else:
            created_at = self.created_at

        method: None | str | Unset
        if isinstance(self.method, Unset):
            method = UNSET
        else:
            method = self.method

        n_components: int | None | Unset
        if isinstance(self.n_components, Unset):
            n_components = UNSET
        else:
            n_components = self.n_components

        parent: None | str | Unset
        if isinstance(self.parent, Unset):
            parent = UNSET
        else:
            parent = self.parent

        parent_sha256: None | str | Unset
        if isinstance(self.parent_sha256, Unset):
            parent_sha256 = UNSET
        else:
            parent_sha256 = self.parent_sha256

        ref: None | str | Unset
        if isinstance(self.ref, Unset):
            ref = UNSET
        else:
            ref = self.ref

        sha256: None | str | Unset
        if isinstance(self.sha256, Unset):
            sha256 = UNSET
        else:
            sha256 = self.sha256

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "components": components,
                "hidden_size": hidden_size,
                "hyperparameters": hyperparameters,
                "lineage": lineage,
                "model": model,
                "name": name,
                "provenance": provenance,
                "report": report,
                "request": request,
                "version": version,
            }
        )
        if created_at is not UNSET:
            field_dict["created_at"] = created_at
        if method is not UNSET:
            field_dict["method"] = method
        if n_components is not UNSET:
            field_dict["n_components"] = n_components
        if parent is not UNSET:
            field_dict["parent"] = parent
        if parent_sha256 is not UNSET:
            field_dict["parent_sha256"] = parent_sha256
        if ref is not UNSET:
            field_dict["ref"] = ref
        if sha256 is not UNSET:
            field_dict["sha256"] = sha256

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.variant_component import VariantComponent  # noqa: PLC0415
        from ..models.variant_detail_hyperparameters import VariantDetailHyperparameters  # noqa: PLC0415
        from ..models.variant_detail_provenance import VariantDetailProvenance  # noqa: PLC0415
        from ..models.variant_detail_report_type_0 import VariantDetailReportType0  # noqa: PLC0415
        from ..models.variant_detail_request import VariantDetailRequest  # noqa: PLC0415

        d = dict(src_dict)
        components = []
        _components = d.pop("components")
        for components_item_data in _components:
            components_item = VariantComponent.from_dict(components_item_data)

            components.append(components_item)

        hidden_size = d.pop("hidden_size")

        hyperparameters = VariantDetailHyperparameters.from_dict(d.pop("hyperparameters"))

        lineage = cast(list[str], d.pop("lineage"))

        model = d.pop("model")

        name = d.pop("name")

        provenance = VariantDetailProvenance.from_dict(d.pop("provenance"))

        def _parse_report(data: object) -> None | VariantDetailReportType0:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                report_type_0 = VariantDetailReportType0.from_dict(data)

                return report_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | VariantDetailReportType0, data)

        report = _parse_report(d.pop("report"))

        request = VariantDetailRequest.from_dict(d.pop("request"))

        version = d.pop("version")

        def _parse_created_at(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        created_at = _parse_created_at(d.pop("created_at", UNSET))

        def _parse_method(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        method = _parse_method(d.pop("method", UNSET))

        def _parse_n_components(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        n_components = _parse_n_components(d.pop("n_components", UNSET))

        def _parse_parent(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        parent = _parse_parent(d.pop("parent", UNSET))

        def _parse_parent_sha256(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        parent_sha256 = _parse_parent_sha256(d.pop("parent_sha256", UNSET))

        def _parse_ref(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        ref = _parse_ref(d.pop("ref", UNSET))

        def _parse_sha256(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        sha256 = _parse_sha256(d.pop("sha256", UNSET))

        variant_detail = cls(
            components=components,
            hidden_size=hidden_size,
            hyperparameters=hyperparameters,
            lineage=lineage,
            model=model,
            name=name,
            provenance=provenance,
            report=report,
            request=request,
            version=version,
            created_at=created_at,
            method=method,
            n_components=n_components,
            parent=parent,
            parent_sha256=parent_sha256,
            ref=ref,
            sha256=sha256,
        )

        variant_detail.additional_properties = d
        return variant_detail

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
