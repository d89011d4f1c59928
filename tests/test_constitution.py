from pathlib import Path

import pytest
import yaml

from bastion.constitution import bundled_names, load, parse
from bastion.errors import ConstitutionError


def test_bundled_constitutions_validate_and_pair_every_restricted_category():
    assert {"general", "cbrn"} <= set(bundled_names())
    for name in ("general", "cbrn"):
        c = load(name)
        paired = {r for p in c.permitted for r in p.pairs_with}
        assert set(c.category_ids) == paired, f"{name}: restricted categories without permitted neighbours"
        assert any(cat.input_only for cat in c.restricted), "jailbreak is input-only"


def test_general_covers_the_llama_guard_hazard_taxonomy():
    codes = {cat.external.get("llama_guard_3") for cat in load("general").restricted}
    assert {f"S{i}" for i in range(1, 15)} <= codes


def test_content_hash_ignores_formatting_but_not_content():
    text = Path(str(load.__globals__["resolve"]("general"))).read_text()
    data = yaml.safe_load(text)
    reformatted = yaml.safe_dump(data, sort_keys=True, width=60)
    assert parse(reformatted, "x").content_hash() == parse(text, "y").content_hash()
    data["restricted"][0]["description"] += " More."
    assert parse(yaml.safe_dump(data), "z").content_hash() != parse(text, "y").content_hash()


def test_error_names_file_field_path_and_category_id(tmp_path):
    data = yaml.safe_load(Path(str(load.__globals__["resolve"]("cbrn"))).read_text())
    data["restricted"][1]["title"] = ""
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConstitutionError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message and "restricted[1] (id 'biological_weapons').title" in message


def test_malformed_yaml_reports_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nrestricted: [\n  - id: a\n")
    with pytest.raises(ConstitutionError, match=r"line \d+"):
        load(path)


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d["restricted"].append(dict(d["restricted"][0])), "repeated"),
    (lambda d: d["permitted"][0].update(pairs_with=["nope"]), "unknown restricted ids"),
    (lambda d: d["restricted"][0].update(id="Bad Id"), "not a valid id"),
    (lambda d: d.update(surprise=1), "surprise"),
])
def test_semantic_errors(tmp_path, mutate, needle):
    data = yaml.safe_load(Path(str(load.__globals__["resolve"]("cbrn"))).read_text())
    mutate(data)
    with pytest.raises(ConstitutionError, match=needle):
        parse(yaml.safe_dump(data), "c.yaml")


def test_unknown_name_lists_bundled():
    with pytest.raises(ConstitutionError, match="general"):
        load("nonexistent")
