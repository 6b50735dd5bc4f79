"""The small HTML pages behind the answer links: German first, then the tenant's language."""

from __future__ import annotations

from html import escape

from lotse_matching.rounds import Outcome

# Page kinds beyond the outcomes of an answer.
CONFIRM_ACCEPT = "confirm_accept"
CONFIRM_DECLINE = "confirm_decline"
TAMPERED = "tampered"
TOO_MANY = "too_many"

TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "de": {
        CONFIRM_ACCEPT: ("Anfrage annehmen?", "Bitte bestätigen Sie, dass Sie diese Anfrage annehmen möchten."),
        CONFIRM_DECLINE: ("Anfrage ablehnen?", "Bitte bestätigen Sie, dass Sie diese Anfrage ablehnen möchten."),
        Outcome.ACCEPTED: ("Vielen Dank!", "Sie haben zugesagt. Die Koordination meldet sich mit den Einzelheiten."),
        Outcome.DECLINED: ("Danke für Ihre Rückmeldung", "Sie haben abgesagt. Wir fragen jemand anderen."),
        Outcome.ALREADY_ACCEPTED: ("Link bereits verwendet", "Sie haben auf diese Anfrage schon zugesagt."),
        Outcome.ALREADY_DECLINED: ("Link bereits verwendet", "Sie haben auf diese Anfrage schon geantwortet."),
        Outcome.NO_LONGER_NEEDED: (
            "Vielen Dank für Ihre Bereitschaft!",
            "Diese Anfrage ist inzwischen besetzt oder nicht mehr aktuell. Sie müssen nichts weiter tun.",
        ),
        Outcome.EXPIRED: ("Link abgelaufen", "Die Frist für diese Anfrage ist vorbei. Es wurde nichts geändert."),
        Outcome.LIMIT_REACHED: (
            "Zusage nicht möglich",
            "Sie haben schon so viele Einsätze wie angegeben oder einen zur selben Zeit. Es wurde nichts geändert.",
        ),
        Outcome.NOT_FOUND: ("Link ungültig", "Diese Anfrage gibt es nicht. Es wurde nichts geändert."),
        TAMPERED: ("Link ungültig", "Dieser Link ist ungültig oder beschädigt. Es wurde nichts geändert."),
        TOO_MANY: (
            "Bitte kurz warten",
            "Von Ihrem Anschluss kamen gerade sehr viele Anfragen. Bitte versuchen Sie es gleich noch einmal.",
        ),
        "button_accept": ("Ja, ich sage zu", ""),
        "button_decline": ("Ja, ich sage ab", ""),
    },
    "en": {
        CONFIRM_ACCEPT: ("Accept this request?", "Please confirm that you want to accept this request."),
        CONFIRM_DECLINE: ("Decline this request?", "Please confirm that you want to decline this request."),
        Outcome.ACCEPTED: ("Thank you!", "You accepted. The coordinators will be in touch with the details."),
        Outcome.DECLINED: ("Thank you for letting us know", "You declined. We will ask someone else."),
        Outcome.ALREADY_ACCEPTED: ("Link already used", "You have already accepted this request."),
        Outcome.ALREADY_DECLINED: ("Link already used", "You have already answered this request."),
        Outcome.NO_LONGER_NEEDED: (
            "Thank you for offering to help!",
            "This request has been filled or is no longer needed. There is nothing more to do.",
        ),
        Outcome.EXPIRED: ("Link expired", "The time to answer this request is over. Nothing was changed."),
        Outcome.LIMIT_REACHED: (
            "Cannot accept",
            "You already have as many engagements as you chose, or one at the same time. Nothing was changed.",
        ),
        Outcome.NOT_FOUND: ("Invalid link", "This request does not exist. Nothing was changed."),
        TAMPERED: ("Invalid link", "This link is invalid or damaged. Nothing was changed."),
        TOO_MANY: (
            "Please wait a moment",
            "Too many requests came from your connection just now. Please try again shortly.",
        ),
        "button_accept": ("Yes, I accept", ""),
        "button_decline": ("Yes, I decline", ""),
    },
    "uk": {
        CONFIRM_ACCEPT: ("Прийняти запит?", "Будь ласка, підтвердіть, що ви приймаєте цей запит."),
        CONFIRM_DECLINE: ("Відхилити запит?", "Будь ласка, підтвердіть, що ви відхиляєте цей запит."),
        Outcome.ACCEPTED: ("Дякуємо!", "Ви погодилися. Координатори зв'яжуться з вами."),
        Outcome.DECLINED: ("Дякуємо за відповідь", "Ви відмовилися. Ми запитаємо когось іншого."),
        Outcome.ALREADY_ACCEPTED: ("Посилання вже використано", "Ви вже погодилися на цей запит."),
        Outcome.ALREADY_DECLINED: ("Посилання вже використано", "Ви вже відповіли на цей запит."),
        Outcome.NO_LONGER_NEEDED: ("Дякуємо за готовність допомогти!", "Цей запит уже не актуальний."),
        Outcome.EXPIRED: ("Термін посилання минув", "Нічого не змінено."),
        Outcome.LIMIT_REACHED: ("Неможливо погодитися", "Нічого не змінено."),
        Outcome.NOT_FOUND: ("Недійсне посилання", "Нічого не змінено."),
        TAMPERED: ("Недійсне посилання", "Нічого не змінено."),
        TOO_MANY: ("Зачекайте хвилинку", "Забагато запитів з вашого з'єднання. Спробуйте ще раз трохи згодом."),
        "button_accept": ("Так, погоджуюся", ""),
        "button_decline": ("Так, відмовляюся", ""),
    },
    "ar": {
        CONFIRM_ACCEPT: ("قبول الطلب؟", "يرجى تأكيد قبولك لهذا الطلب."),
        CONFIRM_DECLINE: ("رفض الطلب؟", "يرجى تأكيد رفضك لهذا الطلب."),
        Outcome.ACCEPTED: ("شكرًا لك!", "لقد وافقت. سيتواصل معك المنسقون."),
        Outcome.DECLINED: ("شكرًا لردك", "لقد رفضت. سنسأل شخصًا آخر."),
        Outcome.ALREADY_ACCEPTED: ("تم استخدام الرابط", "لقد وافقت على هذا الطلب من قبل."),
        Outcome.ALREADY_DECLINED: ("تم استخدام الرابط", "لقد أجبت على هذا الطلب من قبل."),
        Outcome.NO_LONGER_NEEDED: ("شكرًا على استعدادك للمساعدة!", "لم يعد هذا الطلب مطلوبًا."),
        Outcome.EXPIRED: ("انتهت صلاحية الرابط", "لم يتغير شيء."),
        Outcome.LIMIT_REACHED: ("لا يمكن القبول", "لم يتغير شيء."),
        Outcome.NOT_FOUND: ("رابط غير صالح", "لم يتغير شيء."),
        TAMPERED: ("رابط غير صالح", "لم يتغير شيء."),
        TOO_MANY: ("يرجى الانتظار قليلًا", "وصلت طلبات كثيرة جدًا من اتصالك. يرجى المحاولة مرة أخرى بعد قليل."),
        "button_accept": ("نعم، أوافق", ""),
        "button_decline": ("نعم، أرفض", ""),
    },
}

