"""Reading config files: YAML shapes that are refused, and where every value came from. No database."""

from __future__ import annotations

from pathlib import Path

import pytest

from relia.config import documents
from relia.config.documents import (
    MAX_DEPTH,
    MAX_NODES,
    ConfigInvalid,
    ConfigProblem,
    SourceFile,
    parse,
    read_paths,
)


def parse_one(content: str, name: str = "team.yaml"):  # type: ignore[no-untyped-def]
    return parse([SourceFile(name=name, content=content)])


def refusal(content: str, name: str = "team.yaml") -> list[ConfigProblem]:
    with pytest.raises(ConfigInvalid) as raised:
        parse_one(content, name)
    assert raised.value.status == 422
    assert str(raised.value).startswith("Nothing was changed.")
    return raised.value.problems


def test_each_document_keeps_its_file_number_and_the_line_of_every_value():
    content = (
        "# a comment first\n"  # 1
        "kind: Team\n"  # 2
        "spec:\n"  # 3
        "  name: Payments\n"  # 4
        "  members:\n"  # 5
        "    - user: ada\n"  # 6
        "      role: manager\n"  # 7
        "    - {user: bob}\n"  # 8
        "---\n"  # 9
        "kind: Service\n"  # 10
        "metadata: {name: checkout}\n"  # 11
    )
    first, second = parse_one(content, "teams/payments.yaml")

    assert (first.file, first.index) == ("teams/payments.yaml", 1)
    assert first.body == {
        "kind": "Team",
        "spec": {"name": "Payments", "members": [{"user": "ada", "role": "manager"}, {"user": "bob"}]},
    }
    assert first.line_of(("kind",)) == 2
    assert first.line_of(("spec", "name")) == 4
    assert first.line_of(("spec", "members", 0, "role")) == 7
    assert first.line_of(("spec", "members", 1, "user")) == 8
    # A missing field points at the closest value that is there.
    assert first.line_of(("spec", "members", 1, "role")) == 8
    assert first.line_of(("spec", "description")) == 4

    assert (second.file, second.index) == ("teams/payments.yaml", 2)
    assert second.line_of(("metadata", "name")) == 11

    problem = second.problem("refers to Team 'x'", ("metadata", "name"), kind="Service", name="checkout")
    assert problem == ConfigProblem(
        file="teams/payments.yaml",
        document=2,
        message="refers to Team 'x'",
        path="metadata.name",
        line=11,
        kind="Service",
        name="checkout",
    )
    assert str(problem) == (
        "teams/payments.yaml:11, document 2, Service/checkout, field metadata.name: refers to Team 'x'"
    )


def test_empty_documents_are_skipped_but_still_counted():
    content = "---\n# only a comment\n---\nkind: Team\n---\n---\nnull\n---\n~\n---\nkind: Service\n---\n"
    parsed = parse_one(content)
    assert [(document.index, document.body) for document in parsed] == [
        (2, {"kind": "Team"}),
        (6, {"kind": "Service"}),
    ]
    assert parse_one("") == []
    assert parse_one("# nothing but comments\n") == []


def test_a_key_written_twice_is_refused_with_its_line():
    (problem,) = refusal("kind: Team\nspec:\n  name: A\n  name: B\n")
    assert (problem.file, problem.document, problem.line) == ("team.yaml", 1, 4)
    assert problem.message == "the key 'name' appears twice"


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("kind: Team\n1: one\n", 2, "mapping keys must be strings, not 1"),
        ("kind: Team\ntrue: yes\n", 2, "mapping keys must be strings, not True"),
        ("kind: Team\nnull: x\n", 2, "mapping keys must be strings, not None"),
        ("kind: Team\n? [a, b]\n: x\n", 2, "mapping keys must be plain strings (no merge keys)"),
        ("kind: Team\n? {a: b}\n: x\n", 2, "mapping keys must be plain strings (no merge keys)"),
    ],
)
def test_keys_that_are_not_strings_are_refused(content, line, message):
    (problem,) = refusal(content)
    assert (problem.document, problem.line, problem.message) == (1, line, message)


def test_merge_keys_are_refused():
    content = (
        "defaults: &defaults\n"  # 1
        "  tier: 2\n"  # 2
        "---\n"  # 3
        "spec: &base {tier: 1}\n"  # 4
        "other:\n"  # 5
        "  <<: *base\n"  # 6
        "  name: X\n"  # 7
    )
    (problem,) = refusal(content)
    assert (problem.document, problem.line) == (2, 6)
    assert "no merge keys" in problem.message


def test_plain_aliases_are_expanded():
    (parsed,) = parse_one("links: &links [{title: Runbook, url: 'https://x.example'}]\nmore: *links\n")
    assert parsed.body["more"] == [{"title": "Runbook", "url": "https://x.example"}]
    assert parsed.line_of(("more", 0, "title")) == 1


