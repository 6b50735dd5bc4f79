"""The questions pages (issue 16, item 5): the form checks say what to correct next to the field,
the pages escape what people typed and keep its line breaks, and each side reads who wrote."""

from __future__ import annotations

from lotse_portal import domain, pages
from lotse_portal.domain import FormData
from tests.unit.portal.question_pages import ANSWER, BERLIN, HOSTILE, QUESTION_PAGES, THREAD
from tests.unit.portal.test_pages import COMMON


def _form(**values: str) -> FormData:
    return FormData([("csrf_token", "t"), *values.items()])


def test_a_question_needs_a_subject_on_one_line_and_a_text_within_the_limits() -> None:
    valid = domain.read_question_form(_form(subject=" Versicherung ", text="Bin ich\r\nversichert?"), with_subject=True)
    assert valid.valid and valid.body == {"subject": "Versicherung", "text": "Bin ich\nversichert?"}
    empty = domain.read_question_form(_form(subject="", text="  "), with_subject=True)
    assert empty.errors == {"subject": "Bitte füllen Sie dieses Feld aus.", "text": "Bitte füllen Sie dieses Feld aus."}
    long = domain.read_question_form(_form(subject="s" * 151, text="t" * 2001), with_subject=True)
    assert long.errors == domain.QUESTION_TOO_LONG
    two_lines = domain.read_question_form(_form(subject="a\nb", text="Glocke \x07"), with_subject=True)
    assert set(two_lines.errors) == {"subject", "text"}
    reply = domain.read_question_form(_form(subject="ignored", text="Danke"), with_subject=False)
    assert reply.valid and reply.body == {"text": "Danke"}


def test_a_question_may_be_about_one_of_the_volunteers_needs_and_no_other() -> None:
    proposals = [
        {"need_id": "n1", "status": "accepted", "category": "translation", "description": "Jobcenter"},
        {"need_id": "n1", "status": "accepted", "category": "translation", "description": "Jobcenter"},
        {"need_id": "n2", "status": "proposed", "category": "childcare", "description": "Kita"},
        {"need_id": "n3", "status": "declined", "category": "leisure", "description": "Ausflug"},
    ]
    choices = domain.need_choices(proposals)
    assert [choice.need_id for choice in choices] == ["n1", "n2"]
    mine = {choice.need_id for choice in choices}
    about = domain.read_question_form(_form(subject="s", text="t", about_need_id="n2"), with_subject=True, needs=mine)
    assert about.valid and about.body["about_need_id"] == "n2"
    other = domain.read_question_form(_form(subject="s", text="t", about_need_id="n3"), with_subject=True, needs=mine)
    assert set(other.errors) == {"about_need_id"}
    none = domain.read_question_form(_form(subject="s", text="t", about_need_id=""), with_subject=True, needs=mine)
    assert none.valid and "about_need_id" not in none.body


def test_a_thread_reads_as_the_service_answers_it() -> None:
    assert (THREAD.thread_id, THREAD.state, THREAD.answered_last, THREAD.message_count) == (
        ANSWER["id"],
        "answered",
        True,
        2,
    )
    assert [message.from_office for message in THREAD.messages] == [False, True]
    assert THREAD.state_label == "Beantwortet" and THREAD.mine
    assert THREAD.messages[1].written == "01.12.2026, 11:30"  # the municipality's time


def test_the_volunteers_page_shows_every_message_escaped_and_the_error_next_to_the_field() -> None:
    html = pages.render("de", "question.html", {**COMMON, **QUESTION_PAGES["question.html"]})
    assert HOSTILE not in html and html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3
    assert html.index("<strong>Sie</strong>") < html.index("<strong>Koordinationsstelle</strong>")
    assert 'id="text-error"' in html and 'aria-describedby="text-hint text-error" aria-invalid="true"' in html
    assert f'action="/questions/{ANSWER["id"]}/messages"' in html
    assert "Zu Ihrem Einsatz: Übersetzen und Dolmetschen: &lt;script&gt;" in html
    form = pages.render("de", "questions.html", {**COMMON, **QUESTION_PAGES["questions.html"]})
    assert f'<option value="{ANSWER["about_need_id"]}" selected>Übersetzen und Dolmetschen: &lt;script&gt;' in form


def test_the_office_page_names_the_volunteer_and_offers_closing_or_reopening() -> None:
    context = {**COMMON, "is_volunteer": False, "is_coordinator": True, **QUESTION_PAGES["console_question.html"]}
    html = pages.render("de", "console_question.html", context)
    assert HOSTILE not in html and "Sie sind die Ansprechperson" in html
    assert f'action="/console/questions/{ANSWER["id"]}/closing"' in html and "/reopening" not in html
    assert f'href="/console/needs/{ANSWER["about_need_id"]}"' in html
    closed = domain.QuestionThread.from_json(ANSWER | {"state": "closed"}, "de", BERLIN)
    html = pages.render("de", "console_question.html", context | {"thread": closed})
    assert f'action="/console/questions/{ANSWER["id"]}/reopening"' in html and "/closing" not in html


def test_the_menus_lead_each_side_to_its_questions_in_every_language() -> None:
    for language in pages.LANGUAGES:
        volunteer = pages.render(
            language, "questions.html", {**COMMON, "path": "/questions", **QUESTION_PAGES["questions.html"]}
        )
        label = pages.translate(language, "Fragen")
        assert f'<a href="/questions" aria-current="page">{label}</a>' in volunteer
        office = {**COMMON, "path": "/console/questions", "is_volunteer": False, "is_coordinator": True}
        html = pages.render(language, "console_questions.html", {**office, **QUESTION_PAGES["console_questions.html"]})
        assert f'<a href="/console/questions" aria-current="page">{label}</a>' in html
        assert '/questions"' not in html.replace('href="/console/questions"', "")
