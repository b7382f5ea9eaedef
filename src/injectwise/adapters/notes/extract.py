"""Facts from one clinical note, as the same record items the FHIR reader fills.

The language layer (injectwise.language) finds the sentences and the concept mentions with their
modifiers; this module turns them, plus the numbers, dates and events a note states in words, into
Conditions, Observations, Procedures, MedicationAdministrations, MedicationUses, Allergies and
ServiceRequests. Every item gets a ref inside the note ("note:visit.txt#c3") and a Provenance with
the sentence it rests on, so a finding can quote it. Nothing is guessed: a fact without the date or
value it needs is left out, except counted injections over a stated period (dates spread evenly
over it, and the item says so)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

import yaml

from injectwise.adapters.notes.cues import Cues, load_cues
from injectwise.adapters.notes.numbers import NUMBER, to_number
from injectwise.adapters.notes.when import DateHit, find_dates, span_days
from injectwise.core.errors import KnowledgeError
from injectwise.core.record import (
    Allergy,
    Coded,
    Coding,
    Condition,
    MedicationAdministration,
    MedicationUse,
    Observation,
    PatientRecord,
    Procedure,
    Provenance,
    ServiceRequest,
)
from injectwise.engine.clinical import MG_PER_ML_STRENGTH, percent_strength, side_of
from injectwise.engine.facts import (  # the ratings the review reads; notes join them to the injection
    RELIEF_GOOD_SPAN_TEXT,
    RELIEF_PERCENT_TEXT,
    RELIEF_SPAN_TEXT,
    anesthetic_phase_told,
    relief_span_days,
)
from injectwise.engine.safety import PER_SIDE  # "each side": a bilateral plan's doses are per side
from injectwise.knowledge.model import Drug, Knowledge, Target
from injectwise.knowledge.terminology import CONCEPT_SYSTEM
from injectwise.language import Mention, Sentence, analyze
from injectwise.language.phrases import Scanner, Screen, ScreenGroup, same_length_lower
from injectwise.language.sentence_scan import SentenceScreens

GUIDANCE_WORDS = (
    ("landmark", re.compile(r"landmark|\bblind\b|palpation|unguided|without (imaging|guidance|ultrasound)", re.I)),
    ("ultrasound", re.compile(r"ultrasound|ultrason|sonograph|\bus[- ]guid|under us\b|\busg\b|\bu/s[- ]guid", re.I)),
    ("fluoroscopy", re.compile(r"fluoro|x-?ray[- ]guid|c-arm|image intensifier", re.I)),
    ("ct", re.compile(r"\bct[- ]guided", re.I)),
)
GUIDANCE_LABEL = {"landmark": "landmark-guided", "ultrasound": "ultrasound-guided", "fluoroscopy": "fluoroscopy-guided",
                  "ct": "CT-guided"}
DOSE = r"(\d+(?:\.\d+)?)\s*(mg|mcg|µg|ug|g)\b"
COUNT_BEFORE = re.compile(rf"\b({NUMBER})\b((?:[\s,]+(?!injections?|shots?|blocks?)[\w()/.-]+){{0,8}}?)[\s,]+"
                          r"(?:injections|shots|blocks|blockades|infiltrations)\b", re.I)
TIMES = re.compile(rf"\b(twice|thrice|({NUMBER}) times|x ?(\d+))\b", re.I)
SINCE = re.compile(r"\bsince ((?:19|20)\d{2})\b", re.I)
SINCE_LEAD = re.compile(r"\bsince\s+(?:(?:early|mid|late|about|around|the (?:start|end|beginning|middle) of)\s+)?$", re.I)
SINCE_BEFORE = re.compile(r"\b(?:since|from|starting)\s*$", re.I)
THIS_YEAR = re.compile(r"\b(?:this|so far this|the current|this calendar) year\b", re.I)
LAST_LEAD = re.compile(r"\b(?:the )?(?:last|latest|most recent)(?: one| injection| shot)?(?: was| given)?(?: on| in)?\s*$", re.I)
# a medicine taken "since 2026-05-12", "started on 3/1", "started 3 weeks ago": what lies between the name and the date
# an intention, not an event: "apixaban, to stop on <day>", "will hold Eliquis from <day>" (still taken today)
INTENT = re.compile(r"\b(?:to|will|would|plans? to|going to)\s+(?:be\s+)?(?:stop|hold|held|pause|discontinu|suspend)\w*\b",
                    re.I)
MED_SINCE_GAP = re.compile(r"^[^.;()]{0,40}?\b(?:since|started(?: on| in)?|starting(?: on| in)?|begun|began(?: on| in)?)"
                           r"\s*:?\s*$", re.I)
AGE = re.compile(r"\b(\d{1,3}) ?(?:yo|y/o|y\.o\.|yrs? old|years? old|year-old|-year-old)\b", re.I)
# "64F", "15 M" (capital letter only), "age 15", "aged 64": an age without "yo"
AGE_SHORT = re.compile(r"(?<![\w/.,:-])(\d{1,3}) ?[MF]\b|\b(?i:age[ds]?)\s*:?\s*(\d{1,3})\b(?! ?(?:%|mg|kg|y/?o))")
# "DOB: 3/2/1961", "date of birth 02 Mar 1961", "born 3/2/61": the date follows
BIRTH = re.compile(r"\b(?:DOB|D\.O\.B\.?|date of birth|born(?: on)?)\s*[:\-]?\s*", re.I)
SEX = re.compile(r"\b(?:\d{1,3} ?(?:yo|y/o|y\.o\.|yrs? old|years? old|year-old|-year-old)?\s*(M|F)\b|"
                 r"\b(male|female|man|woman|gentleman|lady)\b)", re.I)
NUM = r"(\d+(?:[.,]\d+)*)"
# "glucose 340 on day 2": a day counted from the injection (day 0 = the injection day); "on days 1-3": the last
POST_INJECTION_DAY = re.compile(rf"\b(?:on |at )?(?:post[- ]?injection )?(?:day|days {NUMBER} ?(?:-|–|to) ?) ?({NUMBER})\b"
                                rf"(?! (?:of|ago))|"
                                rf"\b(?:for (?:the )?(?:first )?)?({NUMBER}) days? (?:after(?:wards?)?|post)\b", re.I)
_POST_INJECTION_DAY_SCREEN = Screen(POST_INJECTION_DAY)  # False only where it cannot match
# the review's relief patterns (4-6 us a sentence each) behind their literal screens (under 1 us)
_RELIEF_PERCENT, _RELIEF_SPAN, _RELIEF_GOOD_SPAN = (Screen(p) for p in (RELIEF_PERCENT_TEXT, RELIEF_SPAN_TEXT,
                                                                       RELIEF_GOOD_SPAN_TEXT))
# Antithrombotics held before a procedure (how long, or since when)
HOLDABLE = frozenset({"anticoagulant", "vitamin-k-antagonist", "antiplatelet"})
HOLD_WORDS = re.compile(r"\b(held|holding|on hold|stopped|discontinued|paused|last dose|off (it|them|\w+ban|warfarin|"
                        r"clopidogrel) )", re.I)
# A medicine the sentence says is no longer taken, the words right after it or right before it (not a hold: the
# anticoagulants and antiplatelets read holds in `_hold`).
_STOP = (r"(?:stopped|discontinued|ceased|d/c'?d|came off|weaned off|tapered off|no longer (?:on|taking|takes)|"
         r"finished|completed|course (?:ended|over|done|complete))")
# (only its dose or timing between: "On Xeljanz since Humira was stopped" leaves Xeljanz current)
STOPPED_AFTER = re.compile(rf"(?:(?!\b(?:since|after|because|when|and|but|while|as|then|so|until|before|for)\b)[^.;,]){{0,25}}?"
                           rf"(?:,\s*)?\b(?:was |were |has been |had been |now )?{_STOP}\b", re.I)
# How a medicine is taken, the words right after its name up to the clause's end ("7.5 mg daily", "dose pack,
# 6-day taper"): the note's dosage text, as Dosage.text is in FHIR (a short course is not long-term use)
INTOLERANCE = re.compile(r"\bintoleran(?:ce|t)\b", re.I)
NO_REACTION = re.compile(r"\b(?:no|not|without|denies|denied|nor)\b[^.;,]*(?:,\s*(?:or|nor)\b[^.;,]*)*", re.I)
DOSAGE_TAIL = re.compile(r"((?:(?!\b(?:and|but|also|plus|with)\b)(?:[^.;,+\n]|\.(?=\d))){0,40})", re.I)
STOPPED_BEFORE = re.compile(rf"\b{_STOP}\s+(?:(?:the|her|his|their)\s+)?$", re.I)
# "INR goal 2.5-3.5", "INR target range 2-3", "target INR 2.0 to 3.0", "goal INR 2.5-3.5"
INR_TARGET = re.compile(r"\binr\b[^.;\d]{0,12}\b(?:goal|target|therapeutic range|range)\b[^.;\d]{0,12}"
                        r"\d(?:\.\d+)?\s*(?:-|–|to)\s*(?P<hi>\d(?:\.\d+)?)|"
                        r"\b(?:goal|target)\s+inr\b[^.;\d]{0,12}\d(?:\.\d+)?\s*(?:-|–|to)\s*(?P<hi2>\d(?:\.\d+)?)", re.I)
KL_GRADE = re.compile(r"\b(?:kl|k-l|kellgren[- ]lawrence)(?: grade)?\s*(?:of |= ?|: ?)?([0-4])\b(?![./]\d)|"
                      r"\bgrade ([0-4]) (?:kl|k-l|kellgren)", re.I)
_KL_SCREEN = re.compile(r"\bk-?l\b|kellgren", re.I)
HOLD_FOR_DAYS = re.compile(rf"\b(?:for|x|since|×)\s*({NUMBER})\s*days?\b|\b({NUMBER})\s*days?\s+ago\b", re.I)
# "HbA1c 8.1", "INR was 3.2", "sugars were in the 300s", "glucose running up to 320"
VALUE_AFTER = re.compile(rf"^[\s:=]*(?:(?:of|was|were|is|are|at|=|:|-|now|today|today's|level|running|ran|up to|as high as|"
                         # when it was taken, between the name and the value: "INR this morning 1.6", "A1c last week 9.2"
                         rf"this (?:morning|am|afternoon|evening)|yesterday|last (?:week|night)|earlier(?: today)?|"
                         rf"on (?:arrival|admission)|at triage|checked|drawn|measured|rechecked|repeat|"
                         rf"in the(?: high| low| mid)?|"
                         rf"(?:at )?home|ranging(?: from)?|between|averaging|mostly)\s*){{0,3}}[<>~≈]?\s*{NUM}(?:'?s\b)?"
                         r"\s*(%|mmol/mol|mg/dl|mg/dL|mmol/l|mmol/L|mg/l|mg/L|mm/hr?|mm/h|x ?10\^?9/l|x ?10\^?9/L|10\^9/L|"
                         r"x ?10\^?3/ul|K/uL|k/ul|/ul|/uL|/mm3|°\s?C|°\s?F|deg ?C|deg ?F|C\b|F\b|ratio|kgs?\b|lbs?\b)?", re.I)
# a later value of the same test, with its own unit and date ("HbA1c 7.1% in 2024, 10.2% last month"): only dates,
# commas and linking words between, and a date or the clause's end after it (never "5% weight loss")
_DATEISH = (r"(?:then|now|and|but|was|is|in|on|of|at|last|this|ago|prior|previously|recently|today|yesterday|"
            r"since|from|to|->|→|\d{1,4}|[/\-.]|jan\w*|feb\w*|mar\w*|apr\w*|may|jun\w*|jul\w*|aug\w*|sep\w*|oct\w*|"
            r"nov\w*|dec\w*|weeks?|months?|years?|days?|wks?|mos?|yrs?|[()])")
VALUE_AGAIN = re.compile(rf"(?P<gap>(?:[\s,;]*{_DATEISH})*?[\s,;>→(]+)(?<![\d.,/]){NUM}\s*(?P<unit>%|mmol/mol|mg/dl|"
                         r"mmol/l|mg/l)(?=\s*(?:$|[,;.)]|\s(?:(?:in|on|last|this|now|today|at|from)\b|\d|\()))", re.I)
# more values of the same test before the unit that closes the list ("sugars 15.2, 16.8 and 17.1 mmol/L")
# the same for a unitless result such as an INR ("INR 2.4 last week, 3.6 today", "INR 4.1 on 6/1, repeat 2.6 on 6/8")
VALUE_AGAIN_BARE = re.compile(rf"(?P<gap>(?:[\s,;]*(?:{_DATEISH}|repeat|recheck(?:ed)?|rpt))*?[\s,;>→(]+)(?<![\d.,/]){NUM}"
                              r"(?=\s*(?:$|[,;.)]|\s(?:(?:in|on|last|this|now|today|yesterday|at|from)\b|\d|\()))", re.I)
# the upper end of a range of readings right after the first ("250-350", "14 to 19 mmol/L", "250s-300s"); not a
# duration ("7.2 - 3 days ago") nor a date ("250 - 6/1")
RANGE_AFTER = re.compile(rf"\s*(?:-|–|—|to)\s*{NUM}(?:'?s\b)?"
                         r"(?!\s*(?:days?|d\b|weeks?|wks?|months?|years?|yrs?|hours?|hrs?|h\b|/|\.\d))"
                         r"\s*(?P<unit>mg/dl|mmol/l)?(?![\w/])", re.I)
VALUE_LIST = re.compile(rf"(?P<values>(?:\s*(?:,|and|or|then|to)\s*{NUM}){{1,5}})\s*"
                        rf"(?P<unit>mmol/l|mg/dl|mg/l|mm/hr?|%)(?![\w/])", re.I)
BARE_TEMP = re.compile(r"(?<![\d.])(\d{2,3}(?:\.\d)?)\s?(°\s?[CF]|deg ?[CF]|[CF])\b")
PAIN = re.compile(rf"(?<![/\d.])\b({NUMBER})\s?(?:/|out of)\s?10\b(?![/\d])", re.I)
PAIN_FROM_TO = re.compile(rf"\bpain (?:(?:has |have |is |now |went |came |gone |come )?(?:dropped|fell|decreased|improved|"
                          rf"reduced|down|better|settled|eased|went|came)(?: down)? )?from ({NUMBER}) ?"
                          rf"(?:/ ?10 )?(?:to|down to|->|=>|→) ?({NUMBER})(?: ?/ ?10)?|"
                          rf"\bpain (?:score )?({NUMBER}) ?(?:/ ?10)? ?(?:->|=>|→|-->) ?({NUMBER})(?: ?/ ?10)?", re.I)
_PAIN_FROM_TO = Screen(PAIN_FROM_TO)  # the per-sentence check, behind its literal screen
# "pain 3/10 from 7/10", "pain now 3 (from 7)": today's score first, the baseline after "from"
PAIN_NOW_FROM = re.compile(rf"\bpain (?:is |now |today |of )*({NUMBER}) ?/ ?10,? \(?(?:down |up |improved |reduced |better |"
                           rf"worse |increased |higher )?(?:from|was) ({NUMBER}) ?(?:/ ?10)?", re.I)
# the same without the word pain, where both scores are out of 10: "much worse since then, 9/10 from 6/10"
PAIN_NOW_FROM_BARE = re.compile(rf"\b({NUMBER}) ?/ ?10,? \(?(?:down |up |improved |reduced |better |worse |increased |higher )?"
                                rf"from ({NUMBER}) ?/ ?10\b", re.I)
HOURS_AFTER = re.compile(rf"\s*,?\s*(?:(?:for |at |within |in |after )?(an?|one|{NUMBER}) ?(hours?|hrs?|h|minutes?|mins?)\b"
                         r"(?: (?:after|later|post|afterwards))?|(immediately|right|just) (?:after|afterwards|post))", re.I)
BACK_TO = re.compile(rf"\b(?:back (?:up )?to|returned to|rose to|up to) ({NUMBER})(?:/10)?", re.I)
# a rise in pain placed in the first days after the injection, told at a later visit
FLARE_DAYS = re.compile(r"\b(for|over|during) (the )?(first )?(1|2|3|one|two|three|a couple of|couple of|a few|few) days?\b|"
                        r"\bnext (day|morning)\b|\bthat (night|evening)\b|\bdays? (1|2|3|one|two|three) (after|post)\b", re.I)
# surgery talked about but not booked
TENTATIVE = re.compile(r"\b(consider(ing|s|ed)?|discuss(ed|ing)|may need|might need|will (likely|probably|eventually) need|"
                       r"eventually|in the future|some ?day|down the road|not yet (booked|scheduled)|thinking about|"
                       r"wishes to (delay|defer|postpone)|wants to (delay|defer|postpone)|candidate for|"
                       # a surgeon's opinion still to come: nothing is booked ("awaiting THA consult")
                       r"(tha|tka|arthroplasty|replacement)\s+(consult(ation)?|opinion|evaluation|assessment|review)|"
                       r"(consult(ation)?|opinion|evaluation|assessment|referr(al|ed)) (for|re:?|about|regarding) "
                       r"(a |an |possible |total )*(tha|tka|arthroplasty|(hip|knee|joint) replacement))\b", re.I)
# a request to repeat the injection the note describes ("requests a fourth today", "wants another")
REPEAT_REQUEST = re.compile(r"\b(another( one| injection| shot)?|a repeat|repeat (it|one|the injection|injection)|"
                            r"a (second|third|fourth|fifth|2nd|3rd|4th|5th)( one| injection| shot)?|one more|the same again)\b",
                            re.I)
NEGATED_LEAD = re.compile(r"\b(no|not(?! (?:sure|certain|clear))|without|denies|denied|deny|nor|never|negative for|"
                          r"free of)\b", re.I)
PRE_INJECTION_LEAD = re.compile(r"\bpre-?(inj(ection)?|procedure|procedural)\b|\b(before|prior to) (the )?(inj|shot|procedure)",
                                re.I)
NOW_IN_SENTENCE = re.compile(r"\b(now|today|currently|at present|this visit|at this visit|at follow[- ]?up)\b", re.I)
# what follows "from A to B" when B was early relief that did not last ("then back to 8", "wore off")
COURSE_AFTER = re.compile(r"\b(then|wore off|wearing off|returned|came back|back (up )?to|rest of (the|that) day|"
                          r"that (day|evening|night)|for (a few|several|\d+|an?|one|two) hours?|briefly|initially|at first)\b",
                          re.I)
WITHIN = re.compile(r"\b(?:within|after|in) (?:an?|one|(\d+)) (minutes?|mins?|hours?|hrs?)\b|\bimmediately\b|\bsame day\b|"
                    r"\b(?:in|for|during|over) the first (?:few |couple of )?(?:hours?|hrs?|minutes?|mins?)\b", re.I)
LATER = re.compile(r"\b(by|in|that|the same) (the )?(evening|night|afternoon)\b|\bnext (day|morning)\b|\bovernight\b", re.I)
# a dose right after a drug's name, past salt and product words ("Celestone Soluspan 6 mg"); not "40 mg/mL"
DOSE_AFTER_NAME = re.compile(rf"[\s(]*(?:(?:acetate|acetonide|hexacetonide|sodium phosphate|phosphate|soluspan|"
                             rf"suspension|injectable|depot)[\s(]*){{0,2}}{DOSE}(?!\s*/)", re.I)
BARE_STEROID_DOSE = re.compile(r"\s*(\d{1,3}(?:\.\d)?)(?=\s*(?:/|\+|,|\)|;|$|and\b|with\b|w/))", re.I)
DATE_HINT = re.compile(r"\d|yesterday|today|ago|last", re.I)
# "pain-free for two hours, then back to 7/10": a 0/10 inside the stated hours (the anaesthetic phase)
PAIN_FREE_HOURS = re.compile(rf"\b(?:pain[- ]free|no pain at all|no pain)\s+for\s+(?:about\s+|around\s+|the first\s+)?"
                             rf"(an?|{NUMBER})\s+(hours?|hrs?|minutes?|mins?)\b", re.I)
INDICATION_FOR = re.compile(r"\bfor\s+(?:[\w/-]+\s+){0,3}$", re.I)  # "... for L S1 radiculopathy"
RESOLVED_TRIGGERS = frozenset({"resolved", "has resolved", "now resolved"})
# a pain score right before a word such as "today" ("7/10 today"): that word dates the score, not an injection
PAIN_SCORE_BEFORE = re.compile(r"\d\s?/\s?10\s*$")
NOW_BEFORE = re.compile(r"\b(now|today|currently)\W*$", re.I)
NOW_WORDS = re.compile(r"\s*(?:/10\s*)?(?:now|today|currently|at present|at this visit)\b", re.I)
AT_WEEKS = re.compile(rf"\b(?:at|after|by|within) ({NUMBER}) (days?|weeks?|wks?|months?)\b", re.I)
AT_WEEKS_LEAD = ("at ", "after ", "by ", "within ")
ESTIMATED = " (date estimated: spread evenly over the stated period)"
UNDATED = " (date not stated)"
PERIOD_FOR = re.compile(rf"\bfor (a|an|{NUMBER}) (days?|weeks?|wks?|months?|mos?)\b", re.I)  # "for a week"
PERIOD_OF = re.compile(rf"\b({NUMBER}) (days?|weeks?|wks?|months?|mos?|years?|yrs?) (?:of|in|with)\b", re.I)
UNIT_DAYS = {"d": 1.0, "w": 7.0, "m": 30.44, "y": 365.25}
# a score held for a stated period ("3/10 for about two weeks", "stayed 2/10 for 7 weeks") ...
RELIEF_PERIOD = re.compile(rf"\s*,?\s*(?:for|lasting|that lasted|which lasted)\s+(?:about |around |roughly |nearly |almost |"
                           rf"approximately |approx\.? |~ ?|the (?:first|next) )?(a|an|{NUMBER})\s+"
                           rf"(days?|weeks?|wks?|months?|mos?)\b", re.I)
# ... and then a change told after it in the sentence: the period was a past phase after the injection, not today
CHANGE_AFTER = re.compile(r"\b(then|now|again|back|wore off|wearing off|returned|came back|crept|recurred|since|today|"
                          r"currently|gradually)\b|\d\s?/\s?10\b", re.I)
TEXT_MEMO_SIZE = 4096  # sentences and clauses whose own reading is kept (per extractor, least recently used out)


@dataclass(slots=True)
class NoteInput:
    """One note: plain text, the ref its items hang off, and the date its relative dates count from."""

    text: str
    source: str
    when: date
    horizon: date | None = None  # the as-of day: a later entry in the note is not seen (None: the note's date)


class _InjectionFacts(NamedTuple):
    """What one clause says about an injection given, read from its text alone (see `_past_injection`)."""

    targets: tuple[Target, ...]
    agents: tuple[tuple[Drug, float | None, str], ...]
    named: bool  # a target, a steroid or steroid words: an injection this reader can record
    dated_part: str
    count: int | None
    since_year: int | None
    span: tuple[float, int] | None
    side: str | None
    guidance: str | None
    outside: bool
    fail: bool
    good: bool
    quote: str  # the sentence, whitespace collapsed


@dataclass(slots=True)
class _PainMention:
    value: float
    anchor: str  # "before", "after-hours", "at-days", "date", "note"
    offset_days: float
    when: datetime | None
    prov: Provenance
    side: str = ""  # the one side the sentence speaks of ("Left lateral hip pain 7/10 before, 2/10 now")


@dataclass(slots=True)
class _State:
    rec: PatientRecord
    note: NoteInput
    n: int = 0
    injections: list[Procedure] = field(default_factory=list)
    pains: list[_PainMention] = field(default_factory=list)
    plans: list[tuple[ServiceRequest, list[MedicationUse], bool]] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    therapy_stated: bool = False  # the note says whether conservative care was tried (either way)
    repeat_requested: Provenance | None = None  # the sentence asking to repeat the last injection
    # the conditions this note may repeat, by (concept, refuted): (index in rec.conditions, sentence span)
    said: dict[tuple[str, bool], list[tuple[int, int, int]]] = field(default_factory=dict)
    said_upto: int = 0  # rec.conditions[:said_upto] are in `said`
    offsets: list[int] | None = None  # read text -> note text offsets when spacing was normalised (else same)
    later_entry: bool = False  # an addendum dated after the note's date began: the rest is not seen

    def at(self, pos: int) -> int:
        """The note's own offset of a read-text offset (`pos` may be the text's end)."""
        o = self.offsets
        return pos if o is None else o[pos]

    def dates(self, text: str, future: bool = False) -> tuple[DateHit, ...]:
        """`find_dates` against the note's date (memoised by text, date and direction: several readers look
        at the same sentence, and sentences recur across notes). Read-only: callers filter into new lists."""
        return _dates(text, self.note.when, future)

    def ref(self, kind: str) -> str:
        self.n += 1
        return f"{self.note.source}#{kind}{self.n}"


class NoteExtractor:
    """Reads notes with one knowledge base; the cues and drug/target patterns are compiled once."""

    def __init__(self, kb: Knowledge) -> None:
        self.kb = kb
        self.cues: Cues = load_cues()
        concepts = kb.terminology.concepts
        for name in (*self.cues.persistent, *self.cues.medication_concepts, *self.cues.handled_elsewhere,
                     *(c for c, _ in self.cues.labs)):
            if name not in concepts:
                raise KnowledgeError(f"notes.yaml: unknown concept {name!r}")
        self.steroids = [d for d in kb.drugs.values() if d.kind == "corticosteroid"]
        self.unspecified = kb.drugs.get("corticosteroid-unspecified")
        self.agents = [d for d in kb.drugs.values() if d.kind in ("corticosteroid", "anesthetic")]
        # drug and target patterns behind literal screens: a clause runs only the few that could match
        self._screens: dict[str, tuple[Screen, ...]] = {}
        self._target_screens = [(kb.targets[tid], self._screened(kb.targets[tid].text)) for tid in kb.target_order]
        self._agent_screens = [(d, self._screened(d.text)) for d in self.agents]
        self._steroid_screens = [scr for d in self.steroids for scr in self._screened(d.text)]
        # each set's literal screens checked together on a clause (one substring test per distinct literal)
        self._target_group = ScreenGroup(scr for _, screens in self._target_screens for scr in screens)
        self._agent_group = ScreenGroup(scr for _, screens in self._agent_screens for scr in screens)
        self._steroid_group = ScreenGroup(self._steroid_screens)
        # a cheap keyword screen for sentences that may state a lab or a temperature (the exact lab patterns
        # from notes.yaml run only on those)
        lab_names = (r"inr|a1c|glucose|sugar|weigh|\bwt\b|\bc?bgl?s?\b|\bbsls?\b|crp|reactive|esr|\bsed|wbc|wcc|white|leuko|"
                     r"platelet|"
                     r"plt|temp|tmax|fingerstick|glycated|\bt \d|\d ?°|\d ?[cf]\b")
        steroid_names = "|".join(f"(?:{p.pattern})" for d in self.steroids for p in d.text)
        prefilters = {name: re.compile(pat.pattern) for name in PREFILTER if (pat := self.cues.joined.get(name)) is not None}
        prefilters.update(lab=re.compile(lab_names), block=BLOCK_WORD, steroid=re.compile(steroid_names))
        self.prefilters = {name: Scanner(p) for name, p in prefilters.items()}  # the same hits, fewer regex calls
        self.screens = SentenceScreens(self.prefilters)  # which prefilters match in each sentence (memoised)
        # what a sentence or clause says on its own (text + knowledge only), memoised: sentences recur
        # across notes; bounded, never keyed on a whole note
        self._has = lru_cache(maxsize=TEXT_MEMO_SIZE)(self.cues.has)
        self._injection_clauses = lru_cache(maxsize=TEXT_MEMO_SIZE)(self._find_injection_clauses)
        self._target_memo = lru_cache(maxsize=TEXT_MEMO_SIZE)(self._find_targets)
        self._agent_memo = lru_cache(maxsize=TEXT_MEMO_SIZE)(self._find_agents)
        self._steroid_memo = lru_cache(maxsize=TEXT_MEMO_SIZE)(self._find_steroid)
        self._lab_memo = lru_cache(maxsize=TEXT_MEMO_SIZE)(self._read_labs)
        self._pain_memo = lru_cache(maxsize=TEXT_MEMO_SIZE)(self._read_pain)
        self._facts_memo = lru_cache(maxsize=TEXT_MEMO_SIZE)(self._injection_facts)
        self._text_memo = lru_cache(maxsize=TEXT_MEMO_SIZE)(self._read_text)
        self._told_memo = lru_cache(maxsize=TEXT_MEMO_SIZE)(self._outcome_told)
        self._rated_memo = lru_cache(maxsize=TEXT_MEMO_SIZE)(outcome_measure_mark)

    def clear_memos(self) -> None:
        """Empty every per-sentence and per-clause memo (this extractor's, the language layer's, the dates'):
        the next note is read afresh (benchmarks, tests)."""
        for memo in (self._has, self._injection_clauses, self._target_memo, self._agent_memo, self._steroid_memo,
                     self._lab_memo, self._pain_memo, self._facts_memo, self._text_memo, self._told_memo,
                     self._rated_memo, _squeeze, _mask_instruments, _dates):
            memo.cache_clear()
        self.screens.memo.clear()
        self.screens.door.clear()
        self.kb.terminology.sentences.clear()

    def _screened(self, patterns: tuple[re.Pattern[str], ...]) -> tuple[Screen, ...]:
        key = "\0".join(f"{p.flags}:{p.pattern}" for p in patterns)
        if key not in self._screens:
            self._screens[key] = tuple(Screen(p) for p in patterns)
        return self._screens[key]

    # ---- entry --------------------------------------------------------------------------------
    def add(self, rec: PatientRecord, note: NoteInput) -> _State:
        """Add the note's facts to the record; returns what was added and what the note stated."""
        spaced, offsets = normalize_spacing(note.text)
        text = unwrap(spaced)
        analysis = analyze(text, self.kb)
        st = _State(rec, note, offsets=offsets)
        low = text.lower()  # prefilters scan lower-cased text without IGNORECASE: several times faster
        near = self.screens.near(low, [(s.start, s.end) for s in analysis.sentences])
        by_sentence: dict[int, list[Mention]] = {}
        for m in analysis.mentions:
            by_sentence.setdefault(m.sentence, []).append(m)
        self._demographics(st, spaced)
        for i, s in enumerate(analysis.sentences):
            self._sentence(st, s, by_sentence.get(i, []), near[i])
        self._resolve_pain(st)
        if rec.patient.sex is None and any(m.concept == "pregnancy" and m.asserted for m in analysis.mentions):
            rec.patient.sex = "female"  # a pregnancy the note asserts settles it
        self._finish_plan(st)
        return st

    def _prov(self, st: _State, s: Sentence) -> Provenance:
        return Provenance(st.note.source, _squeeze(s.text), st.at(s.start), st.at(s.end),
                          datetime(st.note.when.year, st.note.when.month, st.note.when.day))

    def _keep(self, st: _State, ref: str, prov: Provenance) -> None:
        st.rec.provenance[ref] = prov
        st.added.append(ref)

    @staticmethod
    def _day(d: date) -> datetime:
        return datetime(d.year, d.month, d.day)

    # ---- demographics -------------------------------------------------------------------------
    def _demographics(self, st: _State, text: str) -> None:
        p = st.rec.patient
        head = text[:400]
        if p.birth_date is None:
            m = BIRTH.search(head)
            if m:
                hit = next(iter(find_dates(head[m.end():m.end() + 24], st.note.when)), None)
                if hit is not None and hit.start <= 2 and hit.precision == "day" and hit.when.date() <= st.note.when:
                    p.birth_date = hit.when.date()
        if p.birth_date is None:
            m = AGE.search(head) or AGE_SHORT.search(head)
            age = int(next(g for g in m.groups() if g)) if m else 0
            if 0 < age < 120:
                d = st.note.when
                try:
                    p.birth_date = d.replace(year=d.year - age)
                except ValueError:  # 29 February
                    p.birth_date = d.replace(year=d.year - age, day=28)
        if p.sex is None:
            m = SEX.search(head)
            if m:
                w = (m.group(1) or m.group(2)).lower()
                p.sex = "male" if w in ("m", "male", "man", "gentleman") else "female"
            else:
                she, he = _pronouns(text)
                if she != he:
                    p.sex = "female" if she > he else "male"

    # ---- one sentence -------------------------------------------------------------------------
    def _sentence(self, st: _State, s: Sentence, ms: list[Mention], near: frozenset[str]) -> None:
        """`near`: the prefilters with a match starting inside this sentence (`SentenceScreens`)."""
        text = s.text
        cues = self.cues
        has = self._has
        if st.later_entry or self._dated_after_note(st, text):
            return  # an event (or addendum) dated after the note's own date: not known as of that date
        prov = self._prov(st, s)
        is_allergy = "allergy" in near
        injection_clauses: tuple[str, ...] = ()
        inj_text = text
        if "injection" in near or "steroid" in near or "block" in near:
            # an instrument's name ("Oxford Hip Score ... before the injection") names no injection's target
            inj_text = _mask_instruments(text)
            injection_clauses = self._injection_clauses(inj_text)
        future_surgery = "future" in near
        if is_allergy:
            self._allergy(st, text, prov, ms)
        described = len(st.injections)
        for clause in injection_clauses:
            if has("no_injection", clause):
                continue
            if st.injections and INJECTION_REFERENCE.search(clause) and all(h.relative for h in st.dates(clause)) \
                    and not self._facts_memo(clause, inj_text).agents:
                continue  # "hip pain 8/10 before the injection": the injection already described, not another
            if has("plan", clause):
                self._plan(st, clause, prov)
            else:
                self._past_injection(st, clause, prov, inj_text)
        if not injection_clauses and has("plan", text) and REPEAT_REQUEST.search(text):
            st.repeat_requested = prov
        said = self._text_memo(text)
        if not injection_clauses and st.injections and (mark := self._told_memo(text)) is not None:
            # how the injection the note described went, marked as _past_injection marks its own sentence
            # ("Feels 80% better": the patient's own rating, read by the review when scores are missing)
            # "None gave lasting relief", "each helped a few days": every injection the note described
            told = st.injections if has("all_of_them", text) else st.injections[-1:]
            for inj in told:
                inj.notes += " " + _squeeze(text) + mark
        elif st.injections and len(st.injections) == described and anesthetic_phase_told(text):
            # "No relief even in the first hours after the injection", "the lidocaine did nothing": how the
            # anaesthetic phase of the injection the note described went (the review reads it)
            st.injections[-1].notes += " " + _squeeze(text)
        if st.injections and said.digit:
            rated = self._rated_memo(text)
            if rated:  # "Oxford Hip Score 18/48 before, 34/48 today": how the latest injection went, rated
                st.injections[-1].notes += " " + _squeeze(text) + rated
        if "lab" in near:
            self._labs(st, text, prov)
            self._inr_target(st, text, prov)
        if said.kl:
            self._kl_grade(st, text, prov)
        self._pain(st, text, prov)
        has_injection = bool(injection_clauses)
        arthroplasty_future = False
        for m in ms:
            if m.concept in cues.arthroplasty_concepts:
                arthroplasty_future |= self._surgery(st, m, text, prov, future_surgery)
        risky = [(s.start + a, s.start + b) for a, b in said.risky]
        for m in ms:
            if m.family or m.hypothetical or any(a <= m.start < b for a, b in risky):
                continue
            c = m.concept
            if c == "exercise-therapy":
                continue
            if c in cues.handled_elsewhere:
                continue
            if c in cues.imaging_concepts:
                self._imaging(st, m, text, prov)
                continue
            if c in cues.medication_concepts:
                if is_allergy or (has_injection and c == "systemic-corticosteroid"):
                    continue
                self._medication(st, m, prov, text, s.start)
                continue
            if arthroplasty_future and c.startswith("prosthetic-"):
                continue  # a replacement still to come is not a prosthesis yet
            # "epidural on 10/7 for L S1 radiculopathy": the reason for the injection was there before it
            known = st.injections[-1].start if has_injection and st.injections else None
            rel = m.start - s.start
            reason = known is not None and rel > 0 and INDICATION_FOR.search(text[max(0, rel - 30):rel]) is not None
            self._condition(st, m, text, prov, known - timedelta(days=1) if reason and known is not None else None)
        therapy = [m for m in ms if m.concept == "exercise-therapy"]
        if therapy or "no_treatment" in near:
            st.therapy_stated = True
        if therapy:
            self._therapy(st, therapy, text, prov, s.start)
        if "joint_fluid" in near and said.digit:
            self._joint_fluid(st, text, prov)

    def _dated_after_note(self, st: _State, text: str) -> bool:
        """A sentence telling of an event on a stated day after the as-of day ("Addendum 06/20/2026:
        patient called ...", "On 4/2/2026 she developed a fever"): a later entry, unknown as of that day.
        A plan or booking names future days on purpose and is read as usual. An addendum heading hides the rest
        of the note too."""
        if not self._text_memo(text).may_date_later:
            return False
        day = max(st.note.when, st.note.horizon or st.note.when)
        later = [h for h in st.dates(text) if h.precision == "day" and not h.relative and h.when.date() > day]
        if later and LATER_ENTRY.match(text):
            st.later_entry = True
        return bool(later)

    def _read_text(self, text: str) -> _SaidInText:
        """What `_sentence` checks in a sentence's words alone (memoised: sentences recur across notes)."""
        digit = _HAS_DIGIT.search(text) is not None
        later = digit and not self._has("plan", text) and not self._has("future", text) and not INTENT.search(text)
        return _SaidInText(digit, _KL_SCREEN.search(text) is not None, tuple(_risk_clauses(self.cues, text, 0)), later)

    def _outcome_told(self, text: str) -> str | None:
        """The mark for a sentence telling how an injection went ("no lasting benefit", "benefit reported",
        or "" for a relief percentage or span alone); None when it tells nothing of the kind."""
        has = self._has
        if not (has("no_benefit", text) or has("benefit", text) or _RELIEF_PERCENT.found(text)
                or ((_RELIEF_SPAN.could_match(text) or _RELIEF_GOOD_SPAN.could_match(text))
                    and relief_span_days(text) is not None)):
            return None
        return " (no lasting benefit)" if has("no_benefit", text) else " (benefit reported)" if has("benefit", text) else ""

    # ---- problems and findings ----------------------------------------------------------------
    def _condition(self, st: _State, m: Mention, text: str, prov: Provenance, before: datetime | None = None) -> None:
        """`before`: the mention is the reason for an injection the sentence dates: on record before it."""
        if _said_before(m, st):
            return
        ref = st.ref("c")
        verification = "refuted" if m.negated else ("provisional" if m.possible else "confirmed")
        status = "active"
        onset = None
        if m.historical and not m.historical_counts and m.concept not in self.cues.persistent:
            status = "resolved"
        elif m.historical and m.concept in self.cues.resolvable and RESOLVED_TRIGGERS & {t.lower() for t in m.triggers}:
            status = "resolved"  # said to be over in so many words, however persistent the concept usually is
        if m.historical:
            dates = [h for h in st.dates(text) if not h.relative or h.when.date() < st.note.when]
            if dates:
                onset = dates[0].when
        elif m.concept == "post-injection-flare" and st.injections and st.injections[-1].start is not None \
                and FLARE_DAYS.search(text):
            onset = st.injections[-1].start + timedelta(days=1)  # "worse for 2 days afterwards": then, not today
        if onset is None and before is not None and not m.negated:
            onset = before
        if onset is None and not m.negated and not m.historical and "since" in text.lower():
            # "numbness since August", "since 1 Aug 2026": a symptom present from that day, not first seen today
            since = [h for h in st.dates(text) if h.when.date() <= st.note.when
                     and (SINCE_LEAD.search(text, 0, h.start) or text[h.start:h.start + 6].lower() == "since ")]
            if since:
                onset = since[0].when
        site = " ".join(x for x in (m.side, m.site) if x)
        label = m.matched
        cond = Condition(ref=ref, code=Coded((Coding(CONCEPT_SYSTEM, m.concept, label),), label),
                         clinical_status=status, verification=verification, category="encounter-diagnosis",
                         onset=onset, recorded=self._day(st.note.when), body_site=site)
        st.rec.conditions.append(cond)
        self._keep(st, ref, prov)

    def _medication(self, st: _State, m: Mention, prov: Provenance, text: str = "", base: int = 0) -> None:
        """`text`: the mention's sentence, which starts at offset `base` of the analysed note."""
        if m.negated:
            return
        ref = st.ref("m")
        status, end = ("stopped" if m.historical else "active"), None
        if m.concept in HOLDABLE:
            status, end = self._hold(st, prov.quote, status)
        elif text and (STOPPED_AFTER.match(text, m.end - base) or
                       STOPPED_BEFORE.search(text[max(0, m.start - base - 40):m.start - base])):
            status = "stopped"  # "Humira stopped last year", "discontinued methotrexate": not taken now
        how = DOSAGE_TAIL.match(text, m.end - base).group(1).strip() if text else ""  # "7.5 mg daily", "6-day taper"
        start = self._med_start(st, text, m.end - base) if status == "active" and text else None
        st.rec.medications.append(MedicationUse(ref=ref, medication=Coded((Coding(CONCEPT_SYSTEM, m.concept, m.matched),),
                                                                          m.matched), status=status, start=start,
                                                end=end, dose_text=how))
        self._keep(st, ref, prov)

    def _med_start(self, st: _State, text: str, pos: int) -> datetime | None:
        """When a medicine taken now was started, from the words after its name: "prednisone 10 mg daily since
        2026-05-12", "methotrexate, started 3 weeks ago". None when the sentence does not say."""
        for h in st.dates(text):
            if h.start >= pos and h.when.date() <= st.note.when and MED_SINCE_GAP.match(text[pos:h.start]):
                return h.when
        return None

    def _hold(self, st: _State, text: str, status: str) -> tuple[str, datetime | None]:
        """An anticoagulant or antiplatelet held before the procedure: 'held for 3 days', 'last dose 4/28',
        'stopped 5 days ago'. The day of the last dose is the hold's start; a hold with no day stays
        'on hold, since when not documented' (not enough to count as held)."""
        hold = HOLD_WORDS.search(text)
        done = self._has("course_done", text)
        if not hold and not done:
            return status, None
        since: datetime | None = None
        days = HOLD_FOR_DAYS.search(text)
        if days and (n := to_number(days.group(1) or days.group(2))) is not None:
            since = self._day(st.note.when - timedelta(days=n))
        else:
            # the hold runs from the last dose, the earliest day the sentence gives ("held since 3/9 (last dose
            # 3/8) for the ESI today" held from 3/8; "today" is the procedure, not the hold's start)
            dates = [h for h in st.dates(text) if h.when.date() <= st.note.when]
            last = self.cues.first("last_dose", text)
            after_last = [h for h in dates if last and 0 <= h.start - last.end() < 25]
            since = after_last[0].when if after_last else (min(h.when for h in dates) if dates else None)
        if since is not None and (st.note.when - since.date()).days > self.kb.p("antithrombotic_discontinued_after_days"):
            return "stopped", since  # "warfarin stopped in 3/2025": discontinued, not held for this procedure
        if since is None and done and not hold:
            return "stopped", None  # "warfarin for 6 months, course completed": a finished course, not a hold
        return "on-hold", since

    # ---- labs and vital signs -----------------------------------------------------------------
    def _labs(self, st: _State, text: str, prov: Provenance) -> None:
        labs = self._lab_memo(text)
        for k, (concept, label, value, unit, pos) in enumerate(labs):
            # a value's date lies before the next value of the same test ("7.1% in 2024, 10.2% last month")
            nxt = next((q for c2, _, _, _, q in labs[k + 1:] if c2 == concept and q > pos), None)
            self._observation(st, concept, label, value, unit, self._date_near(st, text, pos, nxt), prov)

    def _inr_target(self, st: _State, text: str, prov: Provenance) -> None:
        """The patient's own INR target range ("INR goal 2.5-3.5", "target INR 2-3"): its upper end."""
        m = INR_TARGET.search(text)
        if m is not None:
            upper = float(m.group("hi") or m.group("hi2"))
            if 1 < upper < 5:
                self._observation(st, "inr-target-upper", "INR target range (upper end)", upper, "",
                                  self._day(st.note.when), prov)

    def _read_labs(self, text: str) -> tuple[tuple[str, str, float, str, int], ...]:
        """(concept, label, value, unit, position) of each lab value or temperature a sentence states, in
        order: text alone decides them (memoised); their dates depend on the note (`_labs`)."""
        out: list[tuple[str, str, float, str, int]] = []
        if not _HAS_DIGIT.search(text):
            return ()
        joint_fluid = self._has("joint_fluid", text)
        done: set[str] = set()
        taken: list[tuple[int, int]] = []
        for concept, pats in self.cues.labs:
            if concept == "wbc" and joint_fluid:
                continue
            for pat in pats:
                for m in pat.finditer(text):
                    if concept in done or any(a <= m.start() < b for a, b in taken):
                        continue
                    v = VALUE_AFTER.match(text[m.end():m.end() + 40])
                    if not v:
                        continue
                    value = _num(v.group(1))
                    if value is None:
                        continue
                    raw, end, more, label = v.group(2) or "", m.end() + v.end(), [], m.group(0)
                    rng = RANGE_AFTER.match(text, end) if not raw and concept in self.cues.range_labs else None
                    hi = _num(rng.group(1)) if rng else None
                    if rng and hi is not None and hi > value:  # a range of readings: its upper end (see notes.yaml)
                        label = f"{m.group(0)} {v.group(1)}-{rng.group(1)} (upper end of the range)"
                        value, raw, end = hi, rng.group("unit") or "", rng.end()
                    listed = VALUE_LIST.match(text, end) if not raw and not rng else None
                    if listed:  # a list of values shares the unit after its last one: each is a result
                        raw, end = listed.group("unit"), listed.end()
                        more = [x for x in (_num(n) for n in re.findall(NUM, listed.group("values"))) if x is not None]
                    unit = self._unit(concept, raw, value)
                    if unit is None:
                        continue
                    for x in (value, *more):
                        out.append((concept, label, x, unit, m.start()))
                    bare = not raw and not more and self.kb.terminology.concepts[concept].unit.startswith("{")  # {INR}
                    while (raw or bare) and not more:
                        again = (VALUE_AGAIN if raw else VALUE_AGAIN_BARE).match(text, end)
                        if again is None or "." in again.group("gap").strip(" ,;") or \
                                (raw and again.group("unit").lower() != raw.lower()) or \
                                (bare and not re.search(r"[,;>→]|repeat|recheck|rpt|then|now", again.group("gap"), re.I)):
                            break
                        x2 = _num(again.group(2))
                        if x2 is None or self._unit(concept, again.group("unit") if raw else "", x2) is None or \
                                (bare and not 0 < x2 <= 20):
                            break
                        out.append((concept, m.group(0), x2, unit, again.start(2)))  # dated from its own place
                        end = again.end()
                    done.add(concept)
                    taken.append((m.start(), end))
        if "body-temperature" not in done:
            for m in BARE_TEMP.finditer(text):
                value = float(m.group(1))
                unit = self._unit("body-temperature", m.group(2), value)
                if unit is not None and _plausible_temperature(value, unit):  # "34F" is an age and sex
                    out.append(("body-temperature", "temperature", value, unit, m.start()))
                    break
        return tuple(out)

    def _unit(self, concept: str, raw: str, value: float) -> str | None:
        """The unit as the knowledge base spells it; None when it cannot be read for this concept."""
        c = self.kb.terminology.concepts[concept]
        u = raw.replace(" ", "").replace("x10", "10").replace("deg", "°")
        if concept == "body-temperature":
            if not u:
                return "Cel" if 30 <= value <= 45 else ("[degF]" if 86 <= value <= 113 else None)
            unit = "Cel" if u.upper().endswith("C") else "[degF]"
            return unit if _plausible_temperature(value, unit) else None
        if concept in ("wbc", "platelets") and not u:
            return "/uL" if value > 1000 else ""
        if concept == "glucose" and not u and value < 35:
            return "mmol/L"  # "capillary glucose 16.4": no glucose is that low in mg/dL; mmol/L is the unit meant
        if concept == "body-weight":
            u = u.lower().rstrip("s")
            return {"kg": "kg", "lb": "lb"}.get(u) if u else ("kg" if 20 <= value <= 250 else None)
        if concept == "esr" and u.lower().startswith("mm/h"):
            u = "mm/h"
        if not u or not c.unit:
            return ""
        table = self.kb.units.get(c.unit, {})
        if u == c.unit or u in table:
            return u
        for k in table:
            if k.lower() == u.lower():
                return k
        if u.lower() == c.unit.lower():
            return c.unit
        return None

    def _kl_grade(self, st: _State, text: str, prov: Provenance) -> None:
        """A Kellgren-Lawrence grade ("R hip OA KL 4", "K-L grade 3"): a radiograph was read, and how severe."""
        m = KL_GRADE.search(text)
        if m:
            value = float(m.group(1) or m.group(2))
            self._observation(st, "kl-grade", "Kellgren-Lawrence grade", value, "", self._date_near(st, text, m.start()),
                              prov)

    def _observation(self, st: _State, concept: str, label: str, value: float, unit: str, when: datetime,
                     prov: Provenance, side: str = "") -> None:
        if when.date() > st.note.when:
            return
        timed = when.time() != datetime.min.time()  # an anaesthetic-phase score hours after: its own reading
        for o in st.rec.observations:  # the same value on the same day is already known (coded or earlier)
            if o.when is not None and (o.when == when if timed else o.when.date() == when.date()) and o.value == value and \
                    (not side or not o.body_site or side_of(o.body_site) in (None, side)) and \
                    concept in self.kb.terminology.coded_concepts(o.code) | self.kb.terminology.text_concepts(o.code.all_text()):
                return
        ref = st.ref("o")
        st.rec.observations.append(Observation(ref=ref, code=Coded((Coding(CONCEPT_SYSTEM, concept, label),), label),
                                               when=when, value=value, unit=unit, status="final", body_site=side))
        self._keep(st, ref, prov)

    def _joint_fluid(self, st: _State, text: str, prov: Provenance) -> None:
        """Joint fluid results that make infection suspected (or confirmed) become a finding."""
        cues = self.cues
        what = None
        if self._has("culture_positive", text) and not self._has("culture_negative", text):
            what = ("confirmed", "joint fluid culture positive")
        elif self._has("gram_positive", text) and not self._has("gram_negative", text):
            what = ("provisional", "joint fluid Gram stain positive")
        else:
            m = re.search(rf"(?:wbc|white (?:blood )?cells?|cell count|leukocytes|wcc)[^.;\d]{{0,20}}{NUM}", text, re.I)
            if m:
                v = _num(m.group(1))
                if v is not None and v < 500 and re.search(r"k|10\^?3|thousand", text[m.end():m.end() + 12], re.I):
                    v *= 1000
                if v is not None and v >= cues.joint_fluid_wbc_infection:
                    what = ("provisional", f"joint fluid white cells {v:,.0f}/uL")
        if what is None:
            return
        ref = st.ref("c")
        st.rec.conditions.append(Condition(ref=ref, code=Coded((Coding(CONCEPT_SYSTEM, "joint-infection", what[1]),), what[1]),
                                           clinical_status="active", verification=what[0],
                                           category="encounter-diagnosis", recorded=self._day(st.note.when),
                                           body_site=side_of(text) or ""))
        self._keep(st, ref, prov)

    def _date_near(self, st: _State, text: str, pos: int, limit: int | None = None) -> datetime:
        """The date stated with a value (the nearest after it in the sentence, before `limit` where the next
        value begins, else before it; "day 2" counts from the injection the note describes), else the note's.
        A year alone dates a value only right after it ("HbA1c 9.1% in 2024": its last day)."""
        # the pattern costs ~25 us a window; its literal screen ("day"), ~1 us a sentence, mostly says no
        post = POST_INJECTION_DAY.search(text, pos, pos + 60) if _POST_INJECTION_DAY_SCREEN.could_match(text) else None
        dated = [i.start for i in st.injections if i.start is not None]
        if post and dated and (n := to_number(post.group(1) or post.group(2))) is not None:
            return max(dated) + timedelta(days=n)
        # a measured value is never dated in the future: "6 kg lost in 3 months, ESR 78" is not dated 3 months ahead.
        # A month-only date ("A1c 9.1% (06/2024)") dates the value too: an old value is not today's.
        every = [h for h in st.dates(text) if h.when.date() <= st.note.when and (limit is None or h.start < limit)
                 and not h.start <= pos < h.end]  # the value itself ("unchanged at 7/10") is no date
        hits = [h for h in every if h.precision in ("day", "month")]
        after = [h for h in hits if h.start >= pos]
        year = next((h for h in every if h.precision == "year" and h.start >= pos), None)
        if year is not None and year.start - pos < 30 and (not after or year.start < after[0].start):
            return min(datetime(year.when.year, 12, 31), self._day(st.note.when))
        if after and after[0].start - pos < 60:
            return self._latest_in(after[0], st.note.when)
        before = [h for h in hits if h.end <= pos]
        if before and pos - before[-1].end < 30:
            return self._latest_in(before[-1], st.note.when)
        return self._day(st.note.when)

    def _latest_in(self, hit: DateHit, note_day: date) -> datetime:
        """A stated date as a value's date; a calendar month ("06/2024", "April 2026") is read as its last day
        (or the note's day, if sooner): the latest the value can be, so it is never made older than it may be."""
        if hit.precision != "month" or hit.relative:
            return hit.when
        nxt = (hit.when.replace(day=28) + timedelta(days=4)).replace(day=1)
        return min(nxt - timedelta(days=1), self._day(note_day))

    # ---- pain scores --------------------------------------------------------------------------
    def _pain(self, st: _State, text: str, prov: Provenance) -> None:
        side = ""
        for value, anchor, offset, pos in self._pain_memo(text):
            if not side:
                side = _one_side(text)
            when = self._day(st.note.when) if anchor in ("note", "after-or-note") else (
                self._date_near(st, text, pos) if anchor == "date" else None)
            st.pains.append(_PainMention(value, anchor, offset, when, prov, side))

    def _read_pain(self, text: str) -> tuple[tuple[float, str, float, int], ...]:
        """(score, anchor, offset, position) of each pain score a sentence states, in order: text alone
        decides them (memoised); a score dated by its sentence is dated per note (`_pain`)."""
        if "/100" in text and PAIN_OR_VAS.search(text):
            text = _vas_to_nrs(text)
        low = text.lower()
        free = PAIN_FREE_HOURS.search(text) if "pain" in low else None
        if "/10" not in low and "out of 10" not in low and not free and not _PAIN_FROM_TO.found(text, low):
            return ()
        out: list[tuple[float, str, float, int]] = []
        if free:
            n = 1.0 if free.group(1).lower() in ("a", "an") else (to_number(free.group(1)) or 1.0)
            hours = n / 60 if free.group(2).lower().startswith("m") else n
            out.append((0.0, "after-hours", hours / 2, -1))  # pain-free through the stated hours: 0/10 inside them
        ft = PAIN_FROM_TO.search(text)
        spans: list[tuple[int, int]] = []
        nf = (PAIN_NOW_FROM.search(text) or PAIN_NOW_FROM_BARE.search(text)) if not ft and ("from" in low or "was" in low) \
            else None
        if nf:
            now, before = to_number(nf.group(1)), to_number(nf.group(2))
            if before is not None:
                out.append((before, "before", 0, -1))
            if now is not None:
                out.append((now, "note", 0, -1))
            spans.append(nf.span())
        if ft:
            a = to_number(ft.group(1) or ft.group(3))
            b = to_number(ft.group(2) or ft.group(4))
            rest = text[ft.end():ft.end() + 40]
            weeks = AT_WEEKS.match(rest.strip()) if rest.strip().lower().startswith(AT_WEEKS_LEAD) else None
            w = WITHIN.search(rest)
            hours = 1.0
            if w and w.group(2):
                n = float(w.group(1) or 1)
                hours = n / 60 if w.group(2).lower().startswith("m") else n
            if a is not None:
                out.append((a, "before", 0, -1))
            if b is not None and weeks:  # "7 -> 2 at 4 weeks"
                days = (to_number(weeks.group(1)) or 0) * UNIT_DAYS[weeks.group(2)[0].lower()]
                out.append((b, "at-days", days, -1))
            elif b is not None and (w or COURSE_AFTER.search(text, ft.end())):
                # "within 10 minutes", "for the rest of that day, then back to 8": the anaesthetic phase
                out.append((b, "after-hours", hours, -1))
            elif b is not None and NOW_IN_SENTENCE.search(text, _clause_start(text, ft.start()), ft.end() + 25) is None:
                # no time said and nothing after it: a procedure note's first hours or a later visit's today
                out.append((b, "after-or-note", hours, -1))
            elif b is not None:  # "pain now down from 7 to 3": today's score
                out.append((b, "note", 0, -1))
            back = BACK_TO.search(text, ft.end())
            if back:
                v = to_number(back.group(1))
                later = LATER.search(text, back.end())
                hrs = 18.0 if later and "next" not in later.group(0).lower() else 30.0
                if v is not None and (NOW_WORDS.match(text, back.end())  # "back to 7 now", "now back to 7"
                                      or NOW_BEFORE.search(text[max(0, back.start() - 10):back.start()])):
                    out.append((v, "note", 0, -1))
                elif v is not None:
                    out.append((v, "after-hours", hrs, -1))
                spans.append((back.start(), back.end()))
            spans.append(ft.span())
        for m in PAIN.finditer(text):
            if any(a <= m.start() < b for a, b in spans):
                continue
            v = to_number(m.group(1))
            if v is None or not 0 <= v <= 10:
                continue
            after = text[m.end():m.end() + 30]
            before_ctx = text[max(0, m.start() - 25):m.start()].lower()
            if re.match(r"\s*(before|pre-?injection|prior|at baseline|baseline)", after, re.I) or "baseline" in before_ctx \
                    or PRE_INJECTION_LEAD.search(before_ctx):
                out.append((v, "before", 0, -1))
                continue
            h = HOURS_AFTER.match(after)
            if h:  # "1/10 an hour after", "2/10 within 30 minutes", "0/10 immediately after": the anaesthetic phase
                count, unit, at_once = h.group(1), (h.group(2) or "h").lower(), h.group(3)
                n = 1.0 if count in (None, "a", "an") else float(to_number(count) or 1)
                hours = 0.25 if at_once else (n / 60 if unit.startswith("m") else n)
                out.append((v, "after-hours", hours, -1))
                continue
            w = AT_WEEKS.match(after.strip()) if after.strip().lower().startswith(AT_WEEKS_LEAD) else None
            if w:
                n = to_number(w.group(1)) or 0
                days = n * UNIT_DAYS[w.group(2)[0].lower()]
                out.append((v, "at-days", days, -1))
                continue
            if re.match(r"\s*(today|now|currently|at present|this visit)", after, re.I):
                out.append((v, "note", 0, -1))
                continue
            per = RELIEF_PERIOD.match(text, m.end())
            if per and CHANGE_AFTER.search(text, per.end()):
                # "3/10 for about two weeks, now 7/10 again": the score held until the period's end after the
                # injection (its relief lasted that long), not today's score
                n = 1.0 if per.group(1).lower() in ("a", "an") else to_number(per.group(1))
                if n is not None:
                    out.append((v, "at-days", n * UNIT_DAYS[per.group(2)[0].lower()], -1))
                    continue
            out.append((v, "date", 0, m.start()))
        return tuple(out)

    def _resolve_pain(self, st: _State) -> None:
        """Scores said relative to the injection ("before", "at 6 weeks") hang off the latest one in the note."""
        anchor = st.injections[-1].start if st.injections else None
        for p in st.pains:
            when: datetime | None
            if p.anchor in ("date", "note") or (p.anchor == "after-or-note" and anchor is None):
                when = p.when
            elif anchor is None:
                continue  # relative to an injection the note does not date: unknown
            elif p.anchor == "before":
                when = anchor
            elif p.anchor == "after-hours" or (p.anchor == "after-or-note" and anchor.date() == st.note.when):
                when = anchor + timedelta(hours=p.offset_days)  # a procedure note: the anaesthetic phase
            elif p.anchor == "after-or-note":
                when = p.when  # a later visit's note: the score now
            else:
                when = anchor + timedelta(days=p.offset_days)
            if when is None or when.date() > st.note.when:
                continue
            self._observation(st, "pain-nrs", "pain score (NRS)", p.value, "{score}", when, p.prov, p.side)

    # ---- allergies ----------------------------------------------------------------------------
    def _allergy(self, st: _State, text: str, prov: Provenance, ms: list[Mention]) -> None:
        if self._has("allergy_negated", text) or not self._allergy_asserted(text):
            return
        if self._has("allergy_other_person", text) and not self._has("allergy_self", text):
            return  # a relative's allergy, not the patient's
        said = NO_REACTION.sub("", text)  # "flushing, no rash or hives": the reaction is the flushing
        reaction = ", ".join(sorted({w.lower() for w in re.findall(
            r"\b(hives|urticaria|rash|anaphylaxis|anaphylactic|angioedema|itching|pruritus|swelling|flushing|wheez\w*|"
            r"shortness of breath|hypotension)\b", said, re.I)}))
        agents: list[str] = []
        low = text.lower()
        for d in self.kb.drugs.values():
            if d.id == "corticosteroid-unspecified":
                continue
            for p in d.text:
                m = p.search(text)
                if m:
                    agents.append(f"{m.group(0)} ({d.label})")
                    break
        for label, pats in self.cues.allergy_classes:
            for p in pats:
                m = p.search(text)
                if m:
                    carriers = [self.kb.drugs[did].label for did, ex in self.cues.excipients.items()
                                if label in ex and did in self.kb.drugs]
                    extra = f"; in {', '.join(carriers)}" if carriers else ""
                    agents.append(f"{m.group(0)} ({label}{extra})")
                    break
        for m in ms:
            if m.concept in self.cues.medication_concepts and not m.negated:
                agents.append(m.matched)
        if not agents and "allerg" in low:
            m2 = re.search(r"allerg(?:y|ic|ies) (?:to )?([a-z][\w-]+)", text, re.I)
            if m2:
                agents.append(m2.group(1))
        side = self.kb.terminology.concepts.get("side-effect-reaction")
        if side is not None and len({a.split(" (")[0].lower() for a in agents}) == 1:
            # one agent named: the side effects the sentence states are its reaction ("Kenalog intolerance -
            # nausea, insomnia"); with several agents the sentence cannot say whose they are, so none are
            words = {w.strip() for w in reaction.split(",") if w.strip()}
            words |= {m.group(0).lower() for p in side.text for m in p.finditer(said)}
            reaction = ", ".join(sorted(words))
        # "intolerance" without "allergy": its recorder's own word for a non-immune reaction (FHIR type)
        kind = "intolerance" if INTOLERANCE.search(text) and "allerg" not in low else None
        seen: set[str] = set()
        for a in agents:
            if a.lower() in seen:
                continue
            seen.add(a.lower())
            ref = st.ref("a")
            st.rec.allergies.append(Allergy(ref=ref, code=Coded((), a), clinical_status="active",
                                            verification="confirmed", recorded=self._day(st.note.when),
                                            reaction=reaction, kind=kind))
            self._keep(st, ref, prov)

    def _allergy_asserted(self, text: str) -> bool:
        """Whether an allergy word in the sentence is said, not denied: "no rash, no hives" after a steroid's
        flushing is a side effect told with its allergy signs ruled out."""
        pat = self.cues.joined.get("allergy")
        if pat is None:
            return True
        for m in pat.finditer(text):
            lead = text[max(0, m.start() - 30):m.start()]
            lead = lead[max(lead.rfind(";"), lead.rfind("."), lead.rfind(":")) + 1:]
            if not NEGATED_LEAD.search(lead):
                return True
        return False

    # ---- injections ---------------------------------------------------------------------------
    def _find_injection_clauses(self, text: str) -> tuple[str, ...]:
        """The clauses of a sentence that name an injection (given or planned)."""
        has = self._has
        return tuple(c for c in _clauses(text) if has("injection", c) or _names_target_event(self, c)
                     or (has("plan", c) and (self._targets(c) or self._steroid_named(c)))
                     or (self._targets(c) and self._steroid_named(c)))  # "R hip IA triamcinolone 40 mg"

    def _targets(self, text: str, st: _State | None = None) -> tuple[Target, ...]:
        """Targets a clause names, in order (memoised by text; `st` is not needed)."""
        return tuple(t for _, t in self._target_memo(text))

    def _target_places(self, text: str) -> tuple[tuple[int, Target], ...]:
        """(where, target) of each target a clause names, in order."""
        return self._target_memo(text)

    def _find_targets(self, text: str) -> tuple[tuple[int, Target], ...]:
        found: list[tuple[int, Target]] = []
        spans: list[tuple[int, int]] = []
        low = text.lower()
        passing = iter(self._target_group.passing(text, low))
        for t, screens in self._target_screens:
            best = None
            for scr in screens:
                if not next(passing):
                    continue
                pattern, string = scr.run(text, low)
                m = pattern.search(string)
                if m and (best is None or m.start() < best[0]):
                    best = (m.start(), m.end())
            # a target named inside an earlier (match order: more specific) target's phrase is that mention
            # ("ESI" in "C6-7 ILESI", "transforaminal" in "cervical transforaminal")
            if best is not None and not any(abs(best[0] - pos) < 3 for pos, _ in found) \
                    and not any(a <= best[0] < b for a, b in spans):
                found.append((best[0], t))
                spans.append(best)
        found.sort(key=lambda x: x[0])
        if len(found) > 1:  # a generic word ("nerve", "hip") inside a more specific target's phrase
            found = [x for x in found if x[1].id not in ("peripheral-nerve",)] or found
        return tuple(found)

    def _steroid_named(self, text: str) -> bool:
        return self._steroid_memo(text)

    def _find_steroid(self, text: str) -> bool:
        low = text.lower()
        return any(ok and (run := scr.run(text, low))[0].search(run[1]) is not None
                   for scr, ok in zip(self._steroid_screens, self._steroid_group.passing(text, low), strict=True))

    def _agents(self, text: str) -> tuple[tuple[Drug, float | None, str], ...]:
        """The steroid and anaesthetic agents a clause names, with their doses (memoised by text)."""
        return self._agent_memo(text)

    def _find_agents(self, text: str) -> tuple[tuple[Drug, float | None, str], ...]:
        out = []
        low = text.lower()
        passing = self._agent_group.passing(text, low)
        k = 0
        for d, screens in self._agent_screens:
            first, k = k, k + len(screens)
            for j, scr in enumerate(screens):
                if not passing[first + j]:
                    continue
                pattern, string = scr.run(text, low)  # only the match's span is read, never its (lower-cased) text
                m = pattern.search(string)
                if not m:
                    continue
                word_end = m.end() + len(re.match(r"[\w-]*", text[m.end():]).group(0))
                tail = DOSE_AFTER_NAME.match(text[word_end:word_end + 40])
                head = re.search(rf"{DOSE}\s*(?:of\s+)?$", text[max(0, m.start() - 16):m.start()], re.I)
                dm = tail or head
                # a number after the generic name is its mg ("methylprednisolone 80/lido"); after a brand it may
                # be the product's strength ("Kenalog 40", "Depo-Medrol 80"): unknown, not guessed
                generic = d.label.lower().startswith(text[m.start():word_end].lower())
                bare = None if dm or d.kind != "corticosteroid" or not generic else \
                    BARE_STEROID_DOSE.match(text[word_end:word_end + 12])
                if dm:
                    out.append((d, float(dm.group(1)), dm.group(2)))
                elif bare and 1 <= float(bare.group(1)) <= 200:  # "methylprednisolone 80/lido": mg by convention
                    out.append((d, float(bare.group(1)), "mg"))
                else:
                    named = text[m.start():word_end + 12]
                    single = next((mg for pat, mg in d.products if pat.match(named)), None)
                    out.append((d, _volume_dose(text, m.start(), m.end(), single), "mg"))
                break
        return tuple(out)

    def _injection_facts(self, clause: str, sentence: str) -> _InjectionFacts:
        """What a clause (in its sentence) says about a given injection, from its text alone (memoised)."""
        agents = self._agents(clause)
        head, colon, _ = clause.partition(":")
        sm = SINCE.search(clause)
        whole = sentence or clause
        fail = self._has("no_benefit", whole)
        return _InjectionFacts(
            targets=self._targets(clause), agents=agents,
            named=bool(self._targets(clause) or any(d.kind == "corticosteroid" for d, _, _ in agents)
                       or re.search(r"steroid|cortisone|cortico", clause, re.I)),
            # "injection ... on 4/20/2026: no relief" is dated before the colon; "Last 12 months: R hip
            # injections 3/17/25, ..." is a label before it (the head names no injection)
            dated_part=head if colon and DATE_HINT.search(head) and (self._has("injection", head) or self._targets(head)
                                                                       or self._steroid_named(head)) else clause,
            count=_count(clause),
            since_year=int(sm.group(1)) if sm else None, span=span_days(clause), side=side_of(clause),
            guidance=next((g for g, p in GUIDANCE_WORDS if p.search(clause)), None),
            outside=self._has("outside", whole), fail=fail, good=self._has("benefit", whole) and not fail,
            quote=" ".join(whole.split()))

    def _past_injection(self, st: _State, clause: str, prov: Provenance, sentence: str = "") -> None:
        f = self._facts_memo(clause, sentence)
        targets, agents = f.targets, f.agents
        if not f.named:
            # "the shot did not work": the injection the note already described
            if st.injections and self._has("no_benefit", clause):
                st.injections[-1].notes += " " + clause
            return
        ref_day = st.note.when
        # "injection ... on 4/20/2026: no relief, still 7/10 today": what follows the colon is the outcome
        dated_part = f.dated_part
        hits = [h for h in st.dates(dated_part) if h.when.date() <= ref_day]
        exact = [h for h in hits if h.precision in ("day", "month") and h.kind != "last"]  # "this year": a period
        if any(not h.relative for h in exact):  # "6 weeks after the injection on 1/19": the stated date wins
            exact = [h for h in exact if h.kind not in ("post_now", "day_post")]
            # "... on 30 Sep 2026 (7/10 before, 7/10 today)": a "today" that dates a pain score is the visit
            exact = [h for h in exact if not (h.kind == "day_word" and PAIN_SCORE_BEFORE.search(dated_part, 0, h.start))]
        count = f.count
        period = f.span if count else None
        if period:  # "three injections in the past year": the period is not itself an injection's date
            exact = [h for h in exact if not (h.relative and period[1] <= h.start < period[1] + 40)]
        # "three injections since 6/2025": that date opens the period the counted injections fall in
        opens = next((h for h in exact if count and count > len(exact)
                      and SINCE_BEFORE.search(dated_part, 0, h.start)), None)
        if opens is not None:
            exact.remove(opens)
        n = max(count or 0, len(exact), 1)
        whens: list[tuple[datetime, str]] = [(h.when, "" if h.precision == "day" else " (month only)") for h in exact][:n]
        # with several targets, a date belongs to the target named last before it ("R hip injections 3/17 and
        # 9/29 and a trochanteric injection 6/23"); counted dates without a place go round the targets
        places = self._target_places(clause) if len(targets) > 1 else ()
        at = {h.when: next((t for p, t in reversed(places) if p <= h.start), places[0][1]) for h in exact} \
            if places else {}
        if len(whens) < n:
            start = opens.when if opens is not None else None
            if f.since_year is not None and start is None:
                start = datetime(f.since_year, 1, 1)
            sp = f.span
            if sp:
                start = self._day(ref_day) - timedelta(days=sp[0])
            if start is None and THIS_YEAR.search(clause):  # "3 shots this year": counted from 1 January
                start = datetime(ref_day.year, 1, 1)
            if start is None:
                years = [h for h in hits if h.precision == "year"]
                if years:
                    start = years[0].when
            if start is None and not whens:
                # no date at all ("an outside injection, date unknown"): on or before the note. Kept, so an
                # interval check says unknown rather than nothing; never counted in a year nor reviewed.
                whens.extend([(self._day(ref_day), UNDATED)] * n)
            if start is not None:
                missing = n - len(whens)
                # "..., the last on 8/15": the others fall before that date, not between it and the note
                last = next((h.when for h in exact if LAST_LEAD.search(dated_part, 0, h.start)), None)
                end = last if last is not None and last > start else self._day(ref_day)
                step = (end - start) / missing
                for k in range(missing):
                    est = start + step * (k + 0.5)
                    whens.append((datetime(est.year, est.month, est.day), ESTIMATED))
        side, guidance, outside, fail, good = f.side, f.guidance, f.outside, f.fail, f.good
        whens.sort(key=lambda w: w[0])
        for i, (when, note) in enumerate(whens):
            known = self._known_injection(st, when, note)
            if isinstance(known, Procedure):  # the coded injection: the note's words on how it went join it
                if (fail or good or RELIEF_PERCENT_TEXT.search(f.quote)) and f.quote not in (known.notes or ""):
                    mark = " (no lasting benefit)" if fail else " (benefit reported)" if good else ""
                    known.notes = " ".join(x for x in (known.notes, f.quote + mark) if x)
                if known not in st.injections:
                    st.injections.append(known)
                continue
            if known:
                continue
            target = at.get(when) or (targets[i % len(targets)] if targets else None)
            bits = [side or "", GUIDANCE_LABEL.get(guidance or "", ""),
                    target.label if target else "", "injection"]
            text = " ".join(b for b in bits if b)
            notes = f.quote + note
            if outside:
                notes += " (given elsewhere)"
            if fail:
                notes += " (no lasting benefit)"
            elif good:
                notes += " (benefit reported)"
            ref = st.ref("p")
            proc = Procedure(ref=ref, code=Coded((), text), status="completed", start=when, body_site=side or "",
                             notes=notes, date_estimated=note.startswith(ESTIMATED), date_unknown=note == UNDATED)
            st.rec.procedures.append(proc)
            st.injections.append(proc)
            self._keep(st, ref, prov)
            given = agents or ([(self.unspecified, None, "mg")] if self.unspecified else [])
            for d, dose, unit in given:
                aref = st.ref("d")
                st.rec.administrations.append(MedicationAdministration(
                    ref=aref, medication=Coded((), d.label), when=when, dose_value=dose, dose_unit=unit,
                    part_of=(ref,), status="completed"))
                self._keep(st, aref, prov)

    def _known_injection(self, st: _State, when: datetime, note: str) -> Procedure | bool:
        """A coded injection near that date is the same event: the coded one is more specific (returned, so
        what the note says of it joins it). True: counted injections the coded record already holds."""
        tol = 3 if not note else (31 if "month" in note else 0)
        if note == UNDATED:  # "the injection did not help": the record's (or this note's) dated injection
            return bool(st.injections) or any(p.start is not None and _is_injection(p) for p in st.rec.procedures)
        if "estimated" in note:
            return any(p.start is not None and not p.ref.startswith(st.note.source) and _is_injection(p)
                       for p in st.rec.procedures)
        for p in st.rec.procedures:
            if p.start is None or p.ref.startswith(st.note.source) or not _is_injection(p):
                continue
            if abs((p.start - when).days) <= tol:
                return p
        return False

    # ---- the planned injection ----------------------------------------------------------------
    def _plan(self, st: _State, clause: str, prov: Provenance) -> None:
        targets = self._targets(clause, st)
        ref = st.ref("sr")
        sr = ServiceRequest(ref=ref, code=Coded((), clause.strip()), status="draft", intent="order",
                            authored=self._day(st.note.when))
        meds = []
        # "each side", "per knee": the doses are per side (the bilateral day's total is twice them)
        per_side = "per side" if PER_SIDE.search(clause) else ""
        for d, dose, unit in self._agents(clause):
            mref = st.ref("mr")
            meds.append(MedicationUse(ref=mref, medication=Coded((), d.label), status="draft", intent="order",
                                      dose_value=dose, dose_unit=unit if dose is not None else "", reason_refs=(ref,),
                                      dose_text=per_side))
        st.plans.append((sr, meds, bool(targets)))
        self._keep(st, ref, prov)
        for m in meds:
            self._keep(st, m.ref, prov)

    def _finish_plan(self, st: _State) -> None:
        if not st.plans and st.repeat_requested and st.injections:
            self._repeat_plan(st)
        if not st.plans or any(s.status == "draft" for s in st.rec.service_requests if not s.ref.startswith(st.note.source)):
            return
        with_target = [p for p in st.plans if p[2]]
        sr, meds, _ = (with_target or st.plans)[-1]
        st.rec.service_requests.append(sr)
        st.rec.draft_medications.extend(meds)

    def _repeat_plan(self, st: _State) -> None:
        """"Requests a fourth today": the plan is the injection the note described last, the same target, side,
        guidance and agents (the request names none of its own)."""
        last = st.injections[-1]
        assert st.repeat_requested is not None
        ref = st.ref("sr")
        sr = ServiceRequest(ref=ref, code=Coded((), f"{last.code.text} (repeat requested)"), status="draft",
                            intent="order", authored=self._day(st.note.when), body_site=last.body_site)
        meds = [MedicationUse(ref=st.ref("mr"), medication=a.medication, status="draft", intent="order",
                              dose_value=a.dose_value, dose_unit=a.dose_unit, reason_refs=(ref,))
                for a in st.rec.administrations if last.ref in a.part_of]
        st.plans.append((sr, meds, True))
        self._keep(st, ref, st.repeat_requested)
        for med in meds:
            self._keep(st, med.ref, st.repeat_requested)

    # ---- surgery ------------------------------------------------------------------------------
    def _surgery(self, st: _State, m: Mention, text: str, prov: Provenance, future: bool) -> bool:
        """Planned joint replacement -> an active ServiceRequest with its date; past -> a Procedure.
        Returns True when the replacement is still to come."""
        if m.negated or m.family or m.hypothetical:
            return False
        ahead = [h for h in st.dates(text, future=True) if h.when.date() > st.note.when]
        past = [h for h in st.dates(text) if h.when.date() <= st.note.when and not h.relative]
        label = f"{m.side + ' ' if m.side else ''}{m.matched}"
        code = Coded((Coding(CONCEPT_SYSTEM, m.concept, m.matched),), label)
        if (future or ahead) and not m.historical:
            if not ahead and TENTATIVE.search(text):
                return True  # "considering a THA next spring": still to come, but nothing is booked
            ref = st.ref("sr")
            st.rec.service_requests.append(ServiceRequest(ref=ref, code=code, status="active", intent="order",
                                                          occurrence=ahead[0].when if ahead else None,
                                                          authored=self._day(st.note.when), body_site=m.side or ""))
            self._keep(st, ref, prov)
            return True
        if not past and not m.historical and TENTATIVE.search(text):
            return True  # "referred for a consultation about a hip replacement": neither done nor booked
        ref = st.ref("p")
        st.rec.procedures.append(Procedure(ref=ref, code=code, status="completed",
                                           start=past[0].when if past else None, body_site=m.side or "",
                                           category="surgery"))
        self._keep(st, ref, prov)
        return False

    def _imaging(self, st: _State, m: Mention, text: str, prov: Provenance) -> None:
        """An imaging study the note reports as done -> a Procedure, dated when the sentence dates it (else its
        day unknown); one ordered, awaited or denied is not imaging on record."""
        if m.negated or m.possible or self.cues.has("imaging_not_done", text):
            return
        past = [h for h in st.dates(text) if h.when.date() <= st.note.when and not h.relative]
        ref = st.ref("p")
        label = f"{m.side + ' ' if m.side else ''}{m.matched}"
        st.rec.procedures.append(Procedure(ref=ref, code=Coded((Coding(CONCEPT_SYSTEM, m.concept, m.matched),), label),
                                           status="completed", start=past[0].when if past else None,
                                           body_site=" ".join(x for x in (m.side, m.site) if x), category="imaging",
                                           date_unknown=not past))
        self._keep(st, ref, prov)

    # ---- physical therapy ---------------------------------------------------------------------
    def _therapy(self, st: _State, ms: list[Mention], text: str, prov: Provenance, offset: int = 0) -> None:
        live = [m for m in ms if not (m.negated or m.family or m.hypothetical)]
        if not live:
            return
        first = live[0]  # "not attended" belongs to the therapy near it, not to an injection declined after a ";"
        lo = max(0, first.start - offset - 40)
        window = text[lo:first.end - offset + 80]
        a, b = first.start - offset - lo, first.end - offset - lo
        right = window.find(";", b)
        near = window[window.rfind(";", 0, a) + 1:right if right >= 0 else len(window)]
        hits = [h for h in st.dates(text) if h.when.date() <= st.note.when]
        days = [h for h in hits if h.precision in ("day", "month")]
        start = end = None
        if len(days) >= 2:
            start, end = days[0].when, days[1].when
        elif len(days) == 1:
            start = days[0].when
        per = PERIOD_OF.search(text) or PERIOD_FOR.search(text)
        years = [h for h in hits if h.precision == "year"]
        if start is None and years:  # "12 weeks of PT in 2025": within that year, its end at the latest
            end = min(datetime(years[-1].when.year, 12, 31), self._day(st.note.when))
            start = datetime(years[0].when.year, 1, 1) if not per else None
        if per and start is None:
            n = 1.0 if per.group(1).lower() in ("a", "an") else (to_number(per.group(1)) or 0)
            span = timedelta(days=n * UNIT_DAYS[per.group(2)[0].lower()])
            end = end or self._day(st.note.when)
            start = end - span
        ongoing = self._has("therapy_ongoing", text) and not self._has("therapy_completed", text)
        status = "in-progress" if ongoing else "completed"
        ordered_only = self._has("therapy_ordered", near) and not ongoing and not self._has("therapy_completed", near)
        if self._has("therapy_not_done", near) or ordered_only:
            status, ongoing = "not-done", False  # ordered, offered or booked, but not done: not care tried
        if ongoing:
            end = None
        region = " ".join(x for x in (live[0].side, live[0].site) if x)
        ref = st.ref("p")
        st.rec.procedures.append(Procedure(ref=ref, code=Coded((Coding(CONCEPT_SYSTEM, "exercise-therapy", live[0].matched),),
                                                               f"Physical therapy - {live[0].matched}"),
                                           status=status, start=start, end=end, body_site=region,
                                           # its own clause: "awaiting THA consult; PT not tolerated" is no PT after a THA
                                           notes=" ".join(near.split()), category="therapy"))
        self._keep(st, ref, prov)


# ---- helpers ---------------------------------------------------------------------------------
def _risk_clauses(cues: Cues, text: str, offset: int) -> list[tuple[int, int]]:
    """The clauses (between ';' and the sentence ends) that discuss risks, as absolute offsets."""
    if not cues.has("risk_discussion", text):
        return []
    out, pos = [], 0
    for part in text.split(";"):
        if cues.has("risk_discussion", part):
            out.append((offset + pos, offset + pos + len(part)))
        pos += len(part) + 1
    return out


@lru_cache(maxsize=1)
def _instruments() -> tuple[tuple[str, re.Pattern[str], float, float, float | None], ...]:
    """(label, before -> after pattern, worst, best, MCID) of each instrument outcome_measures.yaml names."""
    text = resources.files("injectwise.knowledge").joinpath("data/outcome_measures.yaml").read_text("utf-8")
    out = []
    # a score and the scale it states ("48/96", "40%", "14 out of 20"): a stated scale must be the instrument's
    num = r"(?P<{0}>\d{{1,3}}(?:\.\d+)?)(?:\s*(?P<{0}p>%)|\s*(?:/|out of)\s*(?P<{0}d>\d{{2,3}}))?"
    for key, m in (yaml.safe_load(text) or {}).items():
        if not isinstance(m, dict) or not m.get("names") or not m.get("scale"):
            continue
        names = "|".join(f"(?:{n})" for n in m["names"])
        # "<name> 18/48 before ..., 34/48 today", "<name> was 52 before and is 55 now", "<name> from 40 to 75",
        # "<name> 40 -> 75"; the first score is the one before the injection
        pat = re.compile(rf"(?:{names})[^\d.;]{{0,25}}?{num.format('x')}\s*(?:(?:before|pre-?(?:injection|procedure|inj)|"
                         rf"at baseline|baseline|prior)\b[^\d.;]{{0,45}}?|(?:->|→|=>|to)\s*){num.format('y')}", re.I)
        worst, best = (float(x) for x in m["scale"])
        mcid = float(m["mcid"]) if m.get("mcid") is not None else None
        label = re.sub(r"\s*\([^()]*\)", "", str(m.get("label", key))).strip()  # the mark itself is in parentheses
        out.append((label, pat, worst, best, mcid))
    return tuple(out)


@lru_cache(maxsize=1)
def _instrument_names() -> re.Pattern[str]:
    text = resources.files("injectwise.knowledge").joinpath("data/outcome_measures.yaml").read_text("utf-8")
    names = [n for m in (yaml.safe_load(text) or {}).values() if isinstance(m, dict) for n in m.get("names") or ()]
    return re.compile("|".join(f"(?:{n})" for n in names) or r"(?!)", re.I)


@lru_cache(maxsize=4096)
def _mask_instruments(text: str) -> str:
    """The text with outcome instruments' names blanked (same length; memoised: a sentence naming an injection
    is masked before each read of its clauses, and sentences recur across notes)."""
    return _instrument_names().sub(lambda m: " " * len(m.group(0)), text)


def outcome_measure_mark(text: str) -> str:
    """The rating mark of an outcome instrument's before/after pair in a sentence (the review reads it when
    there are no pain scores), or "". Scores outside the instrument's range are no reading."""
    if _instrument_names().search(text) is None:
        return ""  # every instrument's pattern opens on its names: one search rules out all six
    for label, pat, worst, best, mcid in _instruments():
        m = pat.search(text)
        if not m:
            continue
        x, y = float(m.group("x")), float(m.group("y"))
        lo, hi = min(worst, best), max(worst, best)
        if not (lo <= x <= hi and lo <= y <= hi) or (x == worst and y == worst):
            continue
        # "WOMAC 48/96" is the 0-96 total, "WOMAC 48/100" or "48%" the normalised one: another scale is another reading
        stated = {100.0 if m.group(f"{g}p") else float(m.group(f"{g}d")) for g in ("x", "y")
                  if m.group(f"{g}p") or m.group(f"{g}d")}
        if stated - {hi}:
            continue
        span = abs(best - worst)
        gain = (y - x) if best > worst else (x - y)  # towards the better end
        deficit = abs(best - x)
        pct = gain / deficit * 100 if deficit else 0.0
        points = gain / span * 100
        important = gain >= mcid if mcid is not None else (pct >= 20 and points >= 10)
        return (f" (outcome measure {label} {x:g} -> {y:g}: {pct:.0f}% better, {points:.0f} points of 100, "
                f"{'important' if important else 'not important'} change)")
    return ""


_BOTH = re.compile(r"\bbilateral(ly)?\b|\bboth\b|\bb/l\b|\beach (side|knee|hip|shoulder)\b", re.I)


def _one_side(text: str) -> str:
    """"left" or "right" when a sentence names that side only (and not both), else ""."""
    if _BOTH.search(text):
        return ""
    low = text.lower()
    left = bool(re.search(r"\bleft\b|\blt\b", low) or re.search(r"(?<![/\-])\bL\b(?![/\-]\w|\d)", text))
    right = bool(re.search(r"\bright\b|\brt\b", low) or re.search(r"(?<![/\-])\bR\b(?![/\-]\w)", text))
    return "left" if left and not right else "right" if right and not left else ""


# A pain score on a 0-100 scale (visual analogue scale, "pain was 80/100 before"): read as the 0-10 score it equals.
PAIN_OR_VAS = re.compile(r"\b(pain|vas|visual analog(ue)?|nrs|hurts?|ache|aching|sore)\b", re.I)
VAS_100 = re.compile(r"(?<![/\d.])\b(\d{1,3}(?:\.\d+)?)\s?(?:/|out of)\s?100\b(?![/\d])", re.I)


def _vas_to_nrs(text: str) -> str:
    """Each "N/100" (0-100) as "N/10 / 10", padded to the same length so positions in the sentence hold."""
    def one(m: re.Match[str]) -> str:
        v = float(m.group(1))
        if v > 100:
            return m.group(0)
        rep = f"{v / 10:g}/10"
        return rep.ljust(len(m.group(0))) if len(rep) <= len(m.group(0)) else rep
    return VAS_100.sub(one, text)


# "before the injection", "since the shot": the injection the note already described
INJECTION_REFERENCE = re.compile(r"\b(before|after|since|pre-?|post-?|following|prior to|from|until) "
                                 r"(the|this|that|her|his|their|last|latest|recent) (injections?|shots?|procedure|inj)\b", re.I)
# The heading of an entry added later ("Addendum 06/20/2026:", "Late entry (6/20/26)", "Update 20 Jun 2026 -")
LATER_ENTRY = re.compile(r"\s*[\[(]?\s*(addend(um|a)|late entry|update|amendment|correction)\b", re.I)
_HAS_DIGIT = re.compile(r"\d")
BLOCK_WORD = re.compile(r"\bblock(ade)?\b")
PREFILTER = ("allergy", "injection", "future", "no_treatment", "joint_fluid")
# A soft line break: `(?<=[^\s.!?:;])[ \t]*\n(?=...)`, the spaces or tabs before a line feed after a word, when the
# next line goes on with text. Written to open on the character class [ \t\n] (then the look-behind), so `re`
# skips to the spacing instead of trying the look-behind at every character (2x faster on a note); the same
# matches: a line feed first ends the match at once, a space or tab first is followed by the rest of the run.
_SOFT_WRAP = re.compile(r"[ \t\n](?<=[^\s.!?:;][ \t\n])(?:(?<=\n)|(?<=[ \t])[ \t]*\n)"
                        r"(?=[ \t]*(?![-*•]\s|\d+[.)]\s)(?![A-Z][\w /]{0,30}:)\S)")


# "Date: 2026-04-20" or "DOS: 4/20/26" on a line of its own: a heading, not the start of a wrapped sentence
_HEADER_LINE = re.compile(r"[ \t]*[A-Z][\w /]{0,30}:[ \t]*\S[^\n]*[^a-z,\s][ \t]*")


# Spacing that means nothing in a note: Windows and old Mac line ends, runs of spaces and tabs, non-breaking and
# other Unicode spaces. The cues are written with single spaces and line feeds.
_ODD_SPACING = re.compile(r"\r\n?|[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]{2,}|[\t\u00a0\u2000-\u200a\u202f\u205f\u3000\f\v]")


# what any match of _ODD_SPACING holds in ASCII text: a CR, two spaces in a row, a tab, a form feed or vertical tab
_ODD_IN_ASCII = ("\r", "  ", "\t", "\f", "\v")


def normalize_spacing(text: str) -> tuple[str, list[int] | None]:
    """The note with its spacing made plain, and for each character of the result (and its end) the offset in
    the note, so provenance still points into the note as written; (text, None) when nothing changes."""
    if text.isascii() and not any(c in text for c in _ODD_IN_ASCII):
        return text, None  # the same answer as the search below, from five substring tests (10x faster)
    if _ODD_SPACING.search(text) is None:
        return text, None
    out: list[str] = []
    offsets: list[int] = []
    pos = 0
    for m in _ODD_SPACING.finditer(text):
        out.append(text[pos:m.start()])
        offsets.extend(range(pos, m.start()))
        run = m.group(0)
        out.append("\n" if run[0] == "\r" or run in ("\f", "\v") else " ")
        offsets.append(m.start())
        pos = m.end()
    out.append(text[pos:])
    offsets.extend(range(pos, len(text) + 1))
    return "".join(out), offsets


def unwrap(text: str) -> str:
    """Join hard-wrapped lines (a line break inside a sentence) so a sentence is not cut at the margin;
    each break becomes one space, so character offsets stay the same. A 'Key: value' heading line whose
    value does not end mid-phrase keeps its break."""
    def join(m: re.Match[str]) -> str:
        start = text.rfind("\n", 0, m.start()) + 1
        if _HEADER_LINE.fullmatch(text, start, m.start()):
            return m.group(0)
        return " " * len(m.group(0))
    return same_length_lower(_SOFT_WRAP.sub(join, text))


_AGENT_SEP = re.compile(r"\+|\band\b|\bwith\b|;|,(?!\s*\d)", re.I)  # "40 mg/mL, 2 mL" stays one agent
_VOLUME = re.compile(r"(\d+(?:\.\d+)?)\s*(?:ml|cc)\b", re.I)
# strength: "10 mg/mL", "40mg/1mL", "1%", or a brand's strength suffix ("Kenalog-40" is 40 mg/mL)
_PER_ML = MG_PER_ML_STRENGTH  # the engine's own strength patterns, so a note and a FHIR text read alike
# a product's strength after its name ("Kenalog-40", "Depo-Medrol 40"): mg/mL, used only with a volume
_BRAND_STRENGTH = re.compile(r"^(?:-|\s)(\d{1,2})\b(?!\s*(?:mg|mcg|ml|cc|%|/|\.\d))", re.I)


def _clause_start(text: str, pos: int) -> int:
    """Where the clause holding `pos` begins (after the last comma, colon or semicolon before it)."""
    return max(text.rfind(c, 0, pos) for c in ",;:") + 1


def _plausible_temperature(value: float, unit: str) -> bool:
    """A body temperature a living patient can have, in its own unit (34-43 C, 93-110 F)."""
    return 34 <= value <= 43 if unit == "Cel" else 93 <= value <= 110


def _volume_dose(text: str, start: int, end: int, single: float | None = None) -> float | None:
    """mg from a volume and a strength written beside the drug's name ("lidocaine 1% 4 mL", "4 mL of 1%
    lidocaine", "10 mg/mL 3 mL", "Kenalog-40 1 mL"): 1% is 10 mg/mL. `single`: the strength of a product sold in
    one strength only ("Celestone Soluspan 2 mL"). A volume without a strength stays unknown."""
    after = _AGENT_SEP.split(text[end:end + 40], 1)[0]
    before = _AGENT_SEP.split(text[max(0, start - 24):start])[-1]
    strength: float | None = None
    brand = _BRAND_STRENGTH.match(after)
    if brand:
        strength, after = float(brand.group(1)), after[brand.end():]
    near = f"{before} {after}"
    given_in: float | None = None
    if (per_ml := _PER_ML.search(near)) is not None:
        strength = float(per_ml.group(1)) / float(per_ml.group(2) or 1)
        if per_ml.group(2):  # "40 mg/1 mL": 40 mg given in 1 mL, unless another volume follows
            given_in = float(per_ml.group(1))
        near = near[:per_ml.start()] + " " + near[per_ml.end():]  # its "mL" is not the volume
    elif (pct := percent_strength(near)) is not None:
        strength = pct * 10
    if strength is None:
        strength = single
    vol = _VOLUME.search(near)
    if not vol or strength is None:
        return given_in
    return round(float(vol.group(1)) * strength, 3)


def _clauses(text: str) -> list[str]:
    parts = re.split(r";|\.\s+(?=[A-Z])|\s+-\s+(?=[a-z])", text)
    return [p for p in parts if p.strip()]


def _names_target_event(ex: NoteExtractor, clause: str) -> bool:
    """'Sacral blockade with steroid twice' names the event through its target words."""
    return bool(re.search(r"\bblock(ade)?\b", clause, re.I)) and bool(ex._targets(clause))


def _count(clause: str) -> int | None:
    m = COUNT_BEFORE.search(clause)
    if m:
        v = to_number(m.group(1))
        if v is not None and v >= 1 and v == int(v) and not re.match(r"\s*(mg|ml|%)", m.group(2) or ""):
            return int(v)
    t = TIMES.search(clause)
    if t:
        w = t.group(1).lower()
        if w == "twice":
            return 2
        if w == "thrice":
            return 3
        v = to_number(t.group(2) or t.group(3) or "")
        return int(v) if v else None
    return None


def _num(s: str) -> float | None:
    s = s.strip()
    s = s.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", s) else s.replace(",", ".")
    try:
        return float(s)
    except ValueError:
        return None


def _is_injection(p: Procedure) -> bool:
    from injectwise.engine.clinical import INJECTION_TEXT
    return (p.category != "therapy" and bool(INJECTION_TEXT.search(p.code.all_text() + " " + p.notes))) or any(
        c.code.startswith(("206", "2055", "2709", "6232", "6447", "6448")) for c in p.code.codings)


SAME_MENTION_WINDOW = 12  # a repeat is looked for among the last conditions of the record only


def _said_before(m: Mention, st: _State) -> bool:
    """One concept said twice in a sentence with the same modifiers counts once: is one of the record's last
    conditions this concept, refuted alike, from this note's sentence holding `m`? The conditions are indexed
    by (concept, refuted) as they are added, so each mention looks only at its own few."""
    conds = st.rec.conditions
    n = len(conds)
    lo = n - SAME_MENTION_WINDOW
    if st.said_upto < n:
        source, provenance = st.note.source, st.rec.provenance
        for k in range(max(st.said_upto, lo), n):
            c = conds[k]
            prov = provenance.get(c.ref)
            if prov is None or prov.source != source:
                continue
            code = c.code.codings[0].code if c.code.codings else ""
            st.said.setdefault((code, c.verification == "refuted"), []).append((k, prov.start, prov.end))
        st.said_upto = n
    start = st.at(m.start)  # provenance offsets are the note's own
    for k, a, b in reversed(st.said.get((m.concept, m.negated), ())):
        if k < lo:
            break
        if a <= start < b:
            return True
    return False


# a whole word of s or h and one of these endings, in lower-cased ASCII text: "[sh]" first lets `re` skip to
# the candidates (4x faster than a pattern opening on \b); the words are counted afterwards
_PRONOUN_WORD = re.compile(r"[sh](?<=\b[sh])(?:he|ers|er|e|im|is)\b")
_SHE, _HE = ("she", "her", "hers"), ("he", "him", "his")


def _pronouns(text: str) -> tuple[int, int]:
    """How many times the text says she/her/hers and he/him/his (whole words, any case)."""
    if not text.isascii():
        return (len(re.findall(r"\b(she|her|hers)\b", text, re.I)), len(re.findall(r"\b(he|him|his)\b", text, re.I)))
    words = Counter(_PRONOUN_WORD.findall(text.lower()))
    return sum(words[w] for w in _SHE), sum(words[w] for w in _HE)


class _SaidInText(NamedTuple):
    """Checks on a sentence's words alone, memoised by text (`NoteExtractor._read_text`)."""

    digit: bool  # it holds a digit
    kl: bool  # it may name a Kellgren-Lawrence grade
    risky: tuple[tuple[int, int], ...]  # its clauses discussing risks, offsets in the sentence
    may_date_later: bool  # a digit, and no plan, booking or intent: a stated day after the note's would be news


@lru_cache(maxsize=4096)
def _squeeze(text: str) -> str:
    """The text with its runs of spacing made one space (provenance and injection notes; memoised)."""
    return " ".join(text.split())


@lru_cache(maxsize=4096)
def _dates(text: str, when: date, future: bool) -> tuple[DateHit, ...]:
    """`find_dates`, memoised: pure in its arguments."""
    return tuple(find_dates(text, when, future))


__all__ = ["DateHit", "NoteExtractor", "NoteInput"]
