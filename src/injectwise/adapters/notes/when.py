"""Dates in notes: absolute ("2025-09-10", "9/10/2025", "12 Mar 2026", "Aug and Nov 2025", "3/2025"), year-less
("6/3", "9/17") and relative ("3 weeks ago", "last month", "yesterday", "in 6 weeks"), all resolved against
the note's own date. A date the text does not give is not invented: callers get None."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from injectwise.adapters.notes.numbers import NUMBER, to_number
from injectwise.language.phrases import Screen, ScreenGroup

MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})
MONTHS["sept"] = 9
_MON = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?"
        r"|nov(?:ember)?|dec(?:ember)?)")
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
UNIT_DAYS = {"day": 1, "week": 7, "wk": 7, "month": 30.44, "mo": 30.44, "year": 365.25, "yr": 365.25}
_UNIT = r"(?:days?|weeks?|wks?|months?|mos?|years?|yrs?)"


@dataclass(slots=True, frozen=True)
class DateHit:
    """A date found in text: its value, where it is, and how precise the text was (day, month, year)."""

    when: datetime
    start: int
    end: int
    precision: str = "day"
    relative: bool = False
    kind: str = ""  # which pattern found it ("post_now": "N weeks after the injection", said at this visit)


PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("ago_fraction", re.compile(r"(?<![\d/])(\d{1,2})/(52|12|7) (?:ago|earlier|prior|back)\b", re.I)),
    ("iso", re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")),
    ("dmy_text", re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)? ({_MON})\.?,? (\d{{4}})\b", re.I)),
    ("mdy_text", re.compile(rf"\b({_MON})\.? (\d{{1,2}})(?:st|nd|rd|th)?,? (\d{{4}})\b", re.I)),
    ("numeric", re.compile(r"(?<![\d/.])(\d{1,2})[/.](\d{1,2})[/.](\d{2}|\d{4})(?![\d/])")),
    ("numeric_month_year", re.compile(r"(?<![\d/.])(1[0-2]|0?[1-9])/((?:19|20)\d{2})(?![\d/])")),
    ("months_year", re.compile(rf"\b((?:{_MON})(?:\.?,? (?:and|&|,) ?(?:{_MON}))+)\.? (\d{{4}})\b", re.I)),
    ("month_year", re.compile(rf"\b({_MON})\.?,? (\d{{4}})\b", re.I)),
    # "(Feb and June)", "in Feb, June and Sept": two or more months without a year
    ("months_only", re.compile(rf"\b((?:{_MON})(?:\.?,? (?:and|&|,) ?(?:{_MON}))+)\b\.?(?!,? ?\d)", re.I)),
    # "on the 14th": a day of this month, or of the last one when it is still to come
    ("ordinal_day", re.compile(r"\bon the (\d{1,2})(?:st|nd|rd|th)\b(?! (?:of|floor|day|days|visit|time|attempt|try|"
                               r"injection|level|page|line|dose|week|month)\b)", re.I)),
    # "3 Mar 26": day, month, two-digit year (not "3 Mar 20 mg")
    ("dmy_text_yy", re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)? ({_MON})\.?,? (\d{{2}})\b(?![:\d])"
                               r"(?!\s*(?:mg|ml|mcg|%|units?)\b)", re.I)),
    # "the 3rd of March (2026)"
    ("d_of_m", re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)? of ({_MON})\b(?:,? (\d{{4}}))?", re.I)),
    ("md_text", re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)? ({_MON})\b(?! \d)", re.I)),
    ("md_text2", re.compile(rf"\b({_MON})\.? (\d{{1,2}})(?:st|nd|rd|th)?\b(?!,? \d{{4}})(?![:\d])", re.I)),
    ("md", re.compile(r"(?<![\d/.\w])(\d{1,2})/(\d{1,2})(?![\d/])(?!\s*(?:mg|ml|%))")),
    # "in March", "mid-Feb", "early March": a month without a year, led by a word that makes it a time ("dec ROM"
    # is decreased range of motion, "may" a verb)
    ("month_only", re.compile(rf"\b(in|since|during|from|until|by|early|mid|late|end of|beginning of|start of)[- ]"
                              rf"({_MON})\b\.?(?!,? ?\d)", re.I)),
    # "6/52 ago" (weeks), "3/12 ago" (months), "5/7 ago" (days): the fraction-of-a-period shorthand; "10d ago", "3w ago"
    ("ago_short", re.compile(r"\b(\d{1,3}) ?(d|w|wk|m|mo|y|yr)s? (?:ago|earlier|prior|back)\b", re.I)),
    # a weekday: "on Sunday", "last Sunday", and after words that say when something was last done ("last dose
    # Sunday", "held since Sunday", "taken Friday") - past; "next / this / coming Friday" - ahead; "on Friday" in a
    # plan ("TKA booked on Friday") - ahead
    ("weekday", re.compile(r"\b(on|last|this past|since|dose|taken|held|stopped|from|next|this|coming|this coming) "
                           r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", re.I)),
    # "two and a half months ago", "a month and a half ago"
    ("ago", re.compile(rf"\b({NUMBER}|a|an|a few|few|several)( and a half)? ({_UNIT})( and a half)? "
                       rf"(?:ago|back|earlier|prior)\b", re.I)),
    # "Follow-up 5 days after the knee injection", "now 2 weeks post injection", "day 3 post-injection": the
    # event is that long before the note, when the note's own visit is the "now" (not "PT began 2 weeks after")
    ("post_now", re.compile(rf"(?:^\s*|\b(?:follow[- ]?up|f/u|review(?:ed)?|seen|visit|call|today|now|currently|presents?|"
                            rf"returns?|returned|comes? in|here)\b[^.;]{{0,30}}?\b)({NUMBER}|a|an|one|two) ({_UNIT}) "
                            rf"(?:after|post|post-|following|since|out from)(?=[\s-])", re.I)),
    ("day_post", re.compile(rf"\b(?:day|d) ({NUMBER}) (?:after|post|following)(?=[\s-])", re.I)),
    ("in", re.compile(rf"\bin ({NUMBER}|a|an|one|two) ({_UNIT})(?! ago)\b", re.I)),
    ("last", re.compile(r"\b(last|past|previous|next|this) (week|month|year)\b", re.I)),
    # "two weeks ago today": the "today" only says the count is exact, it dates nothing itself
    ("day_word", re.compile(r"(?<!\bago )\b(yesterday|today|tonight|this morning|tomorrow)\b", re.I)),
    ("year", re.compile(r"\b(?:in|since|from|during|of|\() ?((?:19|20)\d{2})\b", re.I)),
    ("year", re.compile(r"(?<![\d/.-])((?:19|20)\d{2})\b(?!\s*(?:mg|ml|mcg|units?|/|-\d))", re.I)),
]
# each pattern behind its literal screen (a month name, "ago", a digit...): most sentences run few of them
_SCREENED = [(kind, pat, Screen(pat)) for kind, pat in PATTERNS]
# the date patterns' literal screens checked together (one substring test per distinct literal, 4x fewer
# regex scans than one screen at a time on a sentence)
_SCREEN_GROUP = ScreenGroup(screen for _, _, screen in _SCREENED)
# "6/10" after a pain word is a score, not 10 June.
# Anywhere in a sentence about pain, "N/10" is a score unless a date word leads it ("on 8/10", "since 8/10").
_SCORE = re.compile(r"(?:pain|nrs|vas|score|rat(?:ed|ing)|hurts?|aches?|relief|(?:back|down|up|returned|went) to|"
                    r"\bnow|currently)\b[^.;]*?"
                    r"(?<!\bon )(?<!\bsince )"
                    r"(?<!\bdated )(\b\d{1,2}(?:\.\d)?/10\b)|"
                    r"(\b\d{1,2}(?:\.\d)?/10\b)(?= (?:pain|before|after|at|today|now|again|then|for|with))", re.I)


def mask_scores(text: str) -> str:
    """Blank out pain scores so they are not read as dates (offsets are kept)."""
    def blank(m: re.Match[str]) -> str:
        g = 1 if m.group(1) else 2
        s, e = m.span(g)
        a = m.start()
        return m.group(0)[: s - a] + " " * (e - s) + m.group(0)[e - a:]
    prev = None
    while prev != text:
        prev, text = text, _SCORE.sub(blank, text)
    return text


def _safe(y: int, m: int, d: int) -> datetime | None:
    try:
        return datetime(y, m, d)
    except ValueError:
        return None


def _year_less(ref: date, m: int, d: int, future: bool) -> datetime | None:
    """A date without a year: the most recent such day on or before the note (or next after it, for plans)."""
    dt = _safe(ref.year, m, d)
    if dt is None:
        return None
    if future:
        return dt if dt.date() >= ref else _safe(ref.year + 1, m, d)
    return dt if dt.date() <= ref else _safe(ref.year - 1, m, d)


def _span_days(count: str, unit: str) -> float | None:
    n = to_number(count) if count.lower() not in ("a", "an") else 1.0
    if count.lower() in ("a few", "few", "several"):
        return None
    if n is None:
        return None
    key = unit.lower().rstrip("s")
    return n * UNIT_DAYS.get(key, UNIT_DAYS.get(key[:2], 1))


_MAYBE_DATE = re.compile(r"\d|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|yesterday|today|tonight|tomorrow|"
                         r"morning|last|next|this|past|previous|ago|day\b", re.I)
_MAYBE = Screen(_MAYBE_DATE)


def find_dates(text: str, ref: date, future: bool = False) -> list[DateHit]:
    """Every date the text names, left to right; overlapping matches keep the more specific one."""
    if not _MAYBE.found(text):
        return []
    hits: list[DateHit] = []
    taken: list[tuple[int, int]] = []
    if "/10" in text:
        text = mask_scores(text)
    base = datetime(ref.year, ref.month, ref.day)
    low = text.lower()
    for (kind, _, screen), ok in zip(_SCREENED, _SCREEN_GROUP.passing(text, low), strict=True):
        if not ok:
            continue
        run = screen.run(text, low)  # matched text may be lower-cased: `_resolve` reads it case-blind
        for m in run[0].finditer(run[1]):
            s, e = m.span()
            if any(s < b and e > a for a, b in taken):
                continue
            found = _resolve(kind, m, ref, base, future)
            if not found:
                continue
            taken.append((s, e))
            for when, prec, rel in found:
                hits.append(DateHit(when, s, e, prec, rel, kind))
    hits.sort(key=lambda h: (h.start, h.when))
    return hits


FUTURE_YEARS_OF_TWO_DIGITS = 20  # "3/17/97" in a 2026 note is 1997; "6/1/30" is 2030 (a date planned ahead)


def _full_year(digits: str, ref: date) -> int:
    """A year written with two digits: the one nearest the note's year, at most 20 years after it."""
    if len(digits) != 2:
        return int(digits)
    yy = int(digits)
    candidates = [c + yy for c in (ref.year - ref.year % 100 - 100, ref.year - ref.year % 100,
                                   ref.year - ref.year % 100 + 100)]
    allowed = [y for y in candidates if y <= ref.year + FUTURE_YEARS_OF_TWO_DIGITS]
    return min(allowed, key=lambda y: abs(y - ref.year))


