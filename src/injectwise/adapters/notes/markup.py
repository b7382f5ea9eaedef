"""Plain text from what EHRs put in a note attachment: text/plain as is, HTML and simple RTF stripped."""

from __future__ import annotations

import html
import re

_HTML_HINT = re.compile(r"<\s*(html|body|p|div|br|span|table|tr|td|li|ul|ol|h[1-6]|b|i|strong|em)\b[^>]*>", re.I)
_BLOCK = re.compile(r"<\s*(br|/p|/div|/li|/tr|/h[1-6]|p|div|li|tr|h[1-6])\b[^>]*>", re.I)
_DROP = re.compile(r"<\s*(script|style|head)\b.*?<\s*/\s*\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_RTF_GROUP_DROP = re.compile(r"\{\\(?:\*|fonttbl|colortbl|stylesheet|info|pict|header|footer)[^{}]*(?:\{[^{}]*\}[^{}]*)*\}", re.S)
_RTF_HEX = re.compile(r"\\'([0-9a-fA-F]{2})")
_RTF_UNI = re.compile(r"\\u(-?\d+)\??")
_RTF_PAR = re.compile(r"\\(par|line|row|cell)\b ?")
_RTF_TAB = re.compile(r"\\tab\b ?")
_RTF_WORD = re.compile(r"\\[a-zA-Z]+-?\d* ?")
_RTF_ESC = re.compile(r"\\([\\{}])")


def to_plain(text: str, content_type: str = "") -> str:
    """Strip markup by declared type or, failing that, by what the text looks like."""
    ct = content_type.lower()
    head = text.lstrip()[:200]
    if "rtf" in ct or head.startswith("{\\rtf"):
        return rtf_to_text(text)
    if "html" in ct or "xml" in ct or _HTML_HINT.search(text[:5000]):
        return html_to_text(text)
    return text


def html_to_text(text: str) -> str:
    """HTML's own line breaks are only spacing (an editor's wrap), so they are collapsed first; a `<br>` is
    a line break and a closed block (paragraph, list item, row, heading) always ends its sentence."""
    text = _DROP.sub(" ", text)
    text = _SPACE.sub(" ", text)
    text = _BLOCK.sub(lambda m: "\n" if m.group(1).lower() == "br" else "\n\n", text)
    text = _TAG.sub(" ", text)
    text = html.unescape(text)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" ?\n ?", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def rtf_to_text(text: str) -> str:
    prev = None
    while prev != text:
        prev, text = text, _RTF_GROUP_DROP.sub("", text)
    text = _RTF_PAR.sub("\n", text)
    text = _RTF_TAB.sub("\t", text)
    text = _RTF_HEX.sub(lambda m: bytes([int(m.group(1), 16)]).decode("cp1252", errors="replace"), text)
    text = _RTF_UNI.sub(lambda m: chr(int(m.group(1)) % 65536), text)
    text = _RTF_ESC.sub(lambda m: "\x00" + m.group(1), text)
    text = _RTF_WORD.sub("", text)
    text = text.replace("{", "").replace("}", "").replace("\x00", "")
    return re.sub(r"[ \t]+", " ", text).strip()
