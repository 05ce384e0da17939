"""YAML in with positions, YAML out that Kubernetes' YAML 1.1 reader reads back as written."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from gpuplane.model.errors import ManifestError
from gpuplane.model.yamlio import dump_documents, load_text, needs_quotes


@pytest.mark.parametrize("text", ["y", "Y", "yes", "on", "Off", "NO", "true", "null", "~", "1e3", "1E3", "010",
                                  "0x1F", "1_000", "1:20", ".5", "2026-01-02", "-1", "+1", ".inf", "", "=", "<<"])
def test_ambiguous_strings_need_quotes(text: str) -> None:
    assert needs_quotes(text)


@pytest.mark.parametrize("text", ["gpu", "team-a", "a100", "6214e", "v1", "nvidia.com/gpu", "e", "1.2.3"])
def test_plain_strings_need_no_quotes(text: str) -> None:
    assert not needs_quotes(text)


def test_dump_round_trips_through_a_yaml_11_reader() -> None:
    labels = {"a": "on", "b": "y", "c": "1e3", "d": "0755", "e": "plain", "f": "6214e9"}
    text = dump_documents([{"metadata": {"labels": labels}}])
    reader = YAML(typ="safe", pure=True)
    reader.version = (1, 1)
    assert reader.load(text)["metadata"]["labels"] == labels


def test_load_text_keeps_positions() -> None:
    documents = load_text("kind: A\nspec:\n  items:\n  - name: x\n    value: 3\n", "f.yaml")
    location = documents[0].locate(("spec", "items", 0, "value"))
    assert (location.line, location.column) == (5, 5)
    assert location.field == "spec.items[0].value"


def test_load_text_reads_yaml_11_booleans() -> None:
    assert load_text("a: on\nb: 010\n", "f.yaml")[0].data == {"a": True, "b": 8}


def test_syntax_error_names_file_and_line() -> None:
    with pytest.raises(ManifestError) as raised:
        load_text("a: 1\nb: [1, 2\n", "broken.yaml")
    assert raised.value.location.source == "broken.yaml"
    assert raised.value.location.line is not None


def test_empty_documents_are_dropped(tmp_path: Path) -> None:
    assert load_text("---\n---\na: 1\n---\n", "f.yaml")[0].data == {"a": 1}