def _resolve(kind: str, m: re.Match[str], ref: date, base: datetime,
             future: bool) -> list[tuple[datetime, str, bool]]:
    g = m.groups()
    out: list[tuple[datetime, str, bool]] = []
    if kind == "iso":
        dt = _safe(int(g[0]), int(g[1]), int(g[2]))
        return [(dt, "day", False)] if dt else []
    if kind == "dmy_text":
        dt = _safe(int(g[2]), MONTHS[g[1][:3].lower()], int(g[0]))
        return [(dt, "day", False)] if dt else []
    if kind == "mdy_text":
        dt = _safe(int(g[2]), MONTHS[g[0][:3].lower()], int(g[1]))
        return [(dt, "day", False)] if dt else []
    if kind == "numeric":
        y = _full_year(g[2], ref)
        a, b = int(g[0]), int(g[1])
        dt = _safe(y, a, b) if a <= 12 else _safe(y, b, a)  # US month/day unless impossible
        return [(dt, "day", False)] if dt else []
    if kind == "numeric_month_year":  # "3/2025"
        dt = _safe(int(g[1]), int(g[0]), 1)
        return [(dt, "month", False)] if dt else []
    if kind in ("months_year", "month_year"):
        y = int(g[-1])
        for name in re.findall(_MON, g[0], re.I):
            dt = _safe(y, MONTHS[name[:3].lower()], 1)
            if dt:
                out.append((dt, "month", False))
        return out
    if kind == "months_only":
        for name in re.findall(_MON, g[0], re.I):
            dt = _year_less(ref, MONTHS[name[:3].lower()], 1, future)
            if dt:
                out.append((dt, "month", False))
        return out
    if kind == "ordinal_day":
        day = int(g[0])
        if not 1 <= day <= 31:
            return []
        dt = _safe(ref.year, ref.month, day)
        if future and (dt is None or dt.date() < ref):  # "surgery on the 3rd": next month's
            nxt = (ref.replace(day=28) + timedelta(days=4)).replace(day=1)
            dt = _safe(nxt.year, nxt.month, day)
        elif not future and (dt is None or dt.date() > ref):
            prev = (ref.replace(day=1) - timedelta(days=1))
            dt = _safe(prev.year, prev.month, day)
        return [(dt, "day", False)] if dt else []
    if kind == "dmy_text_yy":
        dt = _safe(_full_year(g[2], ref), MONTHS[g[1][:3].lower()], int(g[0]))
        return [(dt, "day", False)] if dt else []
    if kind == "d_of_m":
        mon, day = MONTHS[g[1][:3].lower()], int(g[0])
        dt = _safe(int(g[2]), mon, day) if g[2] else _year_less(ref, mon, day, future)
        return [(dt, "day", False)] if dt else []
    if kind == "month_only":
        lead = g[0].lower()
        day = 15 if lead == "mid" else 25 if lead in ("late", "end of") else 1
        dt = _year_less(ref, MONTHS[g[1][:3].lower()], day, future)
        return [(dt, "month", False)] if dt else []
    if kind in ("md_text", "md_text2"):
        day, mon = (g[0], g[1]) if kind == "md_text" else (g[1], g[0])
        dt = _year_less(ref, MONTHS[mon[:3].lower()], int(day), future)
        return [(dt, "day", False)] if dt else []
    if kind == "md":
        a, b = int(g[0]), int(g[1])
        if a > 12 or b > 31 or a == 0 or b == 0:
            return []
        dt = _year_less(ref, a, b, future)
        return [(dt, "day", False)] if dt else []
    if kind == "ago_fraction":
        n, per = int(g[0]), {"52": 7, "12": 30.44, "7": 1}[g[1]]
        return [(base - timedelta(days=round(n * per)), "day" if n * per < 60 else "month", True)]
    if kind == "ago_short":
        per = {"d": 1, "w": 7, "wk": 7, "m": 30.44, "mo": 30.44, "y": 365.25, "yr": 365.25}[g[1].lower()]
        d = int(g[0]) * per
        return [(base - timedelta(days=round(d)), "day" if d < 60 else "month", True)]
    if kind == "weekday":  # the latest such weekday before the note's day, or the next one for what is ahead
        lead, want = g[0].lower(), WEEKDAYS.index(g[1].lower())
        if lead in ("next", "this", "coming", "this coming") or (future and lead == "on"):
            ahead = (want - base.weekday()) % 7 or 7
            return [(base + timedelta(days=ahead), "day", True)]
        back = (base.weekday() - want) % 7 or 7
        return [(base - timedelta(days=back), "day", True)]
    if kind == "ago":
        d = _span_days(g[0], g[2])
        if d is not None and (g[1] or g[3]):
            d += _span_days("1", g[2]) / 2  # type: ignore[operator]
        return [(base - timedelta(days=round(d)), "day" if d < 60 else "month", True)] if d is not None else []
    if kind in ("post_now", "day_post"):
        d = _span_days(g[0], g[1]) if kind == "post_now" else to_number(g[0])
        return [(base - timedelta(days=round(d)), "day" if d < 60 else "month", True)] if d is not None else []
    if kind == "in":
        d = _span_days(g[0], g[1])
        return [(base + timedelta(days=round(d)), "day", True)] if d is not None else []
    if kind == "last":
        which, unit = g[0].lower(), g[1].lower()
        days = {"week": 7, "month": 30, "year": 365}[unit]
        if which in ("last", "past", "previous"):
            return [(base - timedelta(days=days), "month" if unit != "week" else "day", True)]
        if which == "next":
            return [(base + timedelta(days=days), "month" if unit != "week" else "day", True)]
        return [(base, "month", True)]
    if kind == "day_word":
        w = g[0].lower()
        shift = {"yesterday": -1, "tomorrow": 1}.get(w, 0)
        return [(base + timedelta(days=shift), "day", True)]
    if kind == "year":
        y = int(g[0])
        if y > ref.year + 5:
            return []
        return [(datetime(y, 1, 1), "year", False)]
    return out


_NOTE_DATE = re.compile(r"^\s*(?:date(?: of (?:visit|service|note))?|visit date|dos|seen)\s*[:=-]\s*(.+)$", re.I | re.M)


def note_date(text: str, fallback: date) -> date | None:
    """The date a 'Date:' line gives, if any (the note's own date wins over the document's)."""
    m = _NOTE_DATE.search(text[:2000])
    if not m:
        return None
    hits = find_dates(" ".join(m.group(1).split()), fallback)  # spacing made plain, as the reader does for the body
    hits = [h for h in hits if not h.relative]
    return hits[0].when.date() if hits else None


def span_days(text: str) -> tuple[float, int] | None:
    """A stated period: 'over the past 4 years' / 'in the last 6 months' -> (days, match start)."""
    m = re.search(rf"\b(?:over|in|during|within) the (?:past|last|previous) (?:({NUMBER}|a|one|two) )?({_UNIT})\b", text, re.I)
    if not m:
        return None
    d = _span_days(m.group(1) or "1", m.group(2))  # "in the past year": one year
    return (d, m.start()) if d is not None else None
