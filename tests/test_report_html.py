"""`agent-tracker report --html FILE` in a real browser: Debian's headless Chromium, driven by Selenium.

The page is written by the installed command and checked against `report --json` of the same
database: every setup row, the recommendations, the agents; a header click sorts; nothing is
fetched (no resource entries). A screenshot is saved under the test's temp dir (kept by pytest:
the latest three runs, /tmp/pytest-of-$USER/pytest-current/...).

Chromium and chromedriver come from Debian (`apt-get install chromium chromium-driver`), which
.ci/run installs: without them the test is skipped here and fails in CI (CI is set there).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest
from test_cli import run_script
from test_report import populate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# The flags this machine's closed network needs (no background connections), headless, as root.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1500,2200")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser test (.ci/run installs chromium and chromium-driver).")
    pytest.skip(f"{reason} (apt-get install chromium chromium-driver; CI installs them)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        _unavailable("Debian's chromium and chromium-driver are not installed")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install -e '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def written(tmp_path: Path, isolated_home: Path) -> tuple[Path, dict[str, Any]]:
    """The reference database; its page and its --json, both from the installed command."""
    tracker, _, _ = populate(tmp_path)
    tracker.close()
    database = str(tmp_path / "db.lmdb")
    page = tmp_path / "out" / "report.html"
    page.parent.mkdir()  # the folder must exist (issue 26: a typo is not a new tree of folders)
    result = run_script(isolated_home, "report", "--database", database, "--html", str(page))
    assert result.returncode == 0, result.stderr
    assert f"HTML report: {page}" in result.stdout
    result = run_script(isolated_home, "report", "--database", database, "--json")
    assert result.returncode == 0, result.stderr
    return page, json.loads(result.stdout)


def cells(row: Any) -> dict[str, str]:
    return {cell.get_attribute("data-key"): cell.text for cell in row.find_elements("css selector", "td")}


def test_the_page_is_one_self_contained_file(written: tuple[Path, dict[str, Any]]) -> None:
    page, _ = written
    text = page.read_text(encoding="utf-8")
    # Nothing to fetch: every src/href is a fragment, and the policy forbids other sources anyway.
    assert re.findall(r'\b(?:src|href)\s*=\s*"(?!#)', text) == []
    assert "default-src 'none'" in text and "<svg" in text and "<script>" in text


def test_the_browser_shows_what_report_json_says_and_sorts(browser: Any, written: tuple[Path, dict[str, Any]],
                                                           tmp_path: Path) -> None:
    page, wire = written
    browser.get(page.as_uri())
    assert browser.title == "agent-tracker report"

    rows = browser.find_elements("css selector", "#setups tbody tr")
    expected = [{"rank": str(s["rank"]) if s["ranked"] else "-", "stack": s["stack"], "agent": s["agent"],
                 "model": s["model"], "sessions": str(s["sessions"]), "commits": str(s["commits"]),
                 "score": f"{s['score']:.1f}" + ("" if s["ranked"] else "*")} for s in wire["setups"]]
    assert len(expected) == 5
    assert [{key: cells(row)[key] for key in expected[0]} for row in rows] == expected
    assert [row.get_attribute("class") for row in rows] == ["best", "ranked", "unranked", "best", "ranked"]

    shown = [item.text for item in browser.find_elements("css selector", "#recommendations li")]
    assert shown == [rec["text"] for rec in wire["recommendations"]]
    assert shown[0].startswith("For python/fastapi projects, use agent build with anthropic/claude-sonnet-4-5")

    agents = {cells(row)["agentId"]: cells(row) for row in browser.find_elements("css selector", "#agents tbody tr")}
    for sheet in wire["agents"]:
        assert agents[sheet["agentId"]]["skillPoints"] == f"{sheet['skillPoints']:g}"
        assert agents[sheet["agentId"]]["communicationScore"] == f"{sheet['communicationScore']:g}"
    assert set(agents) == {"build", "plan", "general"}

    chart = browser.find_element("css selector", "svg")
    assert chart.size["width"] > 300 and chart.size["height"] > 150

    def column(key: str) -> list[str]:
        return [cells(row)[key] for row in browser.find_elements("css selector", "#setups tbody tr")]

    score_header = browser.find_element("css selector", '#setups th[data-key="score"]')
    score_header.find_element("css selector", "button").click()
    assert score_header.get_attribute("aria-sort") == "ascending"
    scores = sorted(s["score"] for s in wire["setups"])
    assert [float(value.rstrip("*")) for value in column("score")] == [round(s, 1) for s in scores]
    score_header.find_element("css selector", "button").click()
    assert score_header.get_attribute("aria-sort") == "descending"
    assert [float(value.rstrip("*")) for value in column("score")] == [round(s, 1) for s in reversed(scores)]
    browser.find_element("css selector", '#setups th[data-key="model"] button').click()
    assert column("model") == sorted(s["model"] for s in wire["setups"])
    assert score_header.get_attribute("aria-sort") is None

    # Nothing was fetched, and the script ran without an error.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []

    shot = tmp_path / "report-sorted-by-model.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    print(f"screenshot: {shot}")


def test_the_page_is_never_written_over_the_database(tmp_path: Path, isolated_home: Path) -> None:
    tracker, _, _ = populate(tmp_path)
    tracker.close()
    database = tmp_path / "db.lmdb"
    before = database.read_bytes()
    page = tmp_path / "report.html"
    page.symlink_to(database)
    result = run_script(isolated_home, "report", "--database", str(database), "--html", str(page))
    assert result.returncode == 2
    assert result.stderr == (f"agent-tracker: Refusing to write the HTML report to {page}: it is the agent-tracker "
                             f"database {database}; only LMDB may write that file.\nhint: Choose another file.\n")
    assert database.read_bytes() == before


def test_a_page_whose_filters_match_nothing_says_so(browser: Any, tmp_path: Path, isolated_home: Path) -> None:
    tracker, _, _ = populate(tmp_path)
    tracker.close()
    page = tmp_path / "none.html"
    result = run_script(isolated_home, "report", "--database", str(tmp_path / "db.lmdb"), "--agent", "nobody",
                        "--html", str(page))
    assert result.returncode == 0, result.stderr
    browser.get(page.as_uri())
    text = browser.find_element("id", "no-match").text
    assert text == "No sessions match agent=nobody. Known agents: build, general, plan."
    assert browser.find_elements("css selector", "#setups") == []


def test_the_setups_table_fits_a_1280_px_window(browser: Any, written: tuple[Path, dict[str, Any]],
                                                tmp_path: Path) -> None:
    """Issue 26, item 3: at 1280 px the whole setups table is on screen (the score right after the
    sessions, as in the terminal), nothing scrolls sideways, and the header's time is readable."""
    page, wire = written
    browser.set_window_size(1280, 900)
    try:
        browser.get(page.as_uri())
        inner = browser.execute_script("return window.innerWidth")
        assert inner <= 1280
        right = browser.execute_script("return document.querySelector('#setups').getBoundingClientRect().right")
        widths = browser.execute_script("return Array.from(document.querySelectorAll('#setups th')).map(t => t.dataset.key + ':' + Math.round(t.getBoundingClientRect().width))")
        assert right <= inner, (right, inner, ' '.join(widths))
        assert browser.execute_script("return document.documentElement.scrollWidth") <= inner
        headers = [th.get_attribute("data-key") for th in browser.find_elements("css selector", "#setups th")]
        assert headers[:7] == ["rank", "stack", "agent", "model", "sessions", "probabilityBest", "score"]
        shown = browser.find_element("css selector", "time")
        assert shown.get_attribute("datetime") == wire["generatedAt"] or shown.get_attribute("datetime")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", shown.text), shown.text
        shot = tmp_path / "report-1280.png"
        assert browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
    finally:
        browser.set_window_size(1500, 2200)
