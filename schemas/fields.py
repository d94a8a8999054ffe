"""What every request shares: strict types, finite numbers, seeds, and the special-token switch.

**Strict.** Every request model (and every model nested in one) derives from `Request`, which
validates strictly: a boolean is not an integer (``"generation_tokens": false`` is not 0), a string
is not a number (``"5"``), a float with a fraction is not an integer, and a field the model does not
have is refused rather than ignored (``"max_eval": 50`` used to run with the default 500). A JSON
integer is still a float (``"temperature": 1``).

**Finite and bounded.** Python's ``json`` reads ``Infinity``, ``NaN`` and ``1e400`` (as inf), so
every float is `FiniteFloat` and has both bounds in the schema (the OpenAPI shows them); each bound
says in its field's description why it is where it is. Numbers that become float32 tensors stay
within float32 (`FLOAT32_MAX`).

**Seeds** are ``0..SEED_MAX`` (``2**32 - 1``) everywhere: numpy's global generator, which SHAP's
explainer draws from, takes no larger seed; the editing caches mix their seeds with round numbers
(``seed * 1_000_003 + i``) that must stay below the ``2**64`` torch generators accept; and every JSON
client holds such a number exactly (JavaScript loses integers above ``2**53``). Four billion seeds
are plenty to tell runs apart.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

#: The largest float32 magnitude, rounded down: a value beyond it becomes inf in a float32 tensor.
FLOAT32_MAX = 3.4e38
#: The largest seed any request takes (see the module's docstring).
SEED_MAX = 2**32 - 1


class Request(BaseModel):
    """A request body, or a model nested in one: strict types (a bool is not an int, a str not a number), and
    no field it does not declare."""

    model_config = ConfigDict(strict=True, extra="forbid")


#: A float that is a real number: ``Infinity``, ``NaN`` and overflowing literals are refused.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]

#: A seed of a request's random draws.
Seed = Annotated[int, Field(ge=0, le=SEED_MAX, description=f"0 to {SEED_MAX} (2**32 - 1).")]

#: The switch of every request that takes prompts, messages or texts. Off, special-token text a caller writes
#: (`<|im_end|>`, `<|endoftext|>`) is plain text, so a message cannot close its turn and open a system one; the
#: chat template's own special tokens are special either way (`engine.prompts`).
AllowSpecialTokens = Annotated[bool, Field(description=(
    "Read special-token text (`<|endoftext|>`) in prompts, messages and texts as control tokens; by default it "
    "is plain text (the chat template's own tokens are special either way)."))]
