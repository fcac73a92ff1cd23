"""Classify a project's stack (language/framework) from its manifest files and AGENTS.md.

Files are only read (bounded), never executed. The fingerprint (names, sizes, mtimes) lets the
tracker refresh the stored classification only when those files change.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import attrs

MAX_READ = 256 * 1024

_PYTHON_IN_CODE = [
    ("fastapi", r"\bfastapi\b"), ("django", r"\bdjango\b"), ("flask", r"\bflask\b"),
]
# (manifest file, language, [(framework, pattern in the file's text)...]) in priority order.
_MANIFESTS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("pyproject.toml", "python", [
        ("fastapi", r"\bfastapi\b"), ("django", r"\bdjango\b"), ("flask", r"\bflask\b"),
        ("pytorch", r"\btorch\b"), ("streamlit", r"\bstreamlit\b"), ("pygls", r"\bpygls\b"),
    ]),
    ("requirements.txt", "python", [
        ("fastapi", r"(?im)^fastapi\b"), ("django", r"(?im)^django\b"), ("flask", r"(?im)^flask\b"),
    ]),
    ("setup.py", "python", _PYTHON_IN_CODE),
    ("setup.cfg", "python", _PYTHON_IN_CODE),
    ("Pipfile", "python", _PYTHON_IN_CODE),
    ("Cargo.toml", "rust", [
        ("axum", r"\baxum\b"), ("actix-web", r"\bactix-web\b"), ("rocket", r"\brocket\b"),
        ("bevy", r"\bbevy\b"), ("tauri", r"\btauri\b"),
    ]),
    ("go.mod", "go", [
        ("gin", r"gin-gonic/gin"), ("echo", r"labstack/echo"), ("fiber", r"gofiber/fiber"),
    ]),
    ("composer.json", "php", [("laravel", r"laravel/framework"), ("symfony", r"symfony/")]),
    ("pom.xml", "java", [("spring-boot", r"spring-boot"), ("quarkus", r"quarkus")]),
    ("build.gradle.kts", "kotlin", [("spring-boot", r"spring-boot"), ("android", r"com\.android")]),
    ("build.gradle", "java", [("spring-boot", r"spring-boot"), ("android", r"com\.android")]),
    ("Gemfile", "ruby", [("rails", r"""gem\s+['"]rails['"]"""), ("sinatra", r"""gem\s+['"]sinatra['"]""")]),
    ("mix.exs", "elixir", [("phoenix", r":phoenix\b")]),
    ("pubspec.yaml", "dart", [("flutter", r"(?m)^\s*flutter\s*:")]),
    ("Package.swift", "swift", [("vapor", r"vapor/vapor")]),
]
_JS_FRAMEWORKS = [
    ("next", "next"), ("nuxt", "nuxt"), ("sveltekit", "@sveltejs/kit"), ("svelte", "svelte"),
    ("angular", "@angular/core"), ("nestjs", "@nestjs/core"), ("remix", "@remix-run/react"),
    ("react", "react"), ("vue", "vue"), ("express", "express"), ("fastify", "fastify"),
    ("electron", "electron"),
]
# "Stack: python/fastapi", also as a list item or in bold ("- **Stack:** python/fastapi").
_STACK_LINE = re.compile(
    r"(?im)^\s*(?:[-*+]\s+)?(?:\*\*|__)?stack(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*"
    r"`?([\w.+#-]+(?:\s*/\s*[\w.+#-]+)?)`?\s*$")
FINGERPRINT_FILES = [name for name, _, _ in _MANIFESTS] + ["package.json", "tsconfig.json", "AGENTS.md"]


@attrs.frozen
class Stack:
    language: str
    framework: str | None
    sources: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.language}/{self.framework}" if self.framework else self.language

    def to_record(self) -> dict:
        return {"stack": self.name, "language": self.language, "framework": self.framework,
                "sources": list(self.sources)}


def _read(path: Path) -> str | None:
    try:
        if not path.is_file():
            return None
        with open(path, "rb") as handle:
            return handle.read(MAX_READ).decode("utf-8", errors="replace")
    except OSError:
        return None


def fingerprint(directory: Path) -> str:
    digest = hashlib.sha1()
    for name in FINGERPRINT_FILES:
        try:
            stat = (directory / name).stat()
        except OSError:
            continue
        digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def classify(directory: Path) -> Stack:
    agents_md = _read(directory / "AGENTS.md")
    if agents_md and (declared := _STACK_LINE.search(agents_md)):
        language, _, framework = declared.group(1).lower().replace(" ", "").partition("/")
        return Stack(language, framework or None, ("AGENTS.md",))
    package = _read(directory / "package.json")
    if package is not None:
        javascript = _classify_package_json(directory, package)
        # A package.json without a framework next to another manifest is usually tooling
        # (prettier, a CSS build) for a project in that other language.
        if javascript.framework is not None or not any((directory / name).is_file() for name, _, _ in _MANIFESTS):
            return javascript
    for name, language, frameworks in _MANIFESTS:
        text = _read(directory / name)
        if text is None:
            continue
        framework = next((fw for fw, pattern in frameworks if re.search(pattern, text, re.I)), None)
        if framework is None and agents_md:
            framework = next((fw for fw, pattern in frameworks if re.search(pattern, agents_md, re.I)), None)
        return Stack(language, framework, (name,))
    return Stack("unknown", None, ())


def _classify_package_json(directory: Path, text: str) -> Stack:
    try:
        manifest = json.loads(text)
        deps = {**manifest.get("dependencies", {}), **manifest.get("devDependencies", {})}
    except (ValueError, AttributeError, TypeError):
        deps = {}
    typescript = "typescript" in deps or (directory / "tsconfig.json").is_file()
    framework = next((fw for fw, dep in _JS_FRAMEWORKS if dep in deps), None)
    sources = ("package.json", "tsconfig.json") if (directory / "tsconfig.json").is_file() else ("package.json",)
    return Stack("typescript" if typescript else "javascript", framework, sources)
