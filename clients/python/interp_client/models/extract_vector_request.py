from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..models.extract_vector_request_method import ExtractVectorRequestMethod
from ..models.extract_vector_request_reading import ExtractVectorRequestReading
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.contrast_pair import ContrastPair


T = TypeVar("T", bound="ExtractVectorRequest")


@_attrs_define
class ExtractVectorRequest:
    """Extract a control vector from contrasting prompts and store it under a name.

    Attributes:
        name (str): Stored as the next version of this name.
        allow_special_tokens (bool | Unset): Read special-token text (`<|endoftext|>`) in prompts, messages and texts as
            control tokens; by default it is plain text (the chat template's own tokens are special either way). Default:
            False.
        layers (list[int] | Literal['auto'] | Unset): Blocks to read (0-based; the output of that block), or `auto`:
            score every layer by held-out separation of the pairs and keep the best.
        method (ExtractVectorRequestMethod | Unset): `mean_diff`: mean of the pair differences; `pca`: their first
            uncentred principal axis. Default: ExtractVectorRequestMethod.MEAN_DIFF.
        model (None | str | Unset): Model name; the default model when omitted.
        negative (list[str] | None | Unset):
        normalize (bool | Unset): Store unit vectors (the textbook normalises). Default: False.
        pairs (list[ContrastPair] | None | Unset):
        positive (list[str] | None | Unset): With `negative`, instead of `pairs`: `positive[i]` pairs with
            `negative[i]`.
        reading (ExtractVectorRequestReading | Unset): Last non-pad token, or mean over tokens. Default:
            ExtractVectorRequestReading.LAST.
    """

    name: str
    allow_special_tokens: bool | Unset = False
    layers: list[int] | Literal["auto"] | Unset = UNSET
    method: ExtractVectorRequestMethod | Unset = ExtractVectorRequestMethod.MEAN_DIFF
    model: None | str | Unset = UNSET
    negative: list[str] | None | Unset = UNSET
    normalize: bool | Unset = False
    pairs: list[ContrastPair] | None | Unset = UNSET
    positive: list[str] | None | Unset = UNSET
    reading: ExtractVectorRequestReading | Unset = ExtractVectorRequestReading.LAST

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        allow_special_tokens = self.allow_special_tokens

        layers: list[int] | Literal["auto"] | Unset
        if isinstance(self.layers, Unset):
            layers = UNSET
        elif isinstance(self.layers, list):
            layers = self.layers

        else:
            layers = self.layers

        method: str | Unset = UNSET
        if not isinstance(self.method, Unset):
            method = self.method.value

        model: None | str | Unset
        if isinstance(self.model, Unset):
            model = UNSET
        else:
            model = self.model

        negative: list[str] | None | Unset
        if isinstance(self.negative, Unset):
            negative = UNSET
        elif isinstance(self.negative, list):
            negative = self.negative

        else:
            negative = self.negative

        normalize = self.normalize

        pairs: list[dict[str, Any]] | None | Unset
        if isinstance(self.pairs, Unset):
            pairs = UNSET
        elif isinstance(self.pairs, list):
            pairs = []
            for pairs_type_0_item_data in self.pairs:
                pairs_type_0_item = pairs_type_0_item_data.to_dict()
                pairs.append(pairs_type_0_item)

        else:
            pairs = self.pairs

        positive: list[str] | None | Unset
        if isinstance(self.positive, Unset):
            positive = UNSET
        elif isinstance(self.positive, list):
            positive = self.positive

        else:
            positive = self.positive

        reading: str | Unset = UNSET
        if not isinstance(self.reading, Unset):
            reading = self.reading.value

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
            }
        )
        if allow_special_tokens is not UNSET:
            field_dict["allow_special_tokens"] = allow_special_tokens
        if layers is not UNSET:
            field_dict["layers"] = layers
        if method is not UNSET:
            field_dict["method"] = method
        if model is not UNSET:
            field_dict["model"] = model
        if negative is not UNSET:
            field_dict["negative"] = negative
        if normalize is not UNSET:
            field_dict["normalize"] = normalize
        if pairs is not UNSET:
            field_dict["pairs"] = pairs
        if positive is not UNSET:
            field_dict["positive"] = positive
        if reading is not UNSET:
            field_dict["reading"] = reading

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.contrast_pair import ContrastPair  # noqa: PLC0415

        d = dict(src_dict)
        name = d.pop("name")

        allow_special_tokens = d.pop("allow_special_tokens", UNSET)

        def _parse_layers(data: object) -> list[int] | Literal["auto"] | Unset:
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                layers_type_0 = cast(list[int], data)

                return layers_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            layers_type_1 = cast(Literal["auto"], data)
            if layers_type_1 != "auto":
                raise ValueError(f"layers_type_1 must match const 'auto', got '{layers_type_1}'")
            return layers_type_1

        layers = _parse_layers(d.pop("layers", UNSET))

        _method = d.pop("method", UNSET)
        method: ExtractVectorRequestMethod | Unset
        if isinstance(_method, Unset):
            method = UNSET
        else:
            method = ExtractVectorRequestMethod(_method)

        def _parse_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        model = _parse_model(d.pop("model", UNSET))

        def _parse_negative(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                negative_type_0 = cast(list[str], data)

                return negative_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        negative = _parse_negative(d.pop("negative", UNSET))

        normalize = d.pop("normalize", UNSET)

        def _parse_pairs(data: object) -> list[ContrastPair] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                pairs_type_0 = []
                _pairs_type_0 = data
                for pairs_type_0_item_data in _pairs_type_0:
                    pairs_type_0_item = ContrastPair.from_dict(pairs_type_0_item_data)

                    pairs_type_0.append(pairs_type_0_item)

                return pairs_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[ContrastPair] | None | Unset, data)

        pairs = _parse_pairs(d.pop("pairs", UNSET))

        def _parse_positive(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                positive_type_0 = cast(list[str], data)

                return positive_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        positive = _parse_positive(d.pop("positive", UNSET))

        _reading = d.pop("reading", UNSET)
        reading: ExtractVectorRequestReading | Unset
        if isinstance(_reading, Unset):
            reading = UNSET
        else:
            reading = ExtractVectorRequestReading(_reading)

        extract_vector_request = cls(
            name=name,
            allow_special_tokens=allow_special_tokens,
            layers=layers,
            method=method,
            model=model,
            negative=negative,
            normalize=normalize,
            pairs=pairs,
            positive=positive,
            reading=reading,
        )

        return extract_vector_request
