"""Issue 24: an agent's whole configuration as versions: recorded (agent.configured), told apart by the
report, explained by `agent-tracker configs`, handed back whole by `recommend` (--write, --as-file),
kept private by `export`.

Real TrackingService on real LMDB (test_report.Tracker), the real command line (bridge.cli.main).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from test_cli import cli
from test_report import CLAUDE, Tracker, expected_score

from bridge.protocol.params import MAX_DEFINITION_BYTES
from bridge.protocol.structure import InvalidParams, structure_params
from bridge.tracking.configs import canonical, describe_change, label, version_of

PROMPT_V1 = "You are the build agent.\nWrite tests first.\nKeep commits small.\nExplain each change.\n"
PROMPT_V2 = "You are the build agent.\nWrite the code first.\nKeep commits large.\nExplain nothing.\n"
V1 = {"name": "build", "mode": "primary", "prompt": PROMPT_V1, "temperature": 0.2, "tools": ["bash", "read"],
      "sent": {"temperature": 0.2, "topP": 1, "options": {}}, "configuredPermission": {"edit": "allow"},
      "options": {}}
V2 = {**V1, "prompt": PROMPT_V2, "temperature": 0.7, "tools": ["read", "bash", "webfetch"],
      "sent": {"temperature": 0.7, "topP": 1, "options": {}}}
VERSION_1, VERSION_2 = version_of(V1), version_of(V2)


# -- the rules: canonical form, version, diff -------------------------------------------------------

def test_the_version_is_the_hash_of_the_canonical_definition() -> None:
    reordered = {key: V1[key] for key in reversed(list(V1))}
    same = {**reordered, "prompt": "\n  " + PROMPT_V1 + "  \n\n", "tools": ["read", "bash", "read"],
            "model": "openai/gpt-5"}  # the model is the setup's own dimension, not the version's
    assert version_of(same) == VERSION_1
    assert len(VERSION_1) == 16 and int(VERSION_1, 16) >= 0
    assert version_of({**V1, "temperature": 0.3}) != VERSION_1
    assert canonical(same)["prompt"] == PROMPT_V1.strip()
    assert canonical(same)["tools"] == ["bash", "read"]
    assert label("build", VERSION_1) == "build@" + VERSION_1[:6]
    assert label("build", None) == "build@unknown"


def test_a_change_is_described_in_words() -> None:
    assert describe_change(V1, V2) == ("prompt: 3 lines changed; sent.temperature 0.2 → 0.7; temperature 0.2 → 0.7; "
                                       "tools: +webfetch")
    assert describe_change(None, V1) == "first version"
    assert describe_change(V1, {**V1, "prompt": PROMPT_V1 + "\n"}) == "no difference"
    assert describe_change({**V1, "mcp": ["github"]}, {**V1, "mcp": ["jira"], "steps": 20}) == \
        "mcp: +jira -github; steps none → 20"
    assert describe_change({**V1, "system": {"sha256": "a" * 64, "length": 900}},
                           {**V1, "system": {"sha256": "b" * 64, "length": 1020}}) == \
        "system prompt changed (900 → 1020 characters)"


def test_the_schema_states_the_limit() -> None:
    schema = json.loads((Path(__file__).parent.parent / "protocol" / "schema.json").read_text())
    assert schema["limits"]["maxDefinitionBytes"] == schema["$defs"]["AgentDefinition"]["maxBytes"] == \
        MAX_DEFINITION_BYTES == 262144


def test_a_definition_past_the_limit_is_refused_with_one_clear_error() -> None:
    params = {"sessionID": "s1", "agentId": "build", "definition": {"prompt": "x" * MAX_DEFINITION_BYTES}}
    with pytest.raises(InvalidParams) as refused:
        structure_params("agent.configured", params)
    assert str(refused.value) == (
        f"agent.configured: params.definition is {MAX_DEFINITION_BYTES + 13:,} bytes of JSON; the limit is "
        f"262,144 bytes (256 KiB): shorten the agent's prompt")
    with pytest.raises(InvalidParams, match="params.definition must be an object"):
        structure_params("agent.configured", {"sessionID": "s1", "agentId": "build", "definition": "prompt"})


# -- recorded, then reported ------------------------------------------------------------------------

def configured_session(t: Tracker, sid: str, project: Path, definition: dict[str, Any] | None,
                       grades: tuple[int, int] = (2, 2)) -> None:
    """A build session on claude: (its definition), one tool call, one commit graded by both."""
    t.send("session.created", {"sessionID": sid, "directory": str(project),
                               "agent": {"id": "build", "provider": CLAUDE[0], "model": CLAUDE[1]}})
    if definition is not None:
        t.send("agent.configured", {"sessionID": sid, "agentId": "build", "definition": definition})
    t.tool(sid)
    t.commit(sid)
    t.send("grade", {"sessionID": sid, "grade": grades[0], "grader": "agent"})
    t.send("grade", {"sessionID": sid, "grade": grades[1], "grader": "user"})
    t.send("session.deleted", {"sessionID": sid})


@pytest.fixture
def versions(tmp_path: Path) -> dict[str, Path]:
    """build on claude in one project: 3 sessions before versions were recorded, 3 with V1 (grades
    2/2), then 3 with V2 (grades 5/5)."""
    project = tmp_path / "shop"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\ndependencies = ["fastapi"]\n')
    t = Tracker(tmp_path / "db.lmdb")
    for n in range(3):
        configured_session(t, f"old{n}", project, None, (1, 1))
    t.at("2026-10-05T09:00:00.000Z")
    for n in range(3):
        configured_session(t, f"a{n}", project, V1)
    t.at("2026-10-12T09:00:00.000Z")
    for n in range(3):
        configured_session(t, f"b{n}", project, V2, (5, 5))
    t.close()
    return {"database": tmp_path / "db.lmdb", "project": project}


def report_json(capsys: pytest.CaptureFixture[str], database: Path, *extra: str) -> dict[str, Any]:
    code, out, err = cli(capsys, "report", "--database", str(database), "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_each_version_is_a_setup_of_its_own(capsys: pytest.CaptureFixture[str], versions: dict[str, Path]) -> None:
    report = report_json(capsys, versions["database"])
    rows = {row["configVersion"]: row for row in report["setups"]}
    assert set(rows) == {VERSION_1, VERSION_2, "unknown"}
    for version, grade in ((VERSION_1, 2), (VERSION_2, 5), ("unknown", 1)):
        row = rows[version]
        assert (row["agent"], row["sessions"], row["commits"], row["userGrades"], row["meanUserGrade"]) == \
            ("build", 3, 3, 3, grade)
        assert row["score"] == pytest.approx(expected_score([grade] * 3, [grade] * 3, 3, 3, 0, calls=6), abs=0.05)
    assert rows[VERSION_2]["rank"] == 1 and rows[VERSION_1]["rank"] == 2
    assert rows[VERSION_2]["configuration"] == canonical(V2)
    assert rows[VERSION_2]["configFirstSeen"].startswith("2026-10-12T09:00")
    assert rows[VERSION_2]["versionLabel"] == f"build@{VERSION_2[:6]} (2026-10-12)"
    assert rows["unknown"]["configuration"] is None and rows["unknown"]["versionLabel"] == "build@unknown"
    merged = report_json(capsys, versions["database"], "--by", "agent-model")["setups"]
    assert [(row["sessions"], row["commits"], row["userGrades"], row["configVersion"], row["versionLabel"])
            for row in merged] == [(9, 9, 9, None, None)]


def test_the_text_report_labels_versions_and_explains_unknown(capsys: pytest.CaptureFixture[str],
                                                              versions: dict[str, Path]) -> None:
    code, out, err = cli(capsys, "report", "--database", str(versions["database"]))
    assert code == 0, err
    assert f"build@{VERSION_2[:6]} (2026-10-12)" in out and f"build@{VERSION_1[:6]} (2026-10-05)" in out
    assert "build@unknown" in out
    assert "@unknown: sessions from before the plugin recorded configurations" in " ".join(out.split())


def test_the_configs_sub_database_holds_each_definition_once(versions: dict[str, Path]) -> None:
    from support.tracking import open_store

    store = open_store(versions["database"])
    try:
        with store.read() as view:
            records = dict(view.scan("configs"))
            sessions = {sid: view.get("sessions", sid) for sid in ("a0", "b2", "old0")}
            commit = next(record for _, record in view.scan("commits") if record["sessionID"] == "b2")
            grades = [record for _, record in view.scan("communication") if record["sessionID"] == "b2"]
    finally:
        store.close()
    assert set(records) == {VERSION_1, VERSION_2}
    second = records[VERSION_2]
    assert (second["agentId"], second["definition"], second["projects"]) == \
        ("build", canonical(V2), [str(versions["project"])])
    assert second["firstSeenAt"] < second["lastSeenAt"]  # seen by the 3 sessions, 1 s apart per event
    assert (sessions["a0"]["configVersion"], sessions["b2"]["configVersions"]) == (VERSION_1, {"build": VERSION_2})
    assert "configVersion" not in sessions["old0"]
    assert commit["configVersion"] == VERSION_2 and [g["configVersion"] for g in grades] == [VERSION_2] * 2
    assert PROMPT_V2.strip() not in json.dumps(sessions)  # the prompt is stored per version, never per session


def test_configs_lists_versions_newest_first_with_the_diff(capsys: pytest.CaptureFixture[str],
                                                           versions: dict[str, Path]) -> None:
    code, out, err = cli(capsys, "configs", "build", "--database", str(versions["database"]), "--json")
    assert code == 0, err
    listed = json.loads(out)["agents"]["build"]
    assert [(v["version"], v["sessions"], v["change"]) for v in listed] == [
        (VERSION_2, 3, "prompt: 3 lines changed; sent.temperature 0.2 → 0.7; temperature 0.2 → 0.7; tools: +webfetch"),
        (VERSION_1, 3, "first version"),
        ("unknown", 3, "sessions before the plugin recorded configurations (imported or migrated)")]
    assert listed[0]["score"] > listed[1]["score"] > listed[2]["score"]
    # each version's chance of being the best setup (issue 23's posterior), compared over all projects
    chances = [v["probabilityBest"] for v in listed]
    assert all(0 <= p <= 1 for p in chances) and sum(chances) <= 1 + 1e-9
    assert [v["pBest"] for v in listed] == chances
    code, out, err = cli(capsys, "configs", "build", "--database", str(versions["database"]))
    assert f"P(best) {chances[0]:.2f}" in out
    assert code == 0, err
    assert f"build@{VERSION_2[:6]}  first seen 2026-10-12 09:00" in out
    assert "changed: prompt: 3 lines changed; sent.temperature 0.2 → 0.7; temperature 0.2 → 0.7; tools: +webfetch" in out
    code, out, err = cli(capsys, "configs", "nobody", "--database", str(versions["database"]))
    assert code == 1 and "No configuration or session of agent 'nobody'" in err


# -- handed back -----------------------------------------------------------------------------------

def test_recommend_hands_back_the_whole_definition(capsys: pytest.CaptureFixture[str],
                                                   versions: dict[str, Path]) -> None:
    code, out, err = cli(capsys, "recommend", str(versions["project"]), "--database", str(versions["database"]),
                         "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["recommendation"]["configVersion"] == VERSION_2
    assert answer["config"] == {"model": "anthropic/claude-sonnet-4-5", "agent": {"build": {
        "model": "anthropic/claude-sonnet-4-5", "mode": "primary", "temperature": 0.7,
        "permission": {"edit": "allow"}, "prompt": PROMPT_V2.strip()}}}
    code, out, err = cli(capsys, "recommend", str(versions["project"]), "--database", str(versions["database"]),
                         "--as-file")
    assert code == 0, err
    assert ('---\nmodel: "anthropic/claude-sonnet-4-5"\nmode: "primary"\ntemperature: 0.7\n'
            'permission: {"edit":"allow"}\n---\nYou are the build agent.\n') in out


JSONC = """{
  // my settings
  "$schema": "https://opencode.ai/config.json",
  "agent": {
    "plan": {"model": "openai/gpt-5"}, // keep this one
    "build": {"temperature": 0.1,},
  },
  "theme": "dark",
}
"""


def test_recommend_write_edits_the_project_config_and_keeps_the_rest(capsys: pytest.CaptureFixture[str],
                                                                     versions: dict[str, Path]) -> None:
    from bridge.opencode.install import parse_jsonc

    config = versions["project"] / "opencode.jsonc"
    config.write_text(JSONC)
    code, out, err = cli(capsys, "recommend", str(versions["project"]), "--database", str(versions["database"]),
                         "--write")
    assert code == 0, err
    written = config.read_text()
    assert "// my settings" in written and "// keep this one" in written
    document = parse_jsonc(written)
    assert document["agent"]["build"]["prompt"] == PROMPT_V2.strip()
    assert document["agent"]["build"]["temperature"] == 0.7
    assert document["agent"]["plan"] == {"model": "openai/gpt-5"} and document["theme"] == "dark"
    backup = versions["project"] / "opencode.jsonc.agent-tracker.bak"
    assert backup.read_text() == JSONC
    assert f"Wrote agent build to {config} (the previous file is kept as {backup})." in " ".join(out.split())
    code, out, err = cli(capsys, "recommend", str(versions["project"]), "--database", str(versions["database"]),
                         "--write")
    assert code == 0 and "already holds this agent definition; nothing was changed" in out
    assert not (versions["project"] / "opencode.jsonc.agent-tracker-2.bak").exists()


def test_recommend_write_refuses_a_symlink_and_a_read_only_file(capsys: pytest.CaptureFixture[str],
                                                                versions: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "dotfiles.json"
    target.write_text("{}\n")
    link = versions["project"] / "opencode.json"
    link.symlink_to(target)
    code, out, err = cli(capsys, "recommend", str(versions["project"]), "--database", str(versions["database"]),
                         "--write")
    assert code == 1
    assert err.strip() == (f"agent-tracker: {link} is a symbolic link; agent-tracker writes only a regular file "
                           f"there (edit the file it points to yourself).\nhint: Nothing was changed.")  # the CLI contract
    assert target.read_text() == "{}\n" and sorted(p.name for p in versions["project"].iterdir()) == \
        ["opencode.json", "pyproject.toml"]
    link.unlink()
    link.write_text("{}\n")
    os.chmod(link, 0o444)
    code, out, err = cli(capsys, "recommend", str(versions["project"]), "--database", str(versions["database"]),
                         "--write")
    assert code == 1 and "is read-only (mode 0444)" in err and link.read_text() == "{}\n"
    os.chmod(link, 0o644)
    link.write_text('{"agent": "build"}\n')
    code, out, err = cli(capsys, "recommend", str(versions["project"]), "--database", str(versions["database"]),
                         "--write")
    assert code == 1 and 'its "agent" is not an object.' in err and "hint: Nothing was changed." in err
    assert link.read_text() == '{"agent": "build"}\n'


def test_recommend_write_as_file_writes_the_agent_markdown(capsys: pytest.CaptureFixture[str],
                                                           versions: dict[str, Path]) -> None:
    code, out, err = cli(capsys, "recommend", str(versions["project"]), "--database", str(versions["database"]),
                         "--write", "--as-file")
    assert code == 0, err
    written = (versions["project"] / ".opencode" / "agent" / "build.md").read_text()
    assert written == ('---\nmodel: "anthropic/claude-sonnet-4-5"\nmode: "primary"\ntemperature: 0.7\n'
                       f'permission: {{"edit":"allow"}}\n---\n{PROMPT_V2.strip()}\n')


# -- private by default ------------------------------------------------------------------------------

def test_export_leaves_prompts_out_unless_asked(capsys: pytest.CaptureFixture[str], versions: dict[str, Path]) -> None:
    import hashlib

    code, out, err = cli(capsys, "export", "--database", str(versions["database"]))
    assert code == 0, err
    exported = json.loads(out)["tables"]
    assert "You are the build agent" not in out
    definition = {record["version"]: record for record in exported["configs"]}[VERSION_2]["definition"]
    assert definition["promptSha256"] == hashlib.sha256(PROMPT_V2.strip().encode()).hexdigest()
    assert definition["promptLength"] == len(PROMPT_V2.strip()) and "prompt" not in definition
    assert {row.get("configVersion") for row in exported["sessions"]} == {VERSION_1, VERSION_2, None}
    code, out, err = cli(capsys, "export", "--database", str(versions["database"]), "--include-prompts")
    assert code == 0, err
    with_prompts = {record["version"]: record for record in json.loads(out)["tables"]["configs"]}
    assert with_prompts[VERSION_2]["definition"]["prompt"] == PROMPT_V2.strip()


def test_a_workflow_is_the_root_version_plus_its_subagents_versions(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    explore = {"name": "explore", "mode": "subagent", "prompt": "Find things.", "tools": ["grep", "read"]}
    t = Tracker(tmp_path / "db.lmdb")
    t.send("session.created", {"sessionID": "root", "directory": str(tmp_path),
                               "agent": {"id": "build", "provider": CLAUDE[0], "model": CLAUDE[1]}})
    t.send("agent.configured", {"sessionID": "root", "agentId": "build", "definition": V1})
    t.send("session.created", {"sessionID": "child", "directory": str(tmp_path), "parentID": "root",
                               "agent": {"id": "explore", "provider": CLAUDE[0], "model": "claude-haiku-4-5"}})
    t.send("agent.configured", {"sessionID": "child", "agentId": "explore", "definition": explore})
    t.tool("child", "grep")
    t.commit("child")
    t.close()
    rows = report_json(capsys, tmp_path / "db.lmdb", "--min-sessions", "1")["setups"]
    assert [(row["agent"], row["configVersion"], row["sessions"], row["commits"]) for row in rows] == \
        [("build", VERSION_1, 1, 1)]
    assert [(sub["agent"], sub["configVersions"], sub["commits"]) for sub in rows[0]["subagents"]] == \
        [("explore", [version_of(explore)], 1)]
    merged = report_json(capsys, tmp_path / "db.lmdb", "--min-sessions", "1", "--by", "agent-model")["setups"]
    assert "configVersions" not in merged[0]["subagents"][0]


def test_the_html_report_says_what_changed_and_never_shows_a_prompt(capsys: pytest.CaptureFixture[str],
                                                                   versions: dict[str, Path], tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    code, out, err = cli(capsys, "report", "--database", str(versions["database"]), "--html", str(page))
    assert code == 0, err
    text = page.read_text()
    assert "Write the code first" not in text and "Write tests first" not in text
    assert (f'<li data-version="{VERSION_2}"><code>build@{VERSION_2[:6]} (2026-10-12)</code>: prompt: 3 lines changed; '
            f"sent.temperature 0.2 → 0.7; temperature 0.2 → 0.7; tools: +webfetch</li>") in text
    assert f'<li data-version="{VERSION_1}"><code>build@{VERSION_1[:6]} (2026-10-05)</code>: first version</li>' in text
    assert '<li data-version="unknown"><code>build@unknown</code>: sessions from before configurations were recorded' \
        in text
