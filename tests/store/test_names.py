"""Stored names and references: the stores apply exactly the grammar the API's schemas publish."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from schemas.names import Name, Ref
from store.names import check_name, complete_versions, named_dirs, parse_ref

NAMES = ["a", "A9", "honesty", "v1.2_x-y", "x" * 64, "0lead", "x" * 65, "", ".hidden", "..", "-dash", "_under",
         "a/b", "../x", "a\x00b", "tab\there", "line\n", "sp ace", "ü", "a@1"]
REFS = [*NAMES, "honesty@1", "honesty@3", "v1.2_x-y@12", "a@999999999", "a@1000000000", "honesty@", "honesty@0",
        "honesty@-1", "honesty@x", "honesty@03", "a@1@2", "@3", "a@1\n"]


def schema_accepts(kind: object, value: str) -> bool:
    try:
        TypeAdapter(kind).validate_python(value)
    except ValidationError:
        return False
    return True


def store_accepts(check: object, value: str) -> bool:
    try:
        check(value)  # type: ignore[operator]
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("value", NAMES)
def test_the_store_and_the_api_accept_and_refuse_the_same_names(value: str) -> None:
    assert store_accepts(lambda v: check_name("name", v), value) == schema_accepts(Name, value)


@pytest.mark.parametrize("value", REFS)
def test_the_store_and_the_api_accept_and_refuse_the_same_references(value: str) -> None:
    assert store_accepts(lambda v: parse_ref(v, "vector"), value) == schema_accepts(Ref, value)


def test_a_refused_name_says_what_it_names_and_the_rule() -> None:
    with pytest.raises(ValueError, match=r"invalid variant name '\.\./x': use 1-64 letters"):
        check_name("variant name", "../x")


def test_refs_name_a_version_or_the_latest() -> None:
    assert parse_ref("honesty", "vector") == ("honesty", None)
    assert parse_ref("honesty@3", "vector") == ("honesty", 3)
    assert parse_ref("v1.2_x-y@12", "vector") == ("v1.2_x-y", 12)
    for bad in ("honesty@", "honesty@0", "honesty@-1", "honesty@x", "honesty@03", "a@1@2", "@3", ""):
        with pytest.raises(ValueError, match="invalid vector"):
            parse_ref(bad, "vector")


def test_only_numbered_directories_are_versions_and_only_valid_names_are_names(tmp_path: Path) -> None:
    for entry in ("2", "10", "1", ".tmp-abc", ".deleted-3-xyz", "07", "0", "name", "_tenants"):
        (tmp_path / entry).mkdir()
    (tmp_path / "3").write_text("a file, not a version")
    (tmp_path / ".lock").write_text("")
    assert complete_versions(tmp_path) == [1, 2, 10]
    assert [p.name for p in named_dirs(tmp_path)] == ["0", "07", "1", "10", "2", "name"]
    assert complete_versions(tmp_path / "missing") == [] and named_dirs(tmp_path / "missing") == []
