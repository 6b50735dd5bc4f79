"""Rendering messages: pick the language, build the context, render subject, text and HTML.

The default templates are the Jinja files in ``mail/``; their sentences and the labels go through
the language's gettext catalogue (``{% trans %}`` blocks, handed ``gettext``/``ngettext`` in the
context, so concurrent renders in different languages share one environment), and dates, times
and numbers are formatted for the language with Babel (``lotse_runtime.i18n``). Pure logic, no
I/O besides reading the packaged templates. Templates run in Jinja's sandbox (tenants write overrides) with
``StrictUndefined`` (a misspelt variable fails loudly), and HTML is autoescaped. An override is
checked by rendering it against a sample context built by the same code as real contexts, so a
template that passes the check when saved also renders when sent.
"""

from __future__ import annotations

import asyncio
import re
import time as clock
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError, TemplateSyntaxError
from markupsafe import Markup, escape

from lotse_contracts.events.values import EXAMPLE_VOLUNTEER_ID
from lotse_notifications import catalogue, domain
from lotse_notifications.catalogue import CATALOGUES, FALLBACK_LANGUAGE, KINDS, LANGUAGES, MAIL_TEMPLATES
from lotse_notifications.sandbox import BoundedSandbox, RenderTimeUp, render_within
from lotse_runtime import i18n

PARTS: tuple[str, ...] = ("subject", "text", "html")
# Longest a message may take to render, all parts together; the worker and the API pass their setting.
RENDER_SECONDS = 2.0
_URL = re.compile(r"https?://[^\s<]+")


@dataclass(frozen=True)
class TemplateSource:
    """One message kind in one language; ``html`` None means the shared layout around the text."""

    subject: str
    text: str
    html: str | None = None


@dataclass(frozen=True)
class Rendered:
    kind: str
    language: str
    subject: str
    text: str
    html: str

    @property
    def right_to_left(self) -> bool:
        return i18n.direction(self.language) == "rtl"


@dataclass(frozen=True)
class MessageFacts:
    """What a message is rendered from: the stored payload plus the recipient and the tenant.
    ``people`` are the volunteers the payload names, as the recipient may see them (looked up
    when the message is sent); ``contact_point`` is whom a volunteer asks about the engagement."""

    recipient_name: str
    tenant_name: str
    office_email: str
    office_name: str | None = None
    timezone: str = "Europe/Berlin"
    payload: Mapping[str, Any] = field(default_factory=dict)
    guidance: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # tenant overrides per language
    people: Mapping[str, domain.SharedPerson] = field(default_factory=dict)
    contact_point: domain.ContactPoint | None = None


class UnknownTemplate(Exception):
    """No template of this kind exists in any language of the fallback chain."""