STATUS = {
    Outcome.ACCEPTED: 200,
    Outcome.DECLINED: 200,
    Outcome.NO_LONGER_NEEDED: 200,  # answered kindly: nothing is wrong with the volunteer's click
    Outcome.ALREADY_ACCEPTED: 409,
    Outcome.ALREADY_DECLINED: 409,
    Outcome.LIMIT_REACHED: 409,
    Outcome.EXPIRED: 410,
    Outcome.NOT_FOUND: 404,
    TAMPERED: 400,
    TOO_MANY: 429,
}


def languages_for(tenant_language: str | None) -> list[str]:
    chosen = ["de"]
    if tenant_language and tenant_language != "de" and tenant_language in TEXTS:
        chosen.append(tenant_language)
    return chosen


def page(kind: str, languages: list[str], *, summary: str = "", choice: str | None = None) -> str:
    sections = []
    for language in languages:
        title, text = TEXTS[language][kind]
        direction = ' dir="rtl"' if language == "ar" else ""
        body = f"<h1>{escape(title)}</h1><p>{escape(text)}</p>"
        if summary:
            body += f"<blockquote>{escape(summary)}</blockquote>"
        if choice is not None:
            label = TEXTS[language][f"button_{choice}"][0]
            body += (
                f'<form method="post"><input type="hidden" name="choice" value="{escape(choice)}">'
                f'<button type="submit">{escape(label)}</button></form>'
            )
        sections.append(f'<section lang="{language}"{direction}>{body}</section>')
    return (
        '<!doctype html><html lang="de"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex"><title>Lotse</title></head><body>'
        + "<hr>".join(sections)
        + "</body></html>"
    )
