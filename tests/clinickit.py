"""Helpers for the clinic tests: a real `injectwise serve` with users made by the real CLI, and a
Flesch-Kincaid grade for the plain-language page."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conftest import cli_path
from servicekit import Server, start_server

from injectwise.adapters.service.trust import hash_key, new_api_key


@dataclass
class Clinic:
    server: Server
    db_url: str
    passwords: dict[str, str]
    api_key: str


def add_user(db_url: str, name: str, role: str) -> str:
    p = subprocess.run([cli_path(), "user", "add", name, "--role", role, "--database-url", db_url],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip().rsplit(" ", 1)[-1]


def start_clinic(tmp: Path, db_url: str | None = None, name: str = "clinic") -> Clinic:
    db_url = db_url or f"sqlite:///{tmp / (name + '.db')}"
    key = new_api_key()
    keys = tmp / f"{name}.keys"
    keys.write_text(f"tests {hash_key(key)}\n")
    # The migration runs on first use: create the users after the server has brought the schema up.
    server = start_server(tmp, "--api-keys", str(keys), "--database-url", db_url, name=name)
    users = {n: add_user(db_url, n, r) for n, r in (("alice", "clinician"), ("ann", "analyst"), ("root", "admin"))}
    return Clinic(server, db_url, users, key)


def _syllables(word: str) -> int:
    w = word.lower()
    groups = re.findall(r"[aeiouy]+", w)
    n = len(groups)
    if w.endswith("e") and not w.endswith(("le", "ee")) and n > 1:
        n -= 1
    return max(1, n)


def visible_text(html: str) -> str:
    """Text of an HTML fragment: block elements end a line, inline ones (strong, a) do not."""
    from html import unescape
    html = re.sub(r"</?(p|li|h[1-6]|ul|ol|div|article|section)\b[^>]*>", "\n", html)
    return unescape(re.sub(r"<[^>]+>", "", html))


def flesch_kincaid_grade(text: str) -> float:
    """0.39 * words/sentence + 11.8 * syllables/word - 15.59 (Kincaid 1975); list items count as sentences."""
    sentences = [s for s in re.split(r"[.!?\n]+", text) if re.search(r"[A-Za-z]", s)]
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", text)
    syl = sum(_syllables(w) for w in words)
    return 0.39 * len(words) / len(sentences) + 11.8 * syl / len(words) - 15.59
