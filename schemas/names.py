"""The name grammar, written once: stored names, references to versions, job ids.

A stored name (model, tenant, variant, vector) becomes a directory name, so it is a plain path
component: 1-64 letters, digits, ``.``, ``_`` or ``-``, starting with a letter or digit. A
reference is ``name`` (the latest version) or ``name@N`` (versions count from 1). The stores
(`store.names`) and `config.settings` compile these same patterns; a test pins them together.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_VERSION = r"[1-9][0-9]{0,8}"

#: JSON-schema patterns (anchored, as OpenAPI spells them).
NAME_PATTERN = f"^{_NAME}$"
REF_PATTERN = f"^{_NAME}(@{_VERSION})?$"
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"

#: Compiled, for ``fullmatch``.
NAME = re.compile(_NAME)
VERSION = re.compile(_VERSION)

#: The rule in words, for error details.
NAME_RULE = "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"

#: A stored name, as a request field.
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
#: ``name`` or ``name@version``, as a request field.
Ref = Annotated[str, Field(pattern=REF_PATTERN)]
