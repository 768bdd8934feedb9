"""The YAML reader's limits: an alias bomb, deep nesting, a recursive alias and an oversized file are
refused with a YamlLimitError naming the file, the line and the limit; ordinary aliases still work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tidegate.schemas.yamlreader as yamlreader
from tidegate.schemas.errors import YamlLimitError
from tidegate.schemas.files import load_file, load_text
from tidegate.schemas.shipyard import Shipyard
from tidegate.schemas.yamlreader import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, load_yaml, load_yaml_all


@pytest.fixture(autouse=True, params=["libyaml", "python"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every limit holds for both readers: libyaml (when installed) and the pure-Python one."""
    if request.param == "python":
        monkeypatch.setattr(yamlreader, "_LOADERS", (yamlreader._Yaml12Loader,))
        monkeypatch.setattr(yamlreader, "_LOADERS_11", (yamlreader.yaml.SafeLoader,))
    elif len(yamlreader._LOADERS) < 2:
        pytest.skip("PyYAML was built without libyaml")
    return str(request.param)


def alias_bomb(levels: int = 9) -> str:
    """~420 bytes that expand to 8**(levels+1) values (a billion laughs in YAML)."""
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 8) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_the_alias_that_passes_the_limit() -> None:
    bomb = alias_bomb()
    assert len(bomb) < 500
    with pytest.raises(YamlLimitError) as caught:
        load_text(bomb, "shipyard.yaml")
    [problem] = caught.value.problems
    assert problem.path == "shipyard.yaml"
    assert problem.line == 5  # a4 stands for 8**5 = 32 768 values: the first level past the limit
    assert f"more than {MAX_NODES} values" in problem.message and "aliases" in problem.message


def test_the_bomb_is_refused_by_load_yaml_and_load_file_too(tmp_path: Path) -> None:
    with pytest.raises(YamlLimitError):
        load_yaml(alias_bomb(), "command/config.yaml")
    path = tmp_path / "slo.yaml"
    path.write_text(alias_bomb())
    with pytest.raises(YamlLimitError) as caught:
        load_file(path)
    assert str(caught.value).startswith(f"{path}:5: ")


def test_aliases_within_the_limit_still_work() -> None:
    text = (
        "apiVersion: spec.keptn.sh/0.2.2\nkind: Shipyard\nmetadata: {name: s}\nspec:\n  stages:\n"
        "    - name: dev\n      sequences: &seqs\n        - name: delivery\n          tasks: [{name: deployment}]\n"
        "    - name: prod\n      sequences: *seqs\n"
    )
    shipyard = load_text(text, "shipyard.yaml").expect(Shipyard)
    assert [s.sequences[0].name for s in shipyard.spec.stages] == ["delivery", "delivery"]
    assert len(load_yaml(alias_bomb(3), "x.yaml")["a3"]) == 8  # 8**4 = 4 096 values: allowed


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    with pytest.raises(YamlLimitError) as caught:
        load_text("spec:\n  a: &a [1, *a]\n", "slo.yaml")
    assert caught.value.problems[0].line == 2
    assert "refers to the list or mapping that contains it" in caught.value.problems[0].message


def test_deep_nesting_is_refused_before_the_reader_recurses() -> None:
    deep = "[" * 50_000 + "]" * 50_000
    with pytest.raises(YamlLimitError) as caught:
        load_text(deep, "sli.yaml")
    assert f"deeper than {MAX_DEPTH} levels" in str(caught.value)


def test_an_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    big = "indicators:\n" + "".join(f"  i{n}: {'x' * 100}\n" for n in range(MAX_FILE_BYTES // 100))
    with pytest.raises(YamlLimitError) as caught:
        load_text(big, "sli.yaml")
    assert f"larger than {MAX_FILE_BYTES} bytes" in str(caught.value)
    path = tmp_path / "sli.yaml"
    path.write_text(big)
    with pytest.raises(YamlLimitError):
        load_file(path)


def test_tidegate_lint_refuses_the_bomb(tmp_path: Path, reader: str) -> None:
    if reader == "python":
        pytest.skip("the command reads with the installed reader")
    path = tmp_path / "shipyard.yaml"
    path.write_text(alias_bomb())
    tidegate = Path(sys.executable).with_name("tidegate")
    # the timeout only stops a hang from blocking the suite; the assertions are on the outcome
    linted = subprocess.run([str(tidegate), "lint", str(path)], capture_output=True, text=True, check=False, timeout=300)
    assert linted.returncode == 1
    assert f"{path}:5: the document has more than {MAX_NODES} values" in linted.stdout


@pytest.mark.parametrize("yaml11", [False, True])
def test_every_document_of_a_stream_is_read_within_limits_counted_over_the_stream(yaml11: bool) -> None:
    assert load_yaml_all("a: on\n---\n---\nb: 0755\n", "m.yaml", yaml11=yaml11) == (
        [{"a": True}, {"b": 0o755}] if yaml11 else [{"a": "on"}, {"b": "0755"}])
    with pytest.raises(YamlLimitError, match=r"m\.yaml:7: the document has more than"):
        load_yaml_all("kind: Service\n---\n" + alias_bomb(), "m.yaml", yaml11=yaml11)
    # Many small documents are one stream: their values count together.
    many = "---\n".join("[" + ",".join(["1"] * 99) + "]\n" for _ in range(MAX_NODES // 100 + 1))
    with pytest.raises(YamlLimitError, match=f"more than {MAX_NODES} values"):
        load_yaml_all(many, "m.yaml", yaml11=yaml11)
    with pytest.raises(YamlLimitError, match=f"larger than {MAX_FILE_BYTES} bytes"):
        load_yaml_all("a: 1\n---\n" + "#" * MAX_FILE_BYTES, "m.yaml", yaml11=yaml11)