def billion_laughs(levels: int = 9) -> str:
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        aliases = ", ".join([f"*lol{level - 1}"] * 9)
        lines.append(f"lol{level}: &lol{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused():
    bomb = billion_laughs()
    assert MAX_NODES < 9**9  # expanded, this document would hold 387 million values
    (problem,) = refusal("kind: Team\n---\n" + bomb, "bomb.yaml")
    assert (problem.file, problem.document) == ("bomb.yaml", 2)
    assert problem.line is not None
    assert "aliases expand to too many values" in problem.message


def test_many_small_alias_bombs_share_one_budget():
    # Each document alone expands to less than MAX_NODES values; a budget per document would let a large
    # request of such documents cost hours. The budget is shared, so the parse stops at the first one over.
    bomb = billion_laughs(5)  # about 66,000 values each
    content = "---\n".join([bomb] * 20)
    problems = refusal(content, "bombs.yaml")
    assert len(problems) == 1
    assert problems[0].document is not None and problems[0].document <= 4
    assert "aliases expand to too many values" in problems[0].message


def test_an_alias_inside_itself_is_refused():
    (problem,) = refusal("kind: Team\nspec: &spec\n  name: X\n  again: *spec\n")
    assert (problem.document, problem.line) == (1, 3)
    assert "an alias inside itself" in problem.message


def test_deep_nesting_is_refused_without_crashing():
    (problem,) = refusal("spec: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n")
    assert problem.document == 1
    assert f"nested more than {MAX_DEPTH} levels deep" in problem.message
    # Deeper still, the YAML library itself would recurse too far.
    (problem,) = refusal("spec: " + "[" * 5000 + "]" * 5000 + "\n")
    assert problem.message == "not valid YAML: nested too deeply"


def test_only_what_aliases_add_counts_against_the_budget(monkeypatch):
    monkeypatch.setattr(documents, "MAX_NODES", 10)
    # 2,000 values written out: more than MAX_NODES, but each takes a few characters of the file.
    items = "".join(f"  - {index}\n" for index in range(2000))
    (parsed,) = parse_one("values:\n" + items)
    assert len(parsed.body["values"]) == 2000
    # The same number of values from a short text is refused.
    (problem,) = refusal(
        "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    )
    assert (problem.document, problem.message) == (1, "aliases expand to too many values")


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("kind: Team\nspec: [a, b\n", 3, "not valid YAML: expected ',' or ']'"),
        ("kind: Team\n  spec: x\n", 2, "not valid YAML: mapping values are not allowed here"),
        ("kind: Team\nspec: {name: 'x}\n", 3, "not valid YAML: found unexpected end of stream"),
    ],
)
def test_invalid_yaml_names_the_file_and_line(content, line, message):
    (problem,) = refusal(content)
    assert (problem.file, problem.line) == ("team.yaml", line)
    assert problem.message.startswith(message)
    assert str(problem).startswith(f"team.yaml:{line}: not valid YAML")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!custom x", "not valid YAML: could not determine a constructor for the tag '!custom'"),
        ("!!python/name:os.system x", "not valid YAML: could not determine a constructor for the tag"),
        ("!!python/object/apply:os.system ['echo hi']", "unsupported tag 'tag:yaml.org,2002:python/object"),
        ("!Ref {a: b}", "unsupported tag '!Ref'"),
        ("!!set {a, b}", "unsupported tag 'tag:yaml.org,2002:set'"),
    ],
)
def test_unknown_tags_are_refused_with_their_line(value, message):
    (problem,) = refusal(f"kind: Team\nspec:\n  name: {value}\n")
    assert (problem.document, problem.line) == (1, 3)
    assert problem.message.startswith(message)
    assert "\n" not in problem.message


def test_standard_tags_are_read():
    (parsed,) = parse_one("a: !!str 1\nb: !!map {c: !!int '2'}\nd: !!seq [x]\n")
    assert parsed.body == {"a": "1", "b": {"c": 2}, "d": ["x"]}


def test_every_file_with_a_problem_is_reported_together():
    with pytest.raises(ConfigInvalid) as raised:
        parse(
            [
                SourceFile("a.yaml", "x: 1\nx: 2\n"),
                SourceFile("b.yaml", "kind: Team\n"),
                SourceFile("c.yaml", "ok: 1\n---\n[unclosed\n"),
            ]
        )
    assert [(problem.file, problem.line) for problem in raised.value.problems] == [
        ("a.yaml", 2),
        ("c.yaml", 4),
    ]
    assert str(raised.value).startswith("Nothing was changed. 2 problems; the first: a.yaml:2, document 1")


def test_read_paths_takes_files_and_every_yaml_file_under_a_folder_in_sorted_order(tmp_path: Path):
    folder = tmp_path / "config"
    (folder / "teams").mkdir(parents=True)
    for relative in ["services.yml", "b.yaml", "teams/z.yaml", "teams/a.yml", "a.yaml"]:
        (folder / relative).write_text(f"name: {relative}\n", encoding="utf-8")
    for ignored in ["README.md", "notes.txt", "backup.yaml.bak", "teams/.keep"]:
        (folder / ignored).write_text("not config\n", encoding="utf-8")
    single = tmp_path / "extra.yaml"
    single.write_text("name: extra\n", encoding="utf-8")

    files = read_paths([folder, single])

    assert [Path(item.name).relative_to(tmp_path).as_posix() for item in files] == [
        "config/a.yaml",
        "config/b.yaml",
        "config/services.yml",
        "config/teams/a.yml",
        "config/teams/z.yaml",
        "extra.yaml",
    ]
    assert files[0].content == "name: a.yaml\n"


def test_read_paths_names_every_missing_or_unreadable_path(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello", encoding="utf-8")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    good = tmp_path / "good.yaml"
    good.write_text("name: ok\n", encoding="utf-8")

    with pytest.raises(ConfigInvalid) as raised:
        read_paths([tmp_path / "missing.yaml", empty, binary, good, tmp_path / "nowhere"])

    assert [(problem.file, problem.message) for problem in raised.value.problems] == [
        (str(tmp_path / "missing.yaml"), "no such file or folder"),
        (str(empty), "no .yaml or .yml files here"),
        (str(binary), "not UTF-8 text"),
        (str(tmp_path / "nowhere"), "no such file or folder"),
    ]
    assert all(problem.document is None for problem in raised.value.problems)
