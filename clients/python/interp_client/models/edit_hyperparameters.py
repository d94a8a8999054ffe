from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="EditHyperparameters")


@_attrs_define
class EditHyperparameters:
    """Overrides of the per-architecture defaults; omitted fields keep them (see the job's result).

    Every number is bounded where the method stops being able to use it, far beyond the published
    settings (Meng et al.: learning rate 0.5, weight decay 0.5 to 1e-3, KL factor 0.0625, clamp 0.75 to 4,
    stop loss 0.05, lambda 15,000 to 20,000), so that no value can overflow the optimisation into NaN
    weights: past each bound one term of the loss or the solve drowns every other.

        Attributes:
            clamp_norm_factor (float | None | Unset): The value change is at most this times the original value's norm
                (published: 0.75 to 4; 1000 is no clamp at all).
            kl_factor (float | None | Unset): Weight of the KL term that keeps the subject's essence ("{subject} is a";
                published: 0.0625; at 1000 the target term no longer counts).
            layers (list[int] | None | Unset): Blocks whose MLP output projection is edited (ROME: exactly one).
            mom2_samples (int | None | Unset): Key vectors (token positions) the statistics are computed on (cached per
                model, layer, corpus and count).
            mom2_seed (int | None | Unset): Seed of the self-sampled statistics corpus (0 to 2**32 - 1).
            mom2_weight (float | None | Unset): MEMIT: weight of the key covariance against the new keys (larger: more
                conservative; published: 15,000 to 20,000 for keys of width 16,384; at 1e6 an edit writes next to nothing).
            n_templates (int | None | Unset): Context templates the key and the value are averaged over.
            template_seed (int | None | Unset): Seed of the context templates (0 to 2**32 - 1).
            v_batch_facts (int | None | Unset): MEMIT: facts optimised together in one batch.
            v_lr (float | None | Unset): Adam learning rate of the value optimisation (published: 0.5).
            v_steps (int | None | Unset): Most optimisation steps per fact.
            v_stop_loss (float | None | Unset): A fact whose loss (mean negative log-probability of the target, nats) falls
                below this stops optimising (published: 0.05; 10 nats is a target probability of 5e-5, already below what the
                optimisation starts from).
            v_weight_decay (float | None | Unset): Weight of the value change's norm in the loss (published: 0.5 to 1e-3; at
                10 the decay outweighs any target loss).
    """

    clamp_norm_factor: float | None | Unset = UNSET
    kl_factor: float | None | Unset = UNSET
    layers: list[int] | None | Unset = UNSET
    mom2_samples: int | None | Unset = UNSET
    mom2_seed: int | None | Unset = UNSET
    mom2_weight: float | None | Unset = UNSET
    n_templates: int | None | Unset = UNSET
    template_seed: int | None | Unset = UNSET
    v_batch_facts: int | None | Unset = UNSET
    v_lr: float | None | Unset = UNSET
    v_steps: int | None | Unset = UNSET
    v_stop_loss: float | None | Unset = UNSET
    v_weight_decay: float | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        clamp_norm_factor: float | None | Unset
        if isinstance(self.clamp_norm_factor, Unset):
            clamp_norm_factor = UNSET
        else:
            clamp_norm_factor = self.clamp_norm_factor

        kl_factor: float | None | Unset
        if isinstance(self.kl_factor, Unset):
            kl_factor = UNSET
        else:
            kl_factor = self.kl_factor

        layers: list[int] | None | Unset
        if isinstance(self.layers, Unset):
            layers = UNSET
        elif isinstance(self.layers, list):
            layers = self.layers

        else:
            layers = self.layers

        mom2_samples: int | None | Unset
        if isinstance(self.mom2_samples, Unset):
            mom2_samples = UNSET
        else:
            mom2_samples = self.mom2_samples

        mom2_seed: int | None | Unset
        if isinstance(self.mom2_seed, Unset):
            mom2_seed = UNSET
        else:
            mom2_seed = self.mom2_seed

        mom2_weight: float | None | Unset
        if isinstance(self.mom2_weight, Unset):
            mom2_weight = UNSET
        else:
            mom2_weight = self.mom2_weight

        n_templates: int | None | Unset
        if isinstance(self.n_templates, Unset):
            n_templates = UNSET
        else:
            n_templates = self.n_templates

        template_seed: int | None | Unset
        if isinstance(self.template_seed, Unset):
            template_seed = UNSET
        else:
            template_seed = self.template_seed

        v_batch_facts: int | None | Unset
        if isinstance(self.v_batch_facts, Unset):
            v_batch_facts = UNSET
        else:
            v_batch_facts = self.v_batch_facts

        v_lr: float | None | Unset
        if isinstance(self.v_lr, Unset):
            v_lr = UNSET
        else:
            v_lr = self.v_lr

        v_steps: int | None | Unset
        if isinstance(self.v_steps, Unset):
            v_steps = UNSET
        else:
            v_steps = self.v_steps

        v_stop_loss: float | None | Unset
        if isinstance(self.v_stop_loss, Unset):
            v_stop_loss = UNSET
        else:
            v_stop_loss = self.v_stop_loss

        v_weight_decay: float | None | Unset
        if isinstance(self.v_weight_decay, Unset):
            v_weight_decay = UNSET
        else:
            v_weight_decay = self.v_weight_decay

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if clamp_norm_factor is not UNSET:
            field_dict["clamp_norm_factor"] = clamp_norm_factor
        if kl_factor is not UNSET:
            field_dict["kl_factor"] = kl_factor
        if layers is not UNSET:
            field_dict["layers"] = layers
        if mom2_samples is not UNSET:
            field_dict["mom2_samples"] = mom2_samples
        if mom2_seed is not UNSET:
            field_dict["mom2_seed"] = mom2_seed
        if mom2_weight is not UNSET:
            field_dict["mom2_weight"] = mom2_weight
        if n_templates is not UNSET:
            field_dict["n_templates"] = n_templates
        if template_seed is not UNSET:
            field_dict["template_seed"] = template_seed
        if v_batch_facts is not UNSET:
            field_dict["v_batch_facts"] = v_batch_facts
        if v_lr is not UNSET:
            field_dict["v_lr"] = v_lr
        if v_steps is not UNSET:
            field_dict["v_steps"] = v_steps
        if v_stop_loss is not UNSET:
            field_dict["v_stop_loss"] = v_stop_loss
        if v_weight_decay is not UNSET:
            field_dict["v_weight_decay"] = v_weight_decay

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_clamp_norm_factor(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        clamp_norm_factor = _parse_clamp_norm_factor(d.pop("clamp_norm_factor", UNSET))

        def _parse_kl_factor(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        kl_factor = _parse_kl_factor(d.pop("kl_factor", UNSET))

        def _parse_layers(data: object) -> list[int] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                layers_type_0 = cast(list[int], data)

                return layers_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[int] | None | Unset, data)

        layers = _parse_layers(d.pop("layers", UNSET))

        def _parse_mom2_samples(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        mom2_samples = _parse_mom2_samples(d.pop("mom2_samples", UNSET))

        def _parse_mom2_seed(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        mom2_seed = _parse_mom2_seed(d.pop("mom2_seed", UNSET))

        def _parse_mom2_weight(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        mom2_weight = _parse_mom2_weight(d.pop("mom2_weight", UNSET))

        def _parse_n_templates(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        n_templates = _parse_n_templates(d.pop("n_templates", UNSET))

        def _parse_template_seed(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        template_seed = _parse_template_seed(d.pop("template_seed", UNSET))

        def _parse_v_batch_facts(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        v_batch_facts = _parse_v_batch_facts(d.pop("v_batch_facts", UNSET))

        def _parse_v_lr(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        v_lr = _parse_v_lr(d.pop("v_lr", UNSET))

        def _parse_v_steps(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        v_steps = _parse_v_steps(d.pop("v_steps", UNSET))

        def _parse_v_stop_loss(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        v_stop_loss = _parse_v_stop_loss(d.pop("v_stop_loss", UNSET))

        def _parse_v_weight_decay(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        v_weight_decay = _parse_v_weight_decay(d.pop("v_weight_decay", UNSET))

        edit_hyperparameters = cls(
            clamp_norm_factor=clamp_norm_factor,
            kl_factor=kl_factor,
            layers=layers,
            mom2_samples=mom2_samples,
            mom2_seed=mom2_seed,
            mom2_weight=mom2_weight,
            n_templates=n_templates,
            template_seed=template_seed,
            v_batch_facts=v_batch_facts,
            v_lr=v_lr,
            v_steps=v_steps,
            v_stop_loss=v_stop_loss,
            v_weight_decay=v_weight_decay,
        )

        return edit_hyperparameters
