from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.vector_info_accuracy import VectorInfoAccuracy
    from ..models.vector_info_layer_scores import VectorInfoLayerScores
    from ..models.vector_info_norms import VectorInfoNorms


T = TypeVar("T", bound="VectorInfo")


@_attrs_define
class VectorInfo:
    """A stored control vector's provenance (its values stay on the server).

    Attributes:
        accuracy (VectorInfoAccuracy): Per chosen layer, held-out (leave-one-out) separation accuracy of the pairs; null
            with one pair.
        created_at (str):
        hidden_size (int):
        layer_scores (VectorInfoLayerScores): Held-out accuracy of every layer considered.
        layers (list[int]):
        method (str):
        model (str):
        n_pairs (int):
        name (str):
        normalized (bool):
        norms (VectorInfoNorms): Per layer, the norm of the raw direction.
        reading (str):
        ref (str): `name@version`, usable in `/generate` steering.
        sha256 (str):
        version (int):
    """

    accuracy: VectorInfoAccuracy
    created_at: str
    hidden_size: int
    layer_scores: VectorInfoLayerScores
    layers: list[int]
    method: str
    model: str
    n_pairs: int
    name: str
    normalized: bool
    norms: VectorInfoNorms
    reading: str
    ref: str
    sha256: str
    version: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        accuracy = self.accuracy.to_dict()

        created_at = self.created_at

        hidden_size = self.hidden_size

        layer_scores = self.layer_scores.to_dict()

        layers = self.layers

        method = self.method

        model = self.model

        n_pairs = self.n_pairs

        name = self.name

        normalized = self.normalized

        norms = self.norms.to_dict()

        reading = self.reading

        ref = self.ref

        sha256 = self.sha256

        version = self.version

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "accuracy": accuracy,
                "created_at": created_at,
                "hidden_size": hidden_size,
                "layer_scores": layer_scores,
                "layers": layers,
                "method": method,
                "model": model,
                "n_pairs": n_pairs,
                "name": name,
                "normalized": normalized,
                "norms": norms,
                "reading": reading,
                "ref": ref,
                "sha256": sha256,
                "version": version,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.vector_info_accuracy import VectorInfoAccuracy  # noqa: PLC0415
        from ..models.vector_info_layer_scores import VectorInfoLayerScores  # noqa: PLC0415
        from ..models.vector_info_norms import VectorInfoNorms  # noqa: PLC0415

        d = dict(src_dict)
        accuracy = VectorInfoAccuracy.from_dict(d.pop("accuracy"))

        created_at = d.pop("created_at")

        hidden_size = d.pop("hidden_size")

        layer_scores = VectorInfoLayerScores.from_dict(d.pop("layer_scores"))

        layers = cast(list[int], d.pop("layers"))

        method = d.pop("method")

        model = d.pop("model")

        n_pairs = d.pop("n_pairs")

        name = d.pop("name")

        normalized = d.pop("normalized")

        norms = VectorInfoNorms.from_dict(d.pop("norms"))

        reading = d.pop("reading")

        ref = d.pop("ref")

        sha256 = d.pop("sha256")

        version = d.pop("version")

        vector_info = cls(
            accuracy=accuracy,
            created_at=created_at,
            hidden_size=hidden_size,
            layer_scores=layer_scores,
            layers=layers,
            method=method,
            model=model,
            n_pairs=n_pairs,
            name=name,
            normalized=normalized,
            norms=norms,
            reading=reading,
            ref=ref,
            sha256=sha256,
            version=version,
        )

        vector_info.additional_properties = d
        return vector_info

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