class RenderFailed(Exception):
    """A template failed to render; ``part`` names subject, text or html."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(f"{part}: {message}")
        self.part = part
        self.message = message


# A scheme's "://", a dotted host name ending in a word (www.x.example, x.example, info@x.example)
# and a dotted IPv4 address: what mail clients turn into links.
_SCHEME_SEPARATOR = re.compile(r"(?<=[A-Za-z0-9+.-]):(?=//)")
_DOTS = ".\u3002\uff0e\uff61"  # and the ideographic and full-width dots some clients read as dots
_DOTTED_HOST = re.compile(rf"(?<![\w{_DOTS}-])(?:[\w-]+[{_DOTS}])+(?:[^\W\d_]{{2,}}|\d{{1,3}})(?![\w-])")


def defang(text: str | None) -> str | None:
    """Text the municipality did not write (need descriptions, districts, names) is shown in official
    mails, but must not become a link there: ``https://x.example/login`` → ``https[:]//x[.]example/login``,
    ``www.x.example`` → ``www[.]x[.]example``. Still readable, and no mail client links it. Only
    dotted names ending in a word or an address are touched, so dates (3.12.) and "z.B." stay."""
    if not text:
        return text
    text = _SCHEME_SEPARATOR.sub("[:]", text)

    def host(match: re.Match[str]) -> str:
        name = match.group(0)
        labels = re.split(f"[{_DOTS}]", name)
        if labels[-1].isdigit() and len(labels) != 4:
            return name  # numbers such as 3.12.2026, not an IPv4 address
        return "[.]".join(labels)

    return _DOTTED_HOST.sub(host, text)


def _paragraphs(text: str) -> Markup:
    """Plain text → escaped HTML paragraphs with line breaks and clickable links; a line that is a
    label and an answer link ("Zusagen: <link>") becomes a button with the label as its text."""
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [_answer_button(line) or _linked(line) for line in block.split("\n")]
        buttons = all(line.startswith("<a class=") for line in lines)
        blocks.append("<p>" + ("\n" if buttons else "<br>\n").join(lines) + "</p>")
    return Markup("\n".join(blocks))


def _linked(line: str) -> str:
    return _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', str(escape(line)))


# Mail clients ignore style sheets, so the buttons carry their style; both colour pairs are above
# WCAG AA contrast (white on green 6.9:1, dark on white 16:1), the targets at least 44 px high.
_BUTTON = (
    "display:inline-block;margin:6px 4px;padding:12px 24px;border-radius:6px;font-weight:bold;text-decoration:none;"
)
_BUTTON_STYLES = {
    "accept_url": _BUTTON + "background:#136a2c;color:#ffffff;border:2px solid #136a2c;",
    "decline_url": _BUTTON + "background:#ffffff;color:#1b1f24;border:2px solid #47505c;",
}


def _answer_button(line: str) -> str | None:
    for name, stand_in in ANSWER_LINK_SLOTS.items():
        label, found, rest = line.partition(stand_in)
        label = label.strip().rstrip(":\uff1a").strip()  # "Zusagen:", "للقبول:", ...
        if found and label and not rest.strip():
            return f'<a class="button" href="{stand_in}" style="{_BUTTON_STYLES[name]}">{escape(label)}</a>'
    return None


def _environment(autoescape: bool) -> BoundedSandbox:
    env = BoundedSandbox(
        undefined=StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        loader=FileSystemLoader(MAIL_TEMPLATES),  # the shared partials ({% include "_need.txt" %})
        # They ship with the package: no stat of every partial at every render (a tenth of the
        # service's time under load, profiled with py-spy).
        auto_reload=False,
        extensions=["jinja2.ext.i18n"],
    )
    # Each render hands the language's gettext in its context; the i18n extension adds this method.
    env.install_null_translations()  # type: ignore[attr-defined]
    env.filters["paragraphs"] = _paragraphs
    return env


_TEXT_ENV = _environment(autoescape=False)
_HTML_ENV = _environment(autoescape=True)


@lru_cache(maxsize=512)
def _compile(source: str, html: bool) -> Template:
    return (_HTML_ENV if html else _TEXT_ENV).from_string(source)


def language_chain(person: str | None, tenant_default: str | None) -> list[str]:
    """The person's language, then the tenant's default, then German; without repeats."""
    chain: list[str] = []
    for language in (person, tenant_default, FALLBACK_LANGUAGE):
        if language and language not in chain:
            chain.append(language)
    return chain


@lru_cache(maxsize=64)
def _mail_file(name: str) -> str:
    return (MAIL_TEMPLATES / name).read_text(encoding="utf-8")


def default_source(kind: str, language: str) -> TemplateSource | None:
    """The packaged template of a kind, for every language with a catalogue (the same Jinja source
    for all of them: its ``{% trans %}`` blocks are translated when it renders)."""
    if kind not in KINDS or language not in LANGUAGES:
        return None
    return TemplateSource(subject=_mail_file(f"{kind}.subject.txt"), text=_mail_file(f"{kind}.txt"))


def choose(
    kind: str, chain: list[str], overrides: Mapping[tuple[str, str], TemplateSource]
) -> tuple[str, TemplateSource]:
    """The first language of the chain with a template of this kind (a tenant's override wins)."""
    if kind not in KINDS:
        raise UnknownTemplate(f"unknown message kind {kind!r}")
    for language in chain:
        source = overrides.get((kind, language)) or default_source(kind, language)
        if source is not None:
            return language, source
    raise UnknownTemplate(f"no template {kind!r} in any of {chain}")


def render(
    kind: str,
    chain: list[str],
    facts: MessageFacts,
    overrides: Mapping[tuple[str, str], TemplateSource] | None = None,
    *,
    time_limit: float = RENDER_SECONDS,
) -> Rendered:
    language, source = choose(kind, chain, overrides or {})
    return render_source(kind, language, source, facts, time_limit=time_limit)


async def render_off_loop(
    kind: str,
    chain: list[str],
    facts: MessageFacts,
    overrides: Mapping[tuple[str, str], TemplateSource] | None = None,
    *,
    time_limit: float = RENDER_SECONDS,
) -> Rendered:
    """``render`` in a worker thread: the event loop keeps serving while a template runs, and the
    render stops itself at its time limit (see ``sandbox.render_within``)."""
    return await asyncio.to_thread(render, kind, chain, facts, overrides, time_limit=time_limit)


def render_source(
    kind: str, language: str, source: TemplateSource, facts: MessageFacts, *, time_limit: float = RENDER_SECONDS
) -> Rendered:
    deadline = (clock.monotonic() + time_limit, time_limit)
    context = build_context(kind, language, facts)
    # Templates see stand-ins for the answer links; the links go in after rendering, in slots only.
    links = {name: context[name] for name in ANSWER_LINK_SLOTS if context.get(name)}
    context |= {name: ANSWER_LINK_SLOTS[name] for name in links}
    subject = " ".join(_render_part("subject", source.subject, context, html=False, deadline=deadline).split())
    text = _render_part("text", source.text, context, html=False, deadline=deadline)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    html = _render_part(
        "html",
        source.html or _mail_file("layout.html"),
        {**context, "subject": subject, "text_body": text},
        html=True,
        deadline=deadline,
    )
    return Rendered(
        kind=kind,
        language=language,
        subject=_place_links("subject", subject, links),
        text=_place_links("text", text, links),
        html=_place_links("html", html, links),
    )


# An answer link is a capability: whoever has it answers for the volunteer. A template (a tenant's
# override included) sees only these stand-ins, and the real link replaces a stand-in only where a
# link of ours may stand: alone on its own in the text part (between white space), and in the
# HTML part as the whole address of a link (href="...") or as a whole text between tags. Anywhere
# else - an image source, a style, another host's query string, the subject - it could send the
# link to someone else when the mail is opened, so the render fails instead.
ANSWER_LINK_SLOTS = {
    "accept_url": "https://answer-link.invalid/accept",
    "decline_url": "https://answer-link.invalid/decline",
}


def _place_links(part: str, rendered: str, links: Mapping[str, str]) -> str:
    for name, link in links.items():
        stand_in = re.escape(ANSWER_LINK_SLOTS[name])
        if part == "text":
            allowed = re.compile(rf"(?<!\S){stand_in}(?!\S)")
            replacement = link
        elif part == "html":
            allowed = re.compile(rf'(?<=href="){stand_in}(?=")|(?<=>){stand_in}(?=<)')
            replacement = str(escape(link))
        else:
            allowed, replacement = re.compile("(?!)"), link  # never in a subject
        placed = allowed.sub(replacement.replace("\\", r"\\"), rendered)  # a literal, not a pattern
        if ANSWER_LINK_SLOTS[name] in placed:
            raise RenderFailed(part, f"{name} may stand only on its own as a link's address")
        rendered = placed
    return rendered


def _render_part(
    part: str, source: str, context: Mapping[str, Any], *, html: bool, deadline: tuple[float, float]
) -> str:
    try:
        return render_within(_compile(source, html), context, deadline[0])
    except RenderTimeUp as error:
        raise RenderFailed(part, f"took longer than {deadline[1]:g} s to render") from error
    except TemplateError as error:
        lineno = getattr(error, "lineno", None)  # syntax errors have one, runtime errors not
        line = f" (line {lineno})" if lineno else ""
        raise RenderFailed(part, f"{type(error).__name__}: {error.message or error}{line}") from error
    except Exception as error:
        raise RenderFailed(part, f"{type(error).__name__}: {error}") from error


async def check_source_off_loop(
    kind: str, language: str, source: TemplateSource, *, time_limit: float = RENDER_SECONDS
) -> list[dict[str, str]]:
    return await asyncio.to_thread(check_source, kind, language, source, time_limit=time_limit)


def check_source(
    kind: str, language: str, source: TemplateSource, *, time_limit: float = RENDER_SECONDS
) -> list[dict[str, str]]:
    """Problems of an override, one per part (empty: it renders in time and within the output
    limit against a sample message). Used when a tenant saves it."""
    if kind not in KINDS:
        return [{"field": "kind", "message": f"unknown message kind; known: {', '.join(KINDS)}"}]
    problems = []
    for part in PARTS:
        text = getattr(source, part)
        if text is None:
            continue
        try:
            _compile(text, part == "html")
        except TemplateSyntaxError as error:  # the only template error compiling raises
            problems.append({"field": part, "message": f"syntax error: {error.message} (line {error.lineno})"})
        except RecursionError:  # nested deeper than the parser can follow
            problems.append({"field": part, "message": "syntax error: nested too deeply"})
    if problems:
        return problems
    try:
        render_source(kind, language, source, sample_facts(kind), time_limit=time_limit)
    except RenderFailed as failure:
        problems.append({"field": failure.part, "message": failure.message})
    return problems


# --- context -------------------------------------------------------------------------------


def build_context(kind: str, language: str, facts: MessageFacts) -> dict[str, Any]:
    # A tenant's override may be in a language without a catalogue: its labels are then German.
    labels = CATALOGUES.pick(language)
    translations = CATALOGUES.translations(labels)
    guidance = {**catalogue.guidance(labels), **dict(facts.guidance.get(language, {}))}
    zone = domain.zone(facts.timezone)
    context: dict[str, Any] = {
        "gettext": translations.gettext,  # what {% trans %} and _() call
        "_": translations.gettext,
        "ngettext": translations.ngettext,
        "lang": language,
        "dir": i18n.direction(language),
        "recipient_name": defang(facts.recipient_name),  # a volunteer's or an initiative's own words
        "tenant_name": facts.tenant_name,
        "office": {
            "name": facts.office_name or translations.gettext(catalogue.OFFICE_FALLBACK_NAME),
            "email": facts.office_email,
        },
        "guidance": guidance,
    }
    payload = facts.payload
    if kind in {catalogue.MATCH_PROPOSED, catalogue.PROPOSAL_REMINDER}:
        reasons = payload.get("reasons", [])
        context |= {
            "need": need_view(payload["need"], labels, zone),
            "reasons": [_reason_label(reason, payload.get("distance_km"), labels) for reason in reasons],
            "reason_details": [reason.get("detail", "") for reason in reasons],
            "accept_url": payload.get("accept_url"),
            "decline_url": payload.get("decline_url"),
            "deadline": i18n.format_datetime(datetime.fromisoformat(payload["expires_at"]), labels, zone),
        }
    elif kind == catalogue.NEED_CANCELLED:
        context["need"] = need_view(payload["need"], labels, zone)
    elif kind in {catalogue.PROPOSAL_ACCEPTED, catalogue.ENGAGEMENT_REMINDER, catalogue.ENGAGEMENT_THANKS}:
        point = facts.contact_point
        context |= {
            "need": need_view(payload["need"], labels, zone),
            # The organisation that owns the need, or the office: whom to ask about the engagement.
            "contact": _contact_point_view(point) if point else context["office"],
        }
        if kind == catalogue.ENGAGEMENT_REMINDER:
            starts = payload.get("starts_at")
            context["starts"] = i18n.format_datetime(datetime.fromisoformat(starts), labels, zone) if starts else None
    elif kind == catalogue.NEED_UNSTAFFED:
        context |= {
            "need": need_view(payload["need"], labels, zone),
            "committed": payload["committed"],
            "needed": payload["needed"],
            "reason": catalogue.label(catalogue.UNSTAFFED_LABELS, payload["reason"], labels),
        }
    elif kind == catalogue.NEED_STAFFED:
        context |= _staffed_view(payload, facts.people, labels, zone)
    elif kind == catalogue.DAILY_DIGEST:
        context |= _daily_digest_view(payload, facts.people, labels, zone)
    elif kind == catalogue.VOLUNTEER_UNREACHABLE:
        person = facts.people.get(payload["volunteer_id"])
        context |= {
            "person": person_view(person) if person else None,
            "volunteer_id": payload["volunteer_id"],
            "problems": [
                {
                    "channel": catalogue.label(catalogue.CHANNEL_LABELS, item["channel"], labels),
                    "problem": catalogue.label(catalogue.CHANNEL_PROBLEM_LABELS, item["problem"], labels),
                }
                for item in payload["problems"]
            ],
        }
    elif kind in {catalogue.CERTIFICATE_EXPIRING, catalogue.CERTIFICATE_EXPIRING_OFFICE}:
        person = facts.people.get(payload["volunteer_id"])
        context |= {
            "certificate": catalogue.label(catalogue.CERTIFICATE_LABELS, payload["certificate"], labels),
            "valid_until": i18n.format_date(date.fromisoformat(payload["valid_until"]), labels),
            "weeks": payload["weeks_before"],
            "person": person_view(person) if person else None,
            "volunteer_id": payload["volunteer_id"],
        }
    elif kind in {catalogue.QUESTION_ASKED, catalogue.QUESTION_ANSWERED}:
        person = facts.people.get(payload["volunteer_id"])
        context |= {
            "person": person_view(person) if person else None,
            "volunteer_id": payload["volunteer_id"],
            "subject": defang(payload["subject"]),  # the volunteer's own words: never a link
            "link": payload.get("link"),  # ours: the portal's page of the thread (sign-in needed)
            "first": payload.get("first", True),
        }
    elif kind == catalogue.WEEKLY_DIGEST:
        digest = dict(payload["digest"])
        digest["unstaffed_needs"] = [
            {
                "category": catalogue.label(catalogue.CATEGORY_LABELS, item["category"], labels),
                "district": defang(item.get("district")),
                "description": defang(item["description"]),
            }
            for item in digest.get("unstaffed_needs", [])
        ]
        # The rate as the language writes a share (33 %, %33, ...); staffing_rate stays the number.
        digest["staffing_share"] = i18n.format_percent(digest.get("staffing_rate", 0), labels)
        context |= {"digest": digest, "week": payload["week"]}
    return context


# An address that is only an address: anything else a volunteer typed (``https://x/a@b.c`` passes
# the contract's pattern) is shown defanged, so that it cannot become a link.
_PLAIN_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def person_view(person: domain.SharedPerson) -> dict[str, Any]:
    """A volunteer as a message to the office or an organisation shows them: their own words defanged."""
    email = person.email
    if email is not None and not _PLAIN_EMAIL.fullmatch(email):
        email = defang(email)
    return {"name": defang(person.name), "email": email, "phone": person.phone}


def _contact_point_view(point: domain.ContactPoint) -> dict[str, Any]:
    """An organisation's name and mailbox are its own words (the registry checks the form only)."""
    email = point.email if _PLAIN_EMAIL.fullmatch(point.email) else defang(point.email)
    return {"name": defang(point.name), "email": email}


def _people(ids: list[str], people: Mapping[str, domain.SharedPerson]) -> tuple[list[dict[str, Any]], int]:
    """The named volunteers in the payload's order, and how many are not named (erased since)."""
    found = [person_view(people[volunteer_id]) for volunteer_id in ids if volunteer_id in people]
    return found, len(ids) - len(found)


def _staffed_view(
    payload: Mapping[str, Any], people: Mapping[str, domain.SharedPerson], labels: str, zone: ZoneInfo
) -> dict[str, Any]:
    need = payload["need"]
    volunteers, unnamed = _people(list(payload.get("volunteer_ids", [])), people)
    return {
        "need": need_view(need, labels, zone),
        "committed": payload["committed"],
        # Staffed means as many committed as the need asks for.
        "needed": need.get("volunteers_needed") or payload["committed"],
        "volunteers": volunteers,
        "unnamed": unnamed,
    }


def _daily_digest_view(
    payload: Mapping[str, Any], people: Mapping[str, domain.SharedPerson], labels: str, zone: ZoneInfo
) -> dict[str, Any]:
    staffed, unstaffed, declined = [], [], []
    for item in payload["items"]:
        if item["kind"] == catalogue.NEED_STAFFED:
            staffed.append(_staffed_view(item, people, labels, zone))
        elif item["kind"] == catalogue.NEED_UNSTAFFED:
            unstaffed.append(
                {
                    "need": need_view(item["need"], labels, zone),
                    "committed": item["committed"],
                    "needed": item["needed"],
                    "reason": catalogue.label(catalogue.UNSTAFFED_LABELS, item["reason"], labels),
                }
            )
        elif item["kind"] == catalogue.PROPOSAL_DECLINED:
            reason = item.get("reason")
            declined.append(
                {
                    "need": need_view(item["need"], labels, zone),
                    "reason": catalogue.label(catalogue.DECLINE_LABELS, reason, labels) if reason else None,
                }
            )
    day = datetime.fromisoformat(payload["day"]).date()
    return {
        "day": i18n.format_date(day, labels),
        "staffed": staffed,
        "unstaffed": unstaffed,
        "declined": declined,
        "more": payload.get("more", 0),
    }


def need_view(need: Mapping[str, Any], labels: str, zone: ZoneInfo) -> dict[str, Any]:
    certificate = need.get("certificate_required")
    return {
        "category": catalogue.label(catalogue.CATEGORY_LABELS, need["category"], labels),
        "description": defang(need["description"]),
        "district": defang(need.get("district")),
        "when": _schedule(need.get("schedule") or {}, labels, zone),
        "certificate": catalogue.label(catalogue.CERTIFICATE_LABELS, certificate, labels) if certificate else None,
    }


def _reason_label(reason: Mapping[str, Any], distance_km: float | None, labels: str) -> str:
    label = catalogue.label(catalogue.REASON_LABELS, reason["code"], labels, reason.get("detail", ""))
    if reason["code"] == "distance" and distance_km is not None:
        label = f"{label} ({i18n.format_number(distance_km, labels, decimals=1)} km)"
    return label


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _schedule(schedule: Mapping[str, Any], labels: str, zone: ZoneInfo) -> str:
    gettext = CATALOGUES.translations(labels).gettext
    return i18n.describe_schedule(
        schedule, labels, zone, lambda code: gettext(catalogue.WEEKDAYS[_WEEKDAYS.index(code)])
    )


def sample_facts(kind: str) -> MessageFacts:
    """Facts like a real message of this kind, built from the contract examples."""
    return MessageFacts(
        recipient_name="Maria",
        tenant_name="Stadt Musterstadt",
        office_email="ehrenamt@musterstadt.de",
        office_name="Koordinationsstelle Ehrenamt",
        payload=domain.sample_payload(kind),
        people={EXAMPLE_VOLUNTEER_ID: domain.SharedPerson("Maria", "maria@example.org", "+4915112345678")},
        contact_point=domain.ContactPoint("Willkommensinitiative Mitte", "hallo@willkommen-mitte.de"),
    )
