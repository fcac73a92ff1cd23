"""Stack classification (bridge/tracking/stack.py) and how the tracker and the report use it."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bridge.config import BridgeConfig, MiB, ScoringRules
from bridge.report.build import build_report
from bridge.store import Store
from bridge.tracking.service import TrackingService
from bridge.tracking.stack import (
    FINGERPRINT_FILES,
    Stack,
    classify,
    declared_stack,
    fingerprint,
)


def project(tmp_path: Path, files: dict[str, str], name: str = "project") -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, text in files.items():
        (folder / file_name).write_text(text, encoding="utf-8")
    return folder


# Every manifest type: (files, language, framework, sources).
CASES = [
    ({"pyproject.toml": '[project]\ndependencies = ["fastapi>=0.110", "uvicorn"]\n'}, "python", "fastapi", ("pyproject.toml",)),
    ({"pyproject.toml": '[tool.poetry.dependencies]\nDjango = "^5.0"\n'}, "python", "django", ("pyproject.toml",)),
    ({"pyproject.toml": 'dependencies = ["flask"]\n'}, "python", "flask", ("pyproject.toml",)),
    ({"pyproject.toml": 'dependencies = ["torch>=2", "numpy"]\n'}, "python", "pytorch", ("pyproject.toml",)),
    ({"pyproject.toml": 'dependencies = ["streamlit"]\n'}, "python", "streamlit", ("pyproject.toml",)),
    ({"pyproject.toml": 'dependencies = ["pygls>=2"]\n'}, "python", "pygls", ("pyproject.toml",)),
    ({"pyproject.toml": 'dependencies = ["requests"]\n'}, "python", None, ("pyproject.toml",)),
    ({"requirements.txt": "Django==5.0\npsycopg\n"}, "python", "django", ("requirements.txt",)),
    ({"requirements.txt": "fastapi\n"}, "python", "fastapi", ("requirements.txt",)),
    ({"requirements.txt": "# flask is not used here\nrequests\n"}, "python", None, ("requirements.txt",)),
    ({"setup.py": "setup(install_requires=['flask'])\n"}, "python", "flask", ("setup.py",)),
    ({"setup.cfg": "[options]\ninstall_requires =\n    django\n"}, "python", "django", ("setup.cfg",)),
    ({"Pipfile": '[packages]\nfastapi = "*"\n'}, "python", "fastapi", ("Pipfile",)),
    ({"Cargo.toml": '[dependencies]\naxum = "0.7"\ntokio = "1"\n'}, "rust", "axum", ("Cargo.toml",)),
    ({"Cargo.toml": '[dependencies]\nactix-web = "4"\n'}, "rust", "actix-web", ("Cargo.toml",)),
    ({"Cargo.toml": '[dependencies]\nrocket = "0.5"\n'}, "rust", "rocket", ("Cargo.toml",)),
    ({"Cargo.toml": '[dependencies]\nbevy = "0.14"\n'}, "rust", "bevy", ("Cargo.toml",)),
    ({"Cargo.toml": '[dependencies]\ntauri = "2"\n'}, "rust", "tauri", ("Cargo.toml",)),
    ({"Cargo.toml": '[dependencies]\nserde = "1"\n'}, "rust", None, ("Cargo.toml",)),
    ({"go.mod": "module x\nrequire github.com/gin-gonic/gin v1.10.0\n"}, "go", "gin", ("go.mod",)),
    ({"go.mod": "module x\nrequire github.com/labstack/echo/v4 v4.12.0\n"}, "go", "echo", ("go.mod",)),
    ({"go.mod": "module x\nrequire github.com/gofiber/fiber/v2 v2.52.0\n"}, "go", "fiber", ("go.mod",)),
    ({"go.mod": "module x\n\ngo 1.22\n"}, "go", None, ("go.mod",)),
    ({"composer.json": '{"require": {"laravel/framework": "^11.0"}}'}, "php", "laravel", ("composer.json",)),
    ({"composer.json": '{"require": {"symfony/console": "^7.0"}}'}, "php", "symfony", ("composer.json",)),
    ({"pom.xml": "<artifactId>spring-boot-starter-web</artifactId>"}, "java", "spring-boot", ("pom.xml",)),
    ({"pom.xml": "<artifactId>quarkus-core</artifactId>"}, "java", "quarkus", ("pom.xml",)),
    ({"build.gradle.kts": 'plugins { id("org.springframework.boot") }\nimplementation("org.springframework.boot:spring-boot-starter")'},
     "kotlin", "spring-boot", ("build.gradle.kts",)),
    ({"build.gradle.kts": 'plugins { id("com.android.application") }'}, "kotlin", "android", ("build.gradle.kts",)),
    ({"build.gradle": "apply plugin: 'com.android.application'"}, "java", "android", ("build.gradle",)),
    ({"build.gradle": "dependencies { implementation 'org.springframework.boot:spring-boot-starter' }"},
     "java", "spring-boot", ("build.gradle",)),
    ({"Gemfile": "source 'https://rubygems.org'\ngem 'rails', '~> 7.1'\n"}, "ruby", "rails", ("Gemfile",)),
    ({"Gemfile": 'gem "sinatra"\n'}, "ruby", "sinatra", ("Gemfile",)),
    ({"mix.exs": "defp deps do\n  [{:phoenix, \"~> 1.7\"}]\nend\n"}, "elixir", "phoenix", ("mix.exs",)),
    ({"pubspec.yaml": "dependencies:\n  flutter:\n    sdk: flutter\n"}, "dart", "flutter", ("pubspec.yaml",)),
    ({"Package.swift": '.package(url: "https://github.com/vapor/vapor.git", from: "4.0.0")'}, "swift", "vapor", ("Package.swift",)),
    ({"package.json": json.dumps({"dependencies": {"react": "^18", "react-dom": "^18"},
                                  "devDependencies": {"typescript": "^5"}})}, "typescript", "react", ("package.json",)),
    ({"package.json": json.dumps({"dependencies": {"next": "14", "react": "18"}}), "tsconfig.json": "{}"},
     "typescript", "next", ("package.json", "tsconfig.json")),
    ({"package.json": json.dumps({"dependencies": {"express": "^4"}})}, "javascript", "express", ("package.json",)),
    ({"package.json": json.dumps({"dependencies": {"vue": "^3"}})}, "javascript", "vue", ("package.json",)),
    ({"package.json": json.dumps({"dependencies": {"nuxt": "^3", "vue": "^3"}})}, "javascript", "nuxt", ("package.json",)),
    ({"package.json": json.dumps({"devDependencies": {"@sveltejs/kit": "^2", "svelte": "^4"}})},
     "javascript", "sveltekit", ("package.json",)),
    ({"package.json": json.dumps({"dependencies": {"@angular/core": "^18"}})}, "javascript", "angular", ("package.json",)),
    ({"package.json": json.dumps({"dependencies": {"@nestjs/core": "^10", "express": "^4"}})},
     "javascript", "nestjs", ("package.json",)),
    ({"package.json": json.dumps({"dependencies": {"electron": "^31"}})}, "javascript", "electron", ("package.json",)),
    ({"package.json": "{ not json"}, "javascript", None, ("package.json",)),
    ({"package.json": json.dumps(["not", "an", "object"])}, "javascript", None, ("package.json",)),
]


@pytest.mark.parametrize(("files", "language", "framework", "sources"), CASES,
                         ids=[f"{next(iter(c[0]))}-{c[2]}" for c in CASES])
def test_every_manifest_type(tmp_path: Path, files: dict[str, str], language: str, framework: str | None,
                             sources: tuple[str, ...]) -> None:
    stack = classify(project(tmp_path, files))
    assert stack == Stack(language, framework, sources)
    assert stack.name == (f"{language}/{framework}" if framework else language)
    assert stack.to_record() == {"stack": stack.name, "language": language, "framework": framework,
                                 "sources": list(sources)}


def test_every_manifest_is_fingerprinted() -> None:
    for files, *_ in CASES:
        for name in files:
            assert name in FINGERPRINT_FILES


def test_empty_folder_and_missing_folder_are_unknown(tmp_path: Path) -> None:
    assert classify(project(tmp_path, {})) == Stack("unknown", None, ())
    assert classify(tmp_path / "does-not-exist") == Stack("unknown", None, ())


def test_agents_md_stack_line_overrides_the_manifests(tmp_path: Path) -> None:
    folder = project(tmp_path, {
        "package.json": json.dumps({"dependencies": {"react": "18"}}),
        "AGENTS.md": "# Agents\n\nSome notes.\n\nStack: go/gin\n"})
    assert classify(folder) == Stack("go", "gin", ("AGENTS.md",))


@pytest.mark.parametrize(("line", "expected"), [
    ("Stack: python/fastapi", ("python", "fastapi")),
    ("stack:   Rust", ("rust", None)),
    ("- Stack: elixir/phoenix", ("elixir", "phoenix")),
    ("* **Stack:** Python / FastAPI", ("python", "fastapi")),
    ("**Stack**: `go/gin`", ("go", "gin")),
])
def test_agents_md_stack_line_forms(tmp_path: Path, line: str, expected: tuple[str, str | None]) -> None:
    folder = project(tmp_path, {"pyproject.toml": "dependencies = []", "AGENTS.md": f"# Notes\n{line}\n"})
    assert classify(folder) == Stack(*expected, ("AGENTS.md",))


# The pattern declared_stack replaced (quadratic on runs of blank lines), as the reference for one line.
OLD_STACK_LINE = re.compile(
    r"(?im)^\s*(?:[-*+]\s+)?(?:\*\*|__)?stack(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*"
    r"`?([\w.+#-]+(?:\s*/\s*[\w.+#-]+)?)`?\s*$")
LINE_PIECES = st.lists(st.sampled_from(
    ["stack", "Stack", "STACK", "\u017ftack", "stac\u212a", ":", " ", "  ", "\t", "\r", "\x0b", "\u3000", "-", "*",
     "+", "**", "__", "`", "/", " / ", "python", "Py", "fast_api", "c++", "c#", "v1.2", "é", "語", "!", "#", "."]),
    max_size=12).map("".join)


@settings(max_examples=1_000, deadline=None, derandomize=True)
@example("* **Stack:** Python / FastAPI")
@example("stack:\tgo\t/\tgin")
@example("- stack : __")       # "__" is bold or a word
@example("\u017ftack: rust")   # long s: the old pattern was case-insensitive the Unicode way
@example("**Stack**: `go/gin` ")
@given(line=st.one_of(LINE_PIECES, st.builds("{}{}{}".format, LINE_PIECES, st.sampled_from(
    ["stack:", "- **Stack:** ", "**Stack**: `", "* stack : __"]), LINE_PIECES)))
def test_the_line_scanner_accepts_exactly_what_the_old_pattern_did(line: str) -> None:
    old = OLD_STACK_LINE.search(line)
    new = declared_stack(line)
    if old is None:
        assert new is None
    else:  # the old value kept tabs around "/" (it only removed spaces); the new one keeps none
        assert new == "".join(old.group(1).lower().split())


def test_a_stack_line_is_one_line_and_the_first_one_wins() -> None:
    assert declared_stack("# Notes\n\n\n- Stack: Rust\n**Stack**: go/gin\n") == "rust"
    assert declared_stack("Stack\n: go") is None                   # the old pattern let \s* cross lines
    assert declared_stack("Stack: go\r\nmore") == "go"             # CRLF files
    assert declared_stack("\n" * 300_000 + "stack: x/y") == "x/y"  # linear: this took half an hour


def test_agents_md_without_a_stack_line_only_hints_the_framework(tmp_path: Path) -> None:
    folder = project(tmp_path, {"pyproject.toml": 'dependencies = ["sqlalchemy"]',
                                "AGENTS.md": "The stack is great. We serve the API with FastAPI.\n"})
    assert classify(folder) == Stack("python", "fastapi", ("pyproject.toml",))


def test_tooling_package_json_beside_another_manifest_does_not_win(tmp_path: Path) -> None:
    folder = project(tmp_path, {"pyproject.toml": 'dependencies = ["django"]',
                                "package.json": json.dumps({"devDependencies": {"prettier": "^3"}})})
    assert classify(folder) == Stack("python", "django", ("pyproject.toml",))
    # ... but a JavaScript framework does: that is the project's front end.
    (folder / "package.json").write_text(json.dumps({"dependencies": {"react": "18"}}))
    assert classify(folder) == Stack("javascript", "react", ("package.json",))


def test_fingerprint_changes_only_with_the_classified_files(tmp_path: Path) -> None:
    folder = project(tmp_path, {"pyproject.toml": 'dependencies = ["flask"]'})
    first = fingerprint(folder)
    (folder / "README.md").write_text("not a manifest")
    assert fingerprint(folder) == first
    (folder / "pyproject.toml").write_text('dependencies = ["django", "celery"]')
    second = fingerprint(folder)
    assert second != first
    (folder / "AGENTS.md").write_text("Stack: python/django\n")
    assert fingerprint(folder) not in (first, second)


# -- through the tracker and the report ---------------------------------------------------------------

def _service(tmp_path: Path, default_directory: str | None = None) -> TrackingService:
    store = Store.open(BridgeConfig(database_path=str(tmp_path / "db.lmdb"), max_database_size=16 * MiB))
    assert store.available, store.error
    return TrackingService(store, ScoringRules(), journal_id="test", default_directory=default_directory)


def _send(service: TrackingService, method: str, params: dict, at: str) -> None:
    service.handle(method, params, received_at=at)


def test_tracker_classifies_on_session_created_and_refreshes_when_the_fingerprint_changes(tmp_path: Path) -> None:
    folder = project(tmp_path, {"pyproject.toml": 'dependencies = ["flask"]'}, "api")
    service = _service(tmp_path)
    _send(service, "session.created", {"sessionID": "s1", "directory": str(folder)}, "2026-10-01T10:00:00.000Z")
    service.flush()
    with service.store.read() as view:
        record = view.get("projects", str(folder))
    assert record["stack"] == "python/flask" and record["sources"] == ["pyproject.toml"]
    assert record["classifiedAt"] == "2026-10-01T10:00:00.000Z"
    assert record["fingerprint"] == fingerprint(folder)

    # Same files: the classification is kept (classifiedAt does not move), lastSeenAt does.
    _send(service, "session.created", {"sessionID": "s2", "directory": str(folder)}, "2026-10-02T10:00:00.000Z")
    service.flush()
    with service.store.read() as view:
        record = view.get("projects", str(folder))
    assert (record["stack"], record["classifiedAt"], record["lastSeenAt"]) == \
        ("python/flask", "2026-10-01T10:00:00.000Z", "2026-10-02T10:00:00.000Z")

    # The project moves to Django: the next session re-classifies it.
    (folder / "pyproject.toml").write_text('dependencies = ["django>=5", "psycopg"]')
    os.utime(folder / "pyproject.toml", ns=(1, 1))
    _send(service, "session.created", {"sessionID": "s3", "directory": str(folder)}, "2026-10-03T10:00:00.000Z")
    service.flush()
    with service.store.read() as view:
        record = view.get("projects", str(folder))
    assert (record["stack"], record["framework"], record["classifiedAt"], record["firstSeenAt"]) == \
        ("python/django", "django", "2026-10-03T10:00:00.000Z", "2026-10-01T10:00:00.000Z")

    # AGENTS.md declares the stack: it wins from the next session on.
    (folder / "AGENTS.md").write_text("Stack: python/fastapi\n")
    _send(service, "session.created", {"sessionID": "s4", "directory": str(folder)}, "2026-10-04T10:00:00.000Z")
    service.flush()
    with service.store.read() as view:
        assert view.get("projects", str(folder))["stack"] == "python/fastapi"
    service.store.close()


def test_an_adopted_session_records_its_stack_and_the_report_never_reads_project_files(tmp_path: Path) -> None:
    """A session adopted from a tool event (no session.created) records its project's stack as a
    created one does; the report reads only what was recorded (a folder gone: unknown), never the
    folder: its files changed afterwards change nothing until the next session there."""
    folder = project(tmp_path, {"Cargo.toml": '[dependencies]\naxum = "0.7"'}, "gateway")
    service = _service(tmp_path, default_directory=str(folder))
    for number in range(3):
        _send(service, "tool.executed", {"sessionID": f"adopted-{number}", "callID": f"c{number}", "tool": "read",
                                         "success": True, "agentId": "build"}, f"2026-10-01T10:0{number}:00.000Z")
    service.default_directory = str(tmp_path / "gone")
    _send(service, "tool.executed", {"sessionID": "elsewhere", "callID": "c9", "tool": "read", "success": True},
          "2026-10-01T11:00:00.000Z")
    service.flush()
    with service.store.read() as view:
        assert {k: (v["stack"], v["sources"]) for k, v in view.scan("projects")} == {
            str(folder): ("rust/axum", ["Cargo.toml"]), str(tmp_path / "gone"): ("unknown", [])}
    (folder / "Cargo.toml").write_text("[[[")  # read at report time, this would change the answer
    (folder / "package.json").write_text('{"dependencies": {"next": "1"}}')
    report = build_report(service.store)
    stacks = {(row.agent, row.stack): row.sessions for row in report.setups}
    assert stacks == {("unknown", "rust/axum"): 3, ("unknown", "unknown"): 1}
    service.store.close()
