"""The report's filters beyond --stack/--since: --until, --agent, --model, --project by folder name,
and what a filter that matches nothing says. Real TrackingService on real LMDB (test_report.Tracker)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from test_report import CLAUDE, GPT, Tracker, make_projects, populate, rows_by_setup

from bridge.report.build import build_report
from bridge.report.filters import Filters, ProjectFilter, model_matches, normalise_until
from bridge.report.model import ReportError
from bridge.report.render import render_text


@pytest.fixture
def reference(tmp_path: Path):
    tracker, shop, web = populate(tmp_path)
    yield tracker, shop, web
    tracker.close()


def setups(tracker: Tracker, **options: Any) -> set[tuple[str, str, str]]:
    return set(rows_by_setup(build_report(tracker.store, **options)))


def test_agent_and_model_filters(reference) -> None:
    tracker, *_ = reference
    everything = setups(tracker)
    assert setups(tracker, agent="build") == {s for s in everything if s[0] == "build"}
    assert setups(tracker, agent="Build") == setups(tracker, agent="build")
    gpt = {("build", "openai/gpt-5", "python/fastapi")}
    assert setups(tracker, model="openai/gpt-5") == setups(tracker, model="GPT-5") == gpt
    assert setups(tracker, model="anthropic") == {s for s in everything if s[1].startswith("anthropic/")}
    assert setups(tracker, model="gpt") == set()  # never a substring
    assert setups(tracker, agent="general", model="gpt-5") == set()
    report = build_report(tracker.store, model="gpt-5")
    (row,) = report.setups
    assert (row.sessions, row.commits, row.bugs) == (3, 2, 1)
    assert report.totals["grades"] == 4


def test_model_matches() -> None:
    assert model_matches("openai/gpt-5", "gpt-5") and model_matches("openai/gpt-5", "openai")
    assert model_matches("openai/gpt-5", "OpenAI/GPT-5") and not model_matches("openai/gpt-5", "gpt")
    assert model_matches("unknown-model", "unknown-model") and not model_matches("unknown-model", "unknown")


def test_project_by_folder_name_never_resolves_against_the_current_folder(
        reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tracker, shop, web = reference
    # A folder named like the project under the current folder must not be what "shop" means.
    decoy = tmp_path / "elsewhere"
    (decoy / "shop").mkdir(parents=True)
    monkeypatch.chdir(decoy)
    by_name = setups(tracker, project="shop")
    assert by_name == setups(tracker, project=str(shop)) == {s for s in setups(tracker) if s[2] == "python/fastapi"}
    assert setups(tracker, project="./shop") == set()  # a path: resolved against the current folder
    assert ProjectFilter.parse("shop") == ProjectFilter("shop", name="shop")
    assert ProjectFilter.parse("./shop") == ProjectFilter("./shop", path=str(decoy / "shop"))
    assert ProjectFilter.parse("~/x") == ProjectFilter("~/x", path=str(Path.home() / "x"))
    assert build_report(tracker.store, project="shop").filters["project"] == "shop"


def test_until_and_the_time_window(tmp_path: Path) -> None:
    shop, _ = make_projects(tmp_path)
    t = Tracker(tmp_path / "db.lmdb")
    for day, model in ((1, CLAUDE), (2, GPT), (3, CLAUDE)):
        t.at(f"2026-10-0{day}T12:00:00.000Z")
        t.session(f"s{day}", shop, "build", model, commits=[(2, 2)])
    t.flush()
    assert build_report(t.store, until="2026-10-02").totals["sessions"] == 2  # the whole day counts
    assert build_report(t.store, until="2026-10-01T12:00:00Z").totals["sessions"] == 1  # the instant counts
    assert build_report(t.store, until="2026-10-01T11:59:59Z").totals["sessions"] == 0
    report = build_report(t.store, since="2026-10-02", until="2026-10-02")
    assert report.totals == {"sessions": 1, "subagentSessions": 0, "commits": 1, "grades": 2, "bugs": 0, "setups": 1,
                             "rankedSetups": 0}
    assert report.filters["until"] == "2026-10-02"
    with pytest.raises(ReportError, match="--since 2026-10-03 is after --until 2026-10-02"):
        build_report(t.store, since="2026-10-03", until="2026-10-02")
    t.close()


def test_until_forms() -> None:
    now = datetime(2026, 11, 26, 5, 0, tzinfo=timezone.utc)
    assert normalise_until("2026-10-01") == ("2026-10-01", "2026-10-02")
    assert normalise_until("7d", now) == ("2026-11-19", "2026-11-20")
    assert normalise_until("2026-10-01T12:00:00+02:00") == ("2026-10-01T10:00:00.000Z", "2026-10-01T10:00:00.001Z")
    for bad in ("tomorrow", "2026-02-30", "7 days"):
        with pytest.raises(ReportError, match="--until"):
            normalise_until(bad)
    assert Filters.parse().window() is None
    assert Filters.parse(since="2026-10-01").window() == ("2026-10-01", "\U0010ffff")


def test_a_filter_that_matches_nothing_lists_the_known_values(reference) -> None:
    tracker, shop, web = reference
    report = build_report(tracker.store, project="shop-apo", agent="bulid")
    assert report.setups == []
    assert report.known == {"projects": sorted([str(shop), str(web)]), "agents": ["build", "general", "plan"]}
    text = " ".join(render_text(report, 100).split())
    assert ("No sessions match project=shop-apo, agent=bulid. Known projects: shop "
            f"({shop}), web ({web}). Known agents: build, general, plan.") in text
    report = build_report(tracker.store, stack="rust", model="gpt-6", since="2027-01-01")
    assert report.known is not None and report.known["stacks"] == ["python/fastapi", "typescript/react"]
    assert report.known["models"] == ["anthropic/claude-opus-4-1", "anthropic/claude-sonnet-4-5",
                                      "ollama/qwen3-coder:30b", "openai/gpt-5"]
    assert report.known["sessionsFrom"] == "2026-10-01T09:00:01.000Z"
    text = " ".join(render_text(report, 200).split())
    assert ("Known stacks: python/fastapi, typescript/react. Known models: anthropic/claude-opus-4-1, "
            "anthropic/claude-sonnet-4-5, ollama/qwen3-coder:30b, openai/gpt-5. Sessions were recorded from "
            "2026-10-01T09:00:01.000Z to ") in text
    # Filters that match: nothing to list.
    assert build_report(tracker.store, stack="python").known is None
