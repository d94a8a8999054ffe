from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.attribute_request_aggregate import AttributeRequestAggregate
from ..models.attribute_request_baseline_type_0 import AttributeRequestBaselineType0
from ..models.attribute_request_method import AttributeRequestMethod
from ..models.attribute_request_objective import AttributeRequestObjective
from ..models.attribute_request_precision import AttributeRequestPrecision
from ..models.attribute_request_rule import AttributeRequestRule
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.chat_message import ChatMessage
    from ..models.continuation_target import ContinuationTarget
    from ..models.generate_target import GenerateTarget
    from ..models.next_token_target import NextTokenTarget


T = TypeVar("T", bound="AttributeRequest")


@_attrs_define
class AttributeRequest:
    """How much did each input token contribute to the output?

    Attributes:
        aggregate (AttributeRequestAggregate | Unset): `word` sums token attributions per word (sign and completeness
            kept). Default: AttributeRequestAggregate.TOKEN.
        allow_special_tokens (bool | Unset): Read special-token text (`<|endoftext|>`) in prompts, messages and texts as
            control tokens; by default it is plain text (the chat template's own tokens are special either way). Default:
            False.
        baseline (AttributeRequestBaselineType0 | int | Unset): IG: token embedding at the baseline: pad, unk, mask, a
            token id, or `zero` (refused on RMSNorm models, where it gives NaN). Default: AttributeRequestBaselineType0.PAD.
        internal_batch_size (int | None | Unset): IG: alphas per forward pass; automatic under a memory budget when
            omitted.
        max_evals (int | Unset): SHAP: model evaluations. Default: 500.
        max_evaluations (int | Unset): IG adaptive: budget of gradient evaluations (alphas). Default: 512.
        messages (list[ChatMessage] | None | Unset): Chat messages; template and role tokens are marked not
            attributable.
        method (AttributeRequestMethod | Unset):  Default: AttributeRequestMethod.INTEGRATED_GRADIENTS.
        model (None | str | Unset): Model name; the default model when omitted.
        n_steps (int | Unset): IG: steps of the fixed rules; initial intervals of `adaptive` are derived from it.
            Default: 50.
        objective (AttributeRequestObjective | Unset):  Default: AttributeRequestObjective.LOG_PROB.
        precision (AttributeRequestPrecision | Unset): IG: arithmetic of the passes. `float32` computes a model served
            in bfloat16/float16 with a float32 copy of its weights for the job (in bfloat16 the gradients do not add up to
            the output's change); `model` keeps the served dtype. Default: AttributeRequestPrecision.FLOAT32.
        prompt (None | str | Unset):
        rule (AttributeRequestRule | Unset): IG quadrature. `adaptive` refines the intervals where the gradient
            disagrees with the exact forward change until the completeness tolerance or the budget. Default:
            AttributeRequestRule.ADAPTIVE.
        seed (int | Unset): SHAP: seed of the explainer (0 to 2**32 - 1). Default: 0.
        target (ContinuationTarget | GenerateTarget | NextTokenTarget | Unset):
        tolerance (float | Unset): IG adaptive: relative completeness error. Default: 0.01.
        variant (None | str | Unset): Run on this model variant (`name` or `name@version`, see
            `/models/{model}/variants`); the base model when omitted.
    """

    aggregate: AttributeRequestAggregate | Unset = AttributeRequestAggregate.TOKEN
    allow_special_tokens: bool | Unset = False
    baseline: AttributeRequestBaselineType0 | int | Unset = AttributeRequestBaselineType0.PAD
    internal_batch_size: int | None | Unset = UNSET
    max_evals: int | Unset = 500
    max_evaluations: int | Unset = 512
    messages: list[ChatMessage] | None | Unset = UNSET
    method: AttributeRequestMethod | Unset = AttributeRequestMethod.INTEGRATED_GRADIENTS
    model: None | str | Unset = UNSET
    n_steps: int | Unset = 50
    objective: AttributeRequestObjective | Unset = AttributeRequestObjective.LOG_PROB
    precision: AttributeRequestPrecision | Unset = AttributeRequestPrecision.FLOAT32
    prompt: None | str | Unset = UNSET
    rule: AttributeRequestRule | Unset = AttributeRequestRule.ADAPTIVE
    seed: int | Unset = 0
    target: ContinuationTarget | GenerateTarget | NextTokenTarget | Unset = UNSET
    tolerance: float | Unset = 0.01
    variant: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.continuation_target import ContinuationTarget  # noqa: PLC0415
        from ..models.next_token_target import NextTokenTarget  # noqa: PLC0415

        aggregate: str | Unset = UNSET
        if not isinstance(self.aggregate, Unset):
            aggregate = self.aggregate.value

        allow_special_tokens = self.allow_special_tokens

        baseline: int | str | Unset
        if isinstance(self.baseline, Unset):
            baseline = UNSET
        elif isinstance(self.baseline, AttributeRequestBaselineType0):
            baseline = self.baseline.value
        else:
            baseline = self.baseline

        internal_batch_size: int | None | Unset
        if isinstance(self.internal_batch_size, Unset):
            internal_batch_size = UNSET
        else:
            internal_batch_size = self.internal_batch_size

        max_evals = self.max_evals

        max_evaluations = self.max_evaluations

        messages: list[dict[str, Any]] | None | Unset
        if isinstance(self.messages, Unset):
            messages = UNSET
        elif isinstance(self.messages, list):
            messages = []
            for messages_type_0_item_data in self.messages:
                messages_type_0_item = messages_type_0_item_data.to_dict()
                messages.append(messages_type_0_item)

        else:
            messages = self.messages

        method: str | Unset = UNSET
        if not isinstance(self.method, Unset):
            method = self.method.value

        model: None | str | Unset
        if isinstance(self.model, Unset):
            model = UNSET
        else:
            model = self.model

        n_steps = self.n_steps

        objective: str | Unset = UNSET
        if not isinstance(self.objective, Unset):
            objective = self.objective.value

        precision: str | Unset = UNSET
        if not isinstance(self.precision, Unset):
            precision = self.precision.value

        prompt: None | str | Unset
        if isinstance(self.prompt, Unset):
            prompt = UNSET
        else:
            prompt = self.prompt

        rule: str | Unset = UNSET
        if not isinstance(self.rule, Unset):
            rule = self.rule.value

        seed = self.seed

        target: dict[str, Any] | Unset
        if isinstance(self.target, Unset):
            target = UNSET
        elif isinstance(self.target, NextTokenTarget):
            target = self.target.to_dict()
        elif isinstance(self.target, ContinuationTarget):
            target = self.target.to_dict()
        else:
            target = self.target.to_dict()

        tolerance = self.tolerance

        variant: None | str | Unset
        if isinstance(self.variant, Unset):
            variant = UNSET
        else:
            variant = self.variant

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if aggregate is not UNSET:
            field_dict["aggregate"] = aggregate
        if allow_special_tokens is not UNSET:
            field_dict["allow_special_tokens"] = allow_special_tokens
        if baseline is not UNSET:
            field_dict["baseline"] = baseline
        if internal_batch_size is not UNSET:
            field_dict["internal_batch_size"] = internal_batch_size
        if max_evals is not UNSET:
            field_dict["max_evals"] = max_evals
        if max_evaluations is not UNSET:
            field_dict["max_evaluations"] = max_evaluations
        if messages is not UNSET:
            field_dict["messages"] = messages
        if method is not UNSET:
            field_dict["method"] = method
        if model is not UNSET:
            field_dict["model"] = model
        if n_steps is not UNSET:
            field_dict["n_steps"] = n_steps
        if objective is not UNSET:
            field_dict["objective"] = objective
        if precision is not UNSET:
            field_dict["precision"] = precision
        if prompt is not UNSET:
            field_dict["prompt"] = prompt
        if rule is not UNSET:
            field_dict["rule"] = rule
        if seed is not UNSET:
            field_dict["seed"] = seed
        if target is not UNSET:
            field_dict["target"] = target
        if tolerance is not UNSET:
            field_dict["tolerance"] = tolerance
        if variant is not UNSET:
            field_dict["variant"] = variant

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.chat_message import ChatMessage  # noqa: PLC0415
        from ..models.continuation_target import ContinuationTarget  # noqa: PLC0415
        from ..models.generate_target import GenerateTarget  # noqa: PLC0415
        from ..models.next_token_target import NextTokenTarget  # noqa: PLC0415

        d = dict(src_dict)
        _aggregate = d.pop("aggregate", UNSET)
        aggregate: AttributeRequestAggregate | Unset
        if isinstance(_aggregate, Unset):
            aggregate = UNSET
        else:
            aggregate = AttributeRequestAggregate(_aggregate)

        allow_special_tokens = d.pop("allow_special_tokens", UNSET)

        def _parse_baseline(data: object) -> AttributeRequestBaselineType0 | int | Unset:
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                baseline_type_0 = AttributeRequestBaselineType0(data)

                return baseline_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(AttributeRequestBaselineType0 | int | Unset, data)

        baseline = _parse_baseline(d.pop("baseline", UNSET))

        def _parse_internal_batch_size(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        internal_batch_size = _parse_internal_batch_size(d.pop("internal_batch_size", UNSET))

        max_evals = d.pop("max_evals", UNSET)

        max_evaluations = d.pop("max_evaluations", UNSET)

        def _parse_messages(data: object) -> list[ChatMessage] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                messages_type_0 = []
                _messages_type_0 = data
                for messages_type_0_item_data in _messages_type_0:
                    messages_type_0_item = ChatMessage.from_dict(messages_type_0_item_data)

                    messages_type_0.append(messages_type_0_item)

                return messages_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[ChatMessage] | None | Unset, data)

        messages = _parse_messages(d.pop("messages", UNSET))

        _method = d.pop("method", UNSET)
        method: AttributeRequestMethod | Unset
        if isinstance(_method, Unset):
            method = UNSET
        else:
            method = AttributeRequestMethod(_method)

        def _parse_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        model = _parse_model(d.pop("model", UNSET))

        n_steps = d.pop("n_steps", UNSET)

        _objective = d.pop("objective", UNSET)
        objective: AttributeRequestObjective | Unset
        if isinstance(_objective, Unset):
            objective = UNSET
        else:
            objective = AttributeRequestObjective(_objective)

        _precision = d.pop("precision", UNSET)
        precision: AttributeRequestPrecision | Unset
        if isinstance(_precision, Unset):
            precision = UNSET
        else:
            precision = AttributeRequestPrecision(_precision)

        def _parse_prompt(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        prompt = _parse_prompt(d.pop("prompt", UNSET))

        _rule = d.pop("rule", UNSET)
        rule: AttributeRequestRule | Unset
        if isinstance(_rule, Unset):
            rule = UNSET
        else:
            rule = AttributeRequestRule(_rule)

        seed = d.pop("seed", UNSET)

        def _parse_target(data: object) -> ContinuationTarget | GenerateTarget | NextTokenTarget | Unset:
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                target_type_0 = NextTokenTarget.from_dict(data)

                return target_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                target_type_1 = ContinuationTarget.from_dict(data)

                return target_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            target_type_2 = GenerateTarget.from_dict(data)

            return target_type_2

        target = _parse_target(d.pop("target", UNSET))

        tolerance = d.pop("tolerance", UNSET)

        def _parse_variant(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        variant = _parse_variant(d.pop("variant", UNSET))

        attribute_request = cls(
            aggregate=aggregate,
            allow_special_tokens=allow_special_tokens,
            baseline=baseline,
            internal_batch_size=internal_batch_size,
            max_evals=max_evals,
            max_evaluations=max_evaluations,
            messages=messages,
            method=method,
            model=model,
            n_steps=n_steps,
            objective=objective,
            precision=precision,
            prompt=prompt,
            rule=rule,
            seed=seed,
            target=target,
            tolerance=tolerance,
            variant=variant,
        )

        return attribute_request
