# ruff: noqa: RUF001 - the wording is in six languages and scripts on purpose
"""The default wording: message templates, guidance and labels in every supported language.

German comes first and is the last fallback. Templates are Jinja sources (subject and text per
kind and language; the HTML part is one shared layout around the text unless a tenant overrides
it). The guidance follows the coordination offices' own words: "Als Koordinationsstelle
erfüllen wir eine Lotsenfunktion für Ehrenamtliche" — so the office is always named as the
person's guide and contact.
"""

from __future__ import annotations

WELCOME = "welcome"
MATCH_PROPOSED = "match_proposed"
PROPOSAL_REMINDER = "proposal_reminder"
PROPOSAL_ACCEPTED = "proposal_accepted"
NEED_CANCELLED = "need_cancelled"
NEED_UNSTAFFED = "need_unstaffed"
NEED_STAFFED = "need_staffed"
WEEKLY_DIGEST = "weekly_digest"
KINDS: tuple[str, ...] = (
    WELCOME,
    MATCH_PROPOSED,
    PROPOSAL_REMINDER,
    PROPOSAL_ACCEPTED,
    NEED_CANCELLED,
    NEED_UNSTAFFED,
    NEED_STAFFED,
    WEEKLY_DIGEST,
)
LANGUAGES: tuple[str, ...] = ("de", "en", "ar", "uk", "fa", "tr")
RIGHT_TO_LEFT: frozenset[str] = frozenset({"ar", "fa", "he", "ur", "ps", "ku"})
FALLBACK_LANGUAGE = "de"

GUIDANCE_TOPICS: tuple[str, ...] = ("insurance", "certificates", "contact")

GUIDANCE: dict[str, dict[str, str]] = {
    "de": {
        "insurance": (
            "Während Ihres Engagements sind Sie über die Sammelversicherung des Landes für Ehrenamtliche "
            "unfall- und haftpflichtversichert. Fragen Sie uns, wenn Sie unsicher sind."
        ),
        "certificates": (
            "Für die Arbeit mit Kindern und Jugendlichen brauchen Sie ein erweitertes Führungszeugnis. "
            "Wir geben Ihnen eine Bestätigung, damit es für Sie kostenlos ist."
        ),
        "contact": (
            "Als Koordinationsstelle erfüllen wir eine Lotsenfunktion: Wir begleiten Sie in Ihr Ehrenamt "
            "und stehen bei Fragen immer zur Verfügung."
        ),
    },
    "en": {
        "insurance": (
            "While you volunteer, the state's collective insurance for volunteers covers you for accidents "
            "and liability. Ask us if you are unsure."
        ),
        "certificates": (
            "For work with children and young people you need an extended police certificate "
            "(erweitertes Führungszeugnis). We give you a confirmation so that it is free of charge."
        ),
        "contact": (
            "As your coordination office we are your guide: we accompany you into your volunteering "
            "and are always there for your questions."
        ),
    },
    "ar": {
        "insurance": (
            "أثناء عملك التطوعي أنت مؤمَّن ضد الحوادث والمسؤولية المدنية عبر التأمين الجماعي للمتطوعين "
            "في الولاية. اسألنا إذا لم تكن متأكداً."
        ),
        "certificates": (
            "للعمل مع الأطفال والشباب تحتاج إلى شهادة حسن سيرة وسلوك موسّعة (erweitertes Führungszeugnis). "
            "نعطيك تأكيداً لتحصل عليها مجاناً."
        ),
        "contact": ("بصفتنا مكتب التنسيق نحن مرشدك: نرافقك في بداية عملك التطوعي ونحن دائماً في خدمتك عند أي سؤال."),
    },
    "uk": {
        "insurance": (
            "Під час волонтерства вас захищає колективне страхування волонтерів федеральної землі — від "
            "нещасних випадків і цивільної відповідальності. Якщо маєте сумніви, запитайте нас."
        ),
        "certificates": (
            "Для роботи з дітьми та молоддю потрібна розширена довідка про несудимість "
            "(erweitertes Führungszeugnis). Ми дамо вам підтвердження, щоб ви отримали її безкоштовно."
        ),
        "contact": (
            "Як координаційний офіс ми ваш провідник: супроводжуємо вас у волонтерстві й завжди "
            "відповідаємо на ваші запитання."
        ),
    },
    "fa": {
        "insurance": (
            "در طول فعالیت داوطلبانه، از طریق بیمهٔ جمعی داوطلبان ایالت در برابر حوادث و مسئولیت مدنی "
            "بیمه هستید. اگر مطمئن نیستید، از ما بپرسید."
        ),
        "certificates": (
            "برای کار با کودکان و نوجوانان به گواهی عدم سوءپیشینهٔ گسترده (erweitertes Führungszeugnis) "
            "نیاز دارید. ما تأییدیه‌ای به شما می‌دهیم تا آن را رایگان دریافت کنید."
        ),
        "contact": (
            "ما به‌عنوان دفتر هماهنگی راهنمای شما هستیم: شما را در فعالیت داوطلبانه همراهی می‌کنیم "
            "و همیشه پاسخگوی پرسش‌هایتان هستیم."
        ),
    },
    "tr": {
        "insurance": (
            "Gönüllü çalışmanız sırasında eyaletin gönüllüler için toplu sigortasıyla kazaya ve sorumluluğa "
            "karşı sigortalısınız. Emin değilseniz bize sorun."
        ),
        "certificates": (
            "Çocuklar ve gençlerle çalışmak için genişletilmiş adli sicil kaydı (erweitertes Führungszeugnis) "
            "gerekir. Ücretsiz alabilmeniz için size bir onay yazısı veriyoruz."
        ),
        "contact": (
            "Koordinasyon ofisi olarak rehberiniziz: Gönüllülüğünüzde size eşlik ediyor, sorularınız için "
            "her zaman yanınızdayız."
        ),
    },
}

CATEGORY_LABELS: dict[str, dict[str, str]] = {
    "de": {
        "accompaniment_to_authorities": "Begleitung zu Behörden",
        "translation": "Übersetzen",
        "childcare": "Kinderbetreuung",
        "tutoring": "Lernhilfe",
        "housing_help": "Hilfe rund ums Wohnen",
        "mobility": "Mobilität",
        "leisure": "Freizeit",
        "other": "Sonstiges",
    },
    "en": {
        "accompaniment_to_authorities": "Accompaniment to authorities",
        "translation": "Translation",
        "childcare": "Childcare",
        "tutoring": "Tutoring",
        "housing_help": "Help with housing",
        "mobility": "Mobility",
        "leisure": "Leisure",
        "other": "Other",
    },
    "ar": {
        "accompaniment_to_authorities": "مرافقة إلى الدوائر الرسمية",
        "translation": "ترجمة",
        "childcare": "رعاية الأطفال",
        "tutoring": "مساعدة في التعلّم",
        "housing_help": "مساعدة في السكن",
        "mobility": "التنقّل",
        "leisure": "أوقات الفراغ",
        "other": "أخرى",
    },
    "uk": {
        "accompaniment_to_authorities": "Супровід до установ",
        "translation": "Переклад",
        "childcare": "Догляд за дітьми",
        "tutoring": "Допомога з навчанням",
        "housing_help": "Допомога з житлом",
        "mobility": "Транспорт",
        "leisure": "Дозвілля",
        "other": "Інше",
    },
    "fa": {
        "accompaniment_to_authorities": "همراهی به ادارات",
        "translation": "ترجمه",
        "childcare": "نگهداری از کودک",
        "tutoring": "کمک درسی",
        "housing_help": "کمک در امور مسکن",
        "mobility": "رفت‌وآمد",
        "leisure": "اوقات فراغت",
        "other": "سایر",
    },
    "tr": {
        "accompaniment_to_authorities": "Resmi dairelere refakat",
        "translation": "Tercüme",
        "childcare": "Çocuk bakımı",
        "tutoring": "Ders desteği",
        "housing_help": "Konut konusunda yardım",
        "mobility": "Ulaşım",
        "leisure": "Boş zaman",
        "other": "Diğer",
    },
}

REASON_LABELS: dict[str, dict[str, str]] = {
    "de": {
        "skills": "Ihre Fähigkeiten passen zur Anfrage.",
        "language": "Sie sprechen die Sprache, die gebraucht wird.",
        "distance": "Sie wohnen in der Nähe.",
        "availability": "Sie haben zur passenden Zeit Zeit.",
        "certificate": "Sie haben den nötigen Nachweis.",
        "organisation": "Die Anfrage kommt von Ihrer Initiative.",
    },
    "en": {
        "skills": "Your skills fit the request.",
        "language": "You speak the language that is needed.",
        "distance": "You live nearby.",
        "availability": "You are free at the right time.",
        "certificate": "You have the certificate that is needed.",
        "organisation": "The request comes from your initiative.",
    },
    "ar": {
        "skills": "مهاراتك تناسب الطلب.",
        "language": "أنت تتحدث اللغة المطلوبة.",
        "distance": "أنت تسكن قريباً.",
        "availability": "وقتك متاح في الموعد المناسب.",
        "certificate": "لديك الشهادة المطلوبة.",
        "organisation": "الطلب من مبادرتك.",
    },
    "uk": {
        "skills": "Ваші навички підходять до запиту.",
        "language": "Ви володієте потрібною мовою.",
        "distance": "Ви живете поблизу.",
        "availability": "Ви вільні в потрібний час.",
        "certificate": "У вас є потрібний документ.",
        "organisation": "Запит надійшов від вашої ініціативи.",
    },
    "fa": {
        "skills": "مهارت‌های شما با این درخواست جور است.",
        "language": "شما به زبان مورد نیاز صحبت می‌کنید.",
        "distance": "شما در همین نزدیکی زندگی می‌کنید.",
        "availability": "در زمان مناسب وقت آزاد دارید.",
        "certificate": "مدرک لازم را دارید.",
        "organisation": "این درخواست از طرف گروه داوطلبانهٔ شماست.",
    },
    "tr": {
        "skills": "Becerileriniz bu talebe uyuyor.",
        "language": "Gereken dili konuşuyorsunuz.",
        "distance": "Yakınlarda oturuyorsunuz.",
        "availability": "Uygun zamanda vaktiniz var.",
        "certificate": "Gereken belgeye sahipsiniz.",
        "organisation": "Talep sizin girişiminizden geliyor.",
    },
}

UNSTAFFED_LABELS: dict[str, dict[str, str]] = {
    "de": {
        "no_candidates": "Es gibt keine passenden Engagierten.",
        "all_declined": "Alle Gefragten haben abgesagt.",
        "proposals_expired": "Die Vorschläge sind unbeantwortet abgelaufen.",
        "volunteer_stepped_back": "Eine engagierte Person ist zurückgetreten.",
        "start_approaching": "Der Termin rückt näher.",
    },
    "en": {
        "no_candidates": "There are no suitable volunteers.",
        "all_declined": "Everyone asked has declined.",
        "proposals_expired": "The proposals expired unanswered.",
        "volunteer_stepped_back": "A volunteer stepped back.",
        "start_approaching": "The date is coming close.",
    },
    "ar": {
        "no_candidates": "لا يوجد متطوعون مناسبون.",
        "all_declined": "كل من سُئل اعتذر.",
        "proposals_expired": "انتهت مدة الاقتراحات دون رد.",
        "volunteer_stepped_back": "انسحب أحد المتطوعين.",
        "start_approaching": "الموعد يقترب.",
    },
    "uk": {
        "no_candidates": "Немає відповідних волонтерів.",
        "all_declined": "Усі, кого запитали, відмовилися.",
        "proposals_expired": "Пропозиції минули без відповіді.",
        "volunteer_stepped_back": "Волонтер відмовився від участі.",
        "start_approaching": "Дата наближається.",
    },
    "fa": {
        "no_candidates": "داوطلب مناسبی وجود ندارد.",
        "all_declined": "همهٔ کسانی که پرسیده شدند، نپذیرفتند.",
        "proposals_expired": "پیشنهادها بدون پاسخ منقضی شدند.",
        "volunteer_stepped_back": "یک داوطلب کنار کشید.",
        "start_approaching": "زمان شروع نزدیک است.",
    },
    "tr": {
        "no_candidates": "Uygun gönüllü yok.",
        "all_declined": "Sorulan herkes reddetti.",
        "proposals_expired": "Öneriler yanıtsız sona erdi.",
        "volunteer_stepped_back": "Bir gönüllü ayrıldı.",
        "start_approaching": "Tarih yaklaşıyor.",
    },
}

CERTIFICATE_LABELS: dict[str, dict[str, str]] = {
    "de": {
        "extended_police_certificate": "erweitertes Führungszeugnis",
        "first_aid": "Erste-Hilfe-Nachweis",
        "measles_immunity": "Nachweis der Masernimmunität",
        "driving_licence": "Führerschein",
        "interpreter_qualification": "Dolmetscherqualifikation",
    },
    "en": {
        "extended_police_certificate": "extended police certificate",
        "first_aid": "first aid certificate",
        "measles_immunity": "proof of measles immunity",
        "driving_licence": "driving licence",
        "interpreter_qualification": "interpreter qualification",
    },
    "ar": {
        "extended_police_certificate": "شهادة حسن سيرة وسلوك موسّعة",
        "first_aid": "شهادة إسعافات أولية",
        "measles_immunity": "إثبات المناعة ضد الحصبة",
        "driving_licence": "رخصة قيادة",
        "interpreter_qualification": "مؤهل ترجمة فورية",
    },
    "uk": {
        "extended_police_certificate": "розширена довідка про несудимість",
        "first_aid": "посвідчення з першої допомоги",
        "measles_immunity": "підтвердження імунітету до кору",
        "driving_licence": "посвідчення водія",
        "interpreter_qualification": "кваліфікація перекладача",
    },
    "fa": {
        "extended_police_certificate": "گواهی عدم سوءپیشینهٔ گسترده",
        "first_aid": "گواهی کمک‌های اولیه",
        "measles_immunity": "گواهی ایمنی در برابر سرخک",
        "driving_licence": "گواهینامهٔ رانندگی",
        "interpreter_qualification": "صلاحیت مترجمی",
    },
    "tr": {
        "extended_police_certificate": "genişletilmiş adli sicil kaydı",
        "first_aid": "ilk yardım belgesi",
        "measles_immunity": "kızamık bağışıklığı belgesi",
        "driving_licence": "ehliyet",
        "interpreter_qualification": "tercümanlık yeterliliği",
    },
}

# Weekdays for describing weekly needs, Monday first.
WEEKDAYS: dict[str, tuple[str, ...]] = {
    "de": ("montags", "dienstags", "mittwochs", "donnerstags", "freitags", "samstags", "sonntags"),
    "en": ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays"),
    "ar": ("أيام الاثنين", "أيام الثلاثاء", "أيام الأربعاء", "أيام الخميس", "أيام الجمعة", "أيام السبت", "أيام الأحد"),
    "uk": ("щопонеділка", "щовівторка", "щосереди", "щочетверга", "щоп'ятниці", "щосуботи", "щонеділі"),
    "fa": ("دوشنبه‌ها", "سه‌شنبه‌ها", "چهارشنبه‌ها", "پنجشنبه‌ها", "جمعه‌ها", "شنبه‌ها", "یکشنبه‌ها"),
    "tr": ("pazartesileri", "salıları", "çarşambaları", "perşembeleri", "cumaları", "cumartesileri", "pazarları"),
}

_CONTACT_LINE = {
    "de": "Fragen? Ihr Lotse ist {{ office.name }}: {{ office.email }}",
    "en": "Questions? Your guide is {{ office.name }}: {{ office.email }}",
    "ar": "أسئلة؟ مرشدك هو {{ office.name }}: {{ office.email }}",
    "uk": "Запитання? Ваш провідник — {{ office.name }}: {{ office.email }}",
    "fa": "پرسشی دارید؟ راهنمای شما {{ office.name }} است: {{ office.email }}",
    "tr": "Sorularınız mı var? Rehberiniz {{ office.name }}: {{ office.email }}",
}

_NEED_LINES = {
    "de": "Worum es geht: {{ need.description }}\nArt der Hilfe: {{ need.category }}\n"
    "{% if need.district %}Ort: {{ need.district }}\n{% endif %}Wann: {{ need.when }}\n",
    "en": "What it is about: {{ need.description }}\nKind of help: {{ need.category }}\n"
    "{% if need.district %}Where: {{ need.district }}\n{% endif %}When: {{ need.when }}\n",
    "ar": "موضوع الطلب: {{ need.description }}\nنوع المساعدة: {{ need.category }}\n"
    "{% if need.district %}المكان: {{ need.district }}\n{% endif %}الموعد: {{ need.when }}\n",
    "uk": "Про що йдеться: {{ need.description }}\nВид допомоги: {{ need.category }}\n"
    "{% if need.district %}Де: {{ need.district }}\n{% endif %}Коли: {{ need.when }}\n",
    "fa": "موضوع: {{ need.description }}\nنوع کمک: {{ need.category }}\n"
    "{% if need.district %}مکان: {{ need.district }}\n{% endif %}زمان: {{ need.when }}\n",
    "tr": "Konu: {{ need.description }}\nYardım türü: {{ need.category }}\n"
    "{% if need.district %}Yer: {{ need.district }}\n{% endif %}Zaman: {{ need.when }}\n",
}

_ANSWER_LINKS = {
    "de": "{% if accept_url %}Zusagen: {{ accept_url }}\nAbsagen: {{ decline_url }}\n"
    "{% else %}Antworten Sie bitte in der Lotse-App.\n{% endif %}",
    "en": "{% if accept_url %}Accept: {{ accept_url }}\nDecline: {{ decline_url }}\n"
    "{% else %}Please answer in the Lotse app.\n{% endif %}",
    "ar": "{% if accept_url %}للقبول: {{ accept_url }}\nللاعتذار: {{ decline_url }}\n"
    "{% else %}يرجى الرد في تطبيق Lotse.\n{% endif %}",
    "uk": "{% if accept_url %}Погодитися: {{ accept_url }}\nВідмовитися: {{ decline_url }}\n"
    "{% else %}Будь ласка, дайте відповідь у застосунку Lotse.\n{% endif %}",
    "fa": "{% if accept_url %}پذیرفتن: {{ accept_url }}\nنپذیرفتن: {{ decline_url }}\n"
    "{% else %}لطفاً در برنامهٔ Lotse پاسخ دهید.\n{% endif %}",
    "tr": "{% if accept_url %}Kabul et: {{ accept_url }}\nReddet: {{ decline_url }}\n"
    "{% else %}Lütfen Lotse uygulamasında yanıt verin.\n{% endif %}",
}

_REASONS = "{% for reason in reasons %}- {{ reason }}\n{% endfor %}"

TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "de": {
        WELCOME: (
            "Willkommen, {{ recipient_name }}!",
            "Hallo {{ recipient_name }},\n\n"
            "schön, dass Sie sich in {{ tenant_name }} für geflüchtete Menschen engagieren möchten. "
            "Wem Sie helfen, entscheiden Sie selbst: Wir schlagen Ihnen passende Anfragen vor, "
            "und Sie sagen zu oder ab.\n\n"
            "Was Sie wissen sollten:\n"
            "- Versicherung: {{ guidance.insurance }}\n"
            "- Nachweise: {{ guidance.certificates }}\n"
            "- Ansprechpartner: {{ guidance.contact }}\n\n"
            "Herzliche Grüße\n{{ office.name }}\n\n" + _CONTACT_LINE["de"] + "\n",
        ),
        MATCH_PROPOSED: (
            "Eine Anfrage, die zu Ihnen passt: {{ need.category }}",
            "Hallo {{ recipient_name }},\n\n"
            "wir möchten Ihnen eine Anfrage vorschlagen. Ob Sie helfen, entscheiden Sie.\n\n"
            + _NEED_LINES["de"]
            + "\nWarum wir Sie fragen:\n"
            + _REASONS
            + "\n"
            + _ANSWER_LINKS["de"]
            + "\nBitte antworten Sie bis {{ deadline }}. Eine Absage ist völlig in Ordnung.\n\n"
            + _CONTACT_LINE["de"]
            + "\n",
        ),
        PROPOSAL_REMINDER: (
            "Erinnerung: Bitte antworten Sie bis {{ deadline }}",
            "Hallo {{ recipient_name }},\n\n"
            "wir haben Ihnen eine Anfrage vorgeschlagen und noch keine Antwort von Ihnen.\n\n"
            + _NEED_LINES["de"]
            + "\n"
            + _ANSWER_LINKS["de"]
            + "\nDer Vorschlag läuft am {{ deadline }} ab. Eine Absage ist völlig in Ordnung.\n\n"
            + _CONTACT_LINE["de"]
            + "\n",
        ),
        PROPOSAL_ACCEPTED: (
            "Danke für Ihre Zusage: {{ need.category }}",
            "Hallo {{ recipient_name }},\n\n"
            "schön, dass Sie helfen! Ihre Zusage ist angekommen.\n\n"
            + _NEED_LINES["de"]
            + "{% if need.certificate %}\nBitte denken Sie an diesen Nachweis: {{ need.certificate }}. "
            "{{ guidance.certificates }}\n{% endif %}"
            "\nWenn etwas dazwischenkommt, sagen Sie bitte rechtzeitig Bescheid.\n\n" + _CONTACT_LINE["de"] + "\n",
        ),
        NEED_CANCELLED: (
            "Anfrage abgesagt: {{ need.category }}",
            "Hallo {{ recipient_name }},\n\n"
            "diese Anfrage wird nicht mehr gebraucht und ist abgesagt:\n\n" + _NEED_LINES["de"] + "\n"
            "Sie müssen nichts weiter tun. Danke für Ihre Bereitschaft – wir melden uns, "
            "wenn wieder etwas Passendes kommt.\n\n" + _CONTACT_LINE["de"] + "\n",
        ),
        NEED_UNSTAFFED: (
            "Anfrage ohne genug Engagierte: {{ need.category }}",
            "Hallo {{ recipient_name }},\n\n"
            "für diese Anfrage fehlen noch Engagierte:\n\n" + _NEED_LINES["de"] + "Zugesagt: {{ committed }} von "
            "{{ needed }}\nGrund: {{ reason }}\n\n"
            "Bitte prüfen Sie, ob Sie die Anfrage anpassen, Engagierte direkt ansprechen oder eine "
            "Initiative um Hilfe bitten können.\n\nLotse, {{ tenant_name }}\n",
        ),
        NEED_STAFFED: (
            "Anfrage besetzt: {{ need.category }}",
            "Hallo {{ recipient_name }},\n\n"
            "gute Nachricht: Diese Anfrage ist besetzt.\n\n" + _NEED_LINES["de"] + "Zugesagt: {{ committed }} von "
            "{{ needed }}\n\n"
            "Wer zugesagt hat, sehen Sie in Lotse. Vielen Dank, dass Sie diese Hilfe möglich machen!\n\n"
            "Lotse, {{ tenant_name }}\n",
        ),
        WEEKLY_DIGEST: (
            "Wochenübersicht {{ week }}: {{ digest.open }} offen, {{ digest.unstaffed }} ohne genug Engagierte",
            "Hallo {{ recipient_name }},\n\n"
            "so steht es diese Woche in {{ tenant_name }}:\n"
            "- offene Anfragen: {{ digest.open }}\n"
            "- davon ohne genug Engagierte: {{ digest.unstaffed }}\n"
            "- besetzte Anfragen: {{ digest.staffed }}\n"
            "- Besetzungsquote: {{ digest.staffing_rate }} %\n"
            "{% if digest.unstaffed_needs %}\nAnfragen, die Aufmerksamkeit brauchen:\n"
            "{% for item in digest.unstaffed_needs %}- {{ item.category }}"
            "{% if item.district %} ({{ item.district }}){% endif %}: {{ item.description }}\n{% endfor %}"
            "{% endif %}\nLotse, {{ tenant_name }}\n",
        ),
    },
    "en": {
        WELCOME: (
            "Welcome, {{ recipient_name }}!",
            "Hello {{ recipient_name }},\n\n"
            "thank you for wanting to support refugees in {{ tenant_name }}. Whom you help is your own "
            "decision: we suggest requests that fit you, and you accept or decline.\n\n"
            "Good to know:\n"
            "- Insurance: {{ guidance.insurance }}\n"
            "- Certificates: {{ guidance.certificates }}\n"
            "- Whom to ask: {{ guidance.contact }}\n\n"
            "Kind regards\n{{ office.name }}\n\n" + _CONTACT_LINE["en"] + "\n",
        ),
        MATCH_PROPOSED: (
            "A request that fits you: {{ need.category }}",
            "Hello {{ recipient_name }},\n\n"
            "we would like to suggest a request to you. Whether you help is your decision.\n\n"
            + _NEED_LINES["en"]
            + "\nWhy we are asking you:\n"
            + _REASONS
            + "\n"
            + _ANSWER_LINKS["en"]
            + "\nPlease answer by {{ deadline }}. Saying no is perfectly fine.\n\n"
            + _CONTACT_LINE["en"]
            + "\n",
        ),
        PROPOSAL_REMINDER: (
            "Reminder: please answer by {{ deadline }}",
            "Hello {{ recipient_name }},\n\n"
            "we suggested a request to you and have not heard back yet.\n\n"
            + _NEED_LINES["en"]
            + "\n"
            + _ANSWER_LINKS["en"]
            + "\nThe suggestion expires on {{ deadline }}. Saying no is perfectly fine.\n\n"
            + _CONTACT_LINE["en"]
            + "\n",
        ),
        PROPOSAL_ACCEPTED: (
            "Thank you for saying yes: {{ need.category }}",
            "Hello {{ recipient_name }},\n\n"
            "great that you are helping! We have received your answer.\n\n"
            + _NEED_LINES["en"]
            + "{% if need.certificate %}\nPlease remember this document: {{ need.certificate }}. "
            "{{ guidance.certificates }}\n{% endif %}"
            "\nIf something comes up, please let us know in good time.\n\n" + _CONTACT_LINE["en"] + "\n",
        ),
        NEED_CANCELLED: (
            "Request cancelled: {{ need.category }}",
            "Hello {{ recipient_name }},\n\n"
            "this request is no longer needed and has been cancelled:\n\n" + _NEED_LINES["en"] + "\n"
            "You do not need to do anything. Thank you for being ready to help – we will be in touch "
            "when something suitable comes up.\n\n" + _CONTACT_LINE["en"] + "\n",
        ),
        NEED_UNSTAFFED: (
            "Request without enough volunteers: {{ need.category }}",
            "Hello {{ recipient_name }},\n\n"
            "this request still lacks volunteers:\n\n" + _NEED_LINES["en"] + "Committed: {{ committed }} of "
            "{{ needed }}\nReason: {{ reason }}\n\n"
            "Please check whether you can adjust the request, approach volunteers directly or ask an "
            "initiative for help.\n\nLotse, {{ tenant_name }}\n",
        ),
        NEED_STAFFED: (
            "Request staffed: {{ need.category }}",
            "Hello {{ recipient_name }},\n\n"
            "good news: this request is staffed.\n\n" + _NEED_LINES["en"] + "Committed: {{ committed }} of "
            "{{ needed }}\n\n"
            "You can see who committed in Lotse. Thank you for making this help possible!\n\n"
            "Lotse, {{ tenant_name }}\n",
        ),
        WEEKLY_DIGEST: (
            "Weekly summary {{ week }}: {{ digest.open }} open, {{ digest.unstaffed }} without enough volunteers",
            "Hello {{ recipient_name }},\n\n"
            "this is where {{ tenant_name }} stands this week:\n"
            "- open requests: {{ digest.open }}\n"
            "- of these without enough volunteers: {{ digest.unstaffed }}\n"
            "- staffed requests: {{ digest.staffed }}\n"
            "- staffing rate: {{ digest.staffing_rate }} %\n"
            "{% if digest.unstaffed_needs %}\nRequests that need attention:\n"
            "{% for item in digest.unstaffed_needs %}- {{ item.category }}"
            "{% if item.district %} ({{ item.district }}){% endif %}: {{ item.description }}\n{% endfor %}"
            "{% endif %}\nLotse, {{ tenant_name }}\n",
        ),
    },
    "ar": {
        WELCOME: (
            "أهلاً وسهلاً، {{ recipient_name }}!",
            "مرحباً {{ recipient_name }}،\n\n"
            "شكراً لرغبتك في دعم اللاجئين في {{ tenant_name }}. أنت من يقرر لمن تقدّم المساعدة: "
            "نقترح عليك طلبات تناسبك، وأنت تقبل أو تعتذر.\n\n"
            "معلومات مهمة:\n"
            "- التأمين: {{ guidance.insurance }}\n"
            "- الشهادات: {{ guidance.certificates }}\n"
            "- لمن تسأل: {{ guidance.contact }}\n\n"
            "مع أطيب التحيات\n{{ office.name }}\n\n" + _CONTACT_LINE["ar"] + "\n",
        ),
        MATCH_PROPOSED: (
            "طلب يناسبك: {{ need.category }}",
            "مرحباً {{ recipient_name }}،\n\n"
            "نود أن نقترح عليك طلب مساعدة. القرار لك في أن تساعد أو لا.\n\n"
            + _NEED_LINES["ar"]
            + "\nلماذا نسألك:\n"
            + _REASONS
            + "\n"
            + _ANSWER_LINKS["ar"]
            + "\nيرجى الرد قبل {{ deadline }}. لا بأس أبداً إن اعتذرت.\n\n"
            + _CONTACT_LINE["ar"]
            + "\n",
        ),
        PROPOSAL_REMINDER: (
            "تذكير: يرجى الرد قبل {{ deadline }}",
            "مرحباً {{ recipient_name }}،\n\n"
            "اقترحنا عليك طلب مساعدة ولم يصلنا ردك بعد.\n\n"
            + _NEED_LINES["ar"]
            + "\n"
            + _ANSWER_LINKS["ar"]
            + "\nينتهي الاقتراح في {{ deadline }}. لا بأس أبداً إن اعتذرت.\n\n"
            + _CONTACT_LINE["ar"]
            + "\n",
        ),
        PROPOSAL_ACCEPTED: (
            "شكراً لموافقتك: {{ need.category }}",
            "مرحباً {{ recipient_name }}،\n\n"
            "يسعدنا أنك ستساعد! وصلتنا موافقتك.\n\n"
            + _NEED_LINES["ar"]
            + "{% if need.certificate %}\nيرجى تذكّر هذه الوثيقة: {{ need.certificate }}. "
            "{{ guidance.certificates }}\n{% endif %}"
            "\nإذا طرأ أي أمر، يرجى إبلاغنا في الوقت المناسب.\n\n" + _CONTACT_LINE["ar"] + "\n",
        ),
        NEED_CANCELLED: (
            "تم إلغاء الطلب: {{ need.category }}",
            "مرحباً {{ recipient_name }}،\n\n"
            "لم تعد هناك حاجة إلى هذا الطلب وقد أُلغي:\n\n" + _NEED_LINES["ar"] + "\n"
            "لا داعي لأن تفعل شيئاً. شكراً لاستعدادك للمساعدة، وسنتواصل معك عندما يتوفر طلب مناسب.\n\n"
            + _CONTACT_LINE["ar"]
            + "\n",
        ),
        NEED_UNSTAFFED: (
            "طلب بلا عدد كافٍ من المتطوعين: {{ need.category }}",
            "مرحباً {{ recipient_name }}،\n\n"
            "هذا الطلب ما زال يحتاج إلى متطوعين:\n\n" + _NEED_LINES["ar"] + "الموافقات: {{ committed }} من "
            "{{ needed }}\nالسبب: {{ reason }}\n\n"
            "يرجى النظر في تعديل الطلب أو التواصل مع متطوعين مباشرة أو طلب المساعدة من إحدى المبادرات.\n\n"
            "Lotse، {{ tenant_name }}\n",
        ),
        NEED_STAFFED: (
            "تمت تغطية الطلب: {{ need.category }}",
            "مرحباً {{ recipient_name }}،\n\n"
            "خبر سار: وجدنا عدداً كافياً من المتطوعين لهذا الطلب.\n\n" + _NEED_LINES["ar"] + "الموافقات: "
            "{{ committed }} من {{ needed }}\n\n"
            "يمكنكم رؤية من وافق في Lotse. شكراً لكم لأنكم جعلتم هذه المساعدة ممكنة!\n\n"
            "Lotse، {{ tenant_name }}\n",
        ),
        WEEKLY_DIGEST: (
            "الملخص الأسبوعي {{ week }}: {{ digest.open }} مفتوحة، {{ digest.unstaffed }} بلا متطوعين كافين",
            "مرحباً {{ recipient_name }}،\n\n"
            "هذا هو الوضع في {{ tenant_name }} هذا الأسبوع:\n"
            "- الطلبات المفتوحة: {{ digest.open }}\n"
            "- منها بلا عدد كافٍ من المتطوعين: {{ digest.unstaffed }}\n"
            "- الطلبات المغطاة: {{ digest.staffed }}\n"
            "- نسبة التغطية: {{ digest.staffing_rate }} %\n"
            "{% if digest.unstaffed_needs %}\nطلبات تحتاج إلى اهتمام:\n"
            "{% for item in digest.unstaffed_needs %}- {{ item.category }}"
            "{% if item.district %} ({{ item.district }}){% endif %}: {{ item.description }}\n{% endfor %}"
            "{% endif %}\nLotse، {{ tenant_name }}\n",
        ),
    },
    "uk": {
        WELCOME: (
            "Ласкаво просимо, {{ recipient_name }}!",
            "Вітаємо, {{ recipient_name }}!\n\n"
            "Дякуємо, що хочете підтримувати біженців у {{ tenant_name }}. Кому допомагати, вирішуєте ви: "
            "ми пропонуємо відповідні запити, а ви погоджуєтеся або відмовляєтеся.\n\n"
            "Варто знати:\n"
            "- Страхування: {{ guidance.insurance }}\n"
            "- Документи: {{ guidance.certificates }}\n"
            "- До кого звертатися: {{ guidance.contact }}\n\n"
            "З найкращими побажаннями\n{{ office.name }}\n\n" + _CONTACT_LINE["uk"] + "\n",
        ),
        MATCH_PROPOSED: (
            "Запит, що вам підходить: {{ need.category }}",
            "Вітаємо, {{ recipient_name }}!\n\n"
            "Ми хочемо запропонувати вам запит. Допомагати чи ні — вирішуєте ви.\n\n"
            + _NEED_LINES["uk"]
            + "\nЧому ми звертаємося саме до вас:\n"
            + _REASONS
            + "\n"
            + _ANSWER_LINKS["uk"]
            + "\nБудь ласка, дайте відповідь до {{ deadline }}. Відмовитися — цілком нормально.\n\n"
            + _CONTACT_LINE["uk"]
            + "\n",
        ),
        PROPOSAL_REMINDER: (
            "Нагадування: будь ласка, дайте відповідь до {{ deadline }}",
            "Вітаємо, {{ recipient_name }}!\n\n"
            "Ми запропонували вам запит і ще не отримали відповіді.\n\n"
            + _NEED_LINES["uk"]
            + "\n"
            + _ANSWER_LINKS["uk"]
            + "\nПропозиція діє до {{ deadline }}. Відмовитися — цілком нормально.\n\n"
            + _CONTACT_LINE["uk"]
            + "\n",
        ),
        PROPOSAL_ACCEPTED: (
            "Дякуємо за згоду: {{ need.category }}",
            "Вітаємо, {{ recipient_name }}!\n\n"
            "Чудово, що ви допомагаєте! Ми отримали вашу згоду.\n\n"
            + _NEED_LINES["uk"]
            + "{% if need.certificate %}\nБудь ласка, не забудьте про цей документ: {{ need.certificate }}. "
            "{{ guidance.certificates }}\n{% endif %}"
            "\nЯкщо щось зміниться, будь ласка, повідомте нас вчасно.\n\n" + _CONTACT_LINE["uk"] + "\n",
        ),
        NEED_CANCELLED: (
            "Запит скасовано: {{ need.category }}",
            "Вітаємо, {{ recipient_name }}!\n\n"
            "Цей запит більше не потрібен і скасований:\n\n" + _NEED_LINES["uk"] + "\n"
            "Вам нічого не потрібно робити. Дякуємо за готовність допомогти — ми напишемо, "
            "коли з'явиться щось відповідне.\n\n" + _CONTACT_LINE["uk"] + "\n",
        ),
        NEED_UNSTAFFED: (
            "Запит без достатньої кількості волонтерів: {{ need.category }}",
            "Вітаємо, {{ recipient_name }}!\n\n"
            "Для цього запиту ще бракує волонтерів:\n\n" + _NEED_LINES["uk"] + "Погодилися: {{ committed }} з "
            "{{ needed }}\nПричина: {{ reason }}\n\n"
            "Будь ласка, перевірте, чи можна змінити запит, звернутися до волонтерів напряму або "
            "попросити допомоги в ініціативи.\n\nLotse, {{ tenant_name }}\n",
        ),
        NEED_STAFFED: (
            "Запит забезпечено: {{ need.category }}",
            "Вітаємо, {{ recipient_name }}!\n\n"
            "Добра новина: для цього запиту вже достатньо волонтерів.\n\n" + _NEED_LINES["uk"] + "Погодилися: "
            "{{ committed }} з {{ needed }}\n\n"
            "Хто погодився, видно в Lotse. Дякуємо, що робите цю допомогу можливою!\n\n"
            "Lotse, {{ tenant_name }}\n",
        ),
        WEEKLY_DIGEST: (
            "Тижневий огляд {{ week }}: відкритих {{ digest.open }}, без волонтерів {{ digest.unstaffed }}",
            "Вітаємо, {{ recipient_name }}!\n\n"
            "Ось як справи в {{ tenant_name }} цього тижня:\n"
            "- відкриті запити: {{ digest.open }}\n"
            "- з них без достатньої кількості волонтерів: {{ digest.unstaffed }}\n"
            "- забезпечені запити: {{ digest.staffed }}\n"
            "- рівень забезпечення: {{ digest.staffing_rate }} %\n"
            "{% if digest.unstaffed_needs %}\nЗапити, що потребують уваги:\n"
            "{% for item in digest.unstaffed_needs %}- {{ item.category }}"
            "{% if item.district %} ({{ item.district }}){% endif %}: {{ item.description }}\n{% endfor %}"
            "{% endif %}\nLotse, {{ tenant_name }}\n",
        ),
    },
    "fa": {
        WELCOME: (
            "{{ recipient_name }}، خوش آمدید!",
            "سلام {{ recipient_name }}،\n\n"
            "از اینکه می‌خواهید در {{ tenant_name }} از پناهجویان حمایت کنید سپاسگزاریم. اینکه به چه کسی "
            "کمک کنید، تصمیم خود شماست: ما درخواست‌های مناسب را پیشنهاد می‌کنیم و شما می‌پذیرید یا نه.\n\n"
            "خوب است بدانید:\n"
            "- بیمه: {{ guidance.insurance }}\n"
            "- مدارک: {{ guidance.certificates }}\n"
            "- از چه کسی بپرسید: {{ guidance.contact }}\n\n"
            "با احترام\n{{ office.name }}\n\n" + _CONTACT_LINE["fa"] + "\n",
        ),
        MATCH_PROPOSED: (
            "درخواستی که با شما جور است: {{ need.category }}",
            "سلام {{ recipient_name }}،\n\n"
            "می‌خواهیم یک درخواست کمک را به شما پیشنهاد کنیم. اینکه کمک کنید یا نه، تصمیم شماست.\n\n"
            + _NEED_LINES["fa"]
            + "\nچرا از شما می‌پرسیم:\n"
            + _REASONS
            + "\n"
            + _ANSWER_LINKS["fa"]
            + "\nلطفاً تا {{ deadline }} پاسخ دهید. نپذیرفتن هم کاملاً اشکالی ندارد.\n\n"
            + _CONTACT_LINE["fa"]
            + "\n",
        ),
        PROPOSAL_REMINDER: (
            "یادآوری: لطفاً تا {{ deadline }} پاسخ دهید",
            "سلام {{ recipient_name }}،\n\n"
            "یک درخواست کمک به شما پیشنهاد کردیم و هنوز پاسخی دریافت نکرده‌ایم.\n\n"
            + _NEED_LINES["fa"]
            + "\n"
            + _ANSWER_LINKS["fa"]
            + "\nاین پیشنهاد در {{ deadline }} منقضی می‌شود. نپذیرفتن هم کاملاً اشکالی ندارد.\n\n"
            + _CONTACT_LINE["fa"]
            + "\n",
        ),
        PROPOSAL_ACCEPTED: (
            "از پذیرش شما سپاسگزاریم: {{ need.category }}",
            "سلام {{ recipient_name }}،\n\n"
            "چه خوب که کمک می‌کنید! پاسخ مثبت شما به دست ما رسید.\n\n"
            + _NEED_LINES["fa"]
            + "{% if need.certificate %}\nلطفاً این مدرک را فراموش نکنید: {{ need.certificate }}. "
            "{{ guidance.certificates }}\n{% endif %}"
            "\nاگر مشکلی پیش آمد، لطفاً به‌موقع به ما خبر دهید.\n\n" + _CONTACT_LINE["fa"] + "\n",
        ),
        NEED_CANCELLED: (
            "درخواست لغو شد: {{ need.category }}",
            "سلام {{ recipient_name }}،\n\n"
            "این درخواست دیگر لازم نیست و لغو شده است:\n\n" + _NEED_LINES["fa"] + "\n"
            "لازم نیست کاری انجام دهید. از آمادگی شما سپاسگزاریم؛ هر وقت درخواست مناسبی بود، "
            "با شما تماس می‌گیریم.\n\n" + _CONTACT_LINE["fa"] + "\n",
        ),
        NEED_UNSTAFFED: (
            "درخواست بدون داوطلب کافی: {{ need.category }}",
            "سلام {{ recipient_name }}،\n\n"
            "این درخواست هنوز داوطلب کم دارد:\n\n" + _NEED_LINES["fa"] + "پذیرفته‌شده: {{ committed }} از "
            "{{ needed }}\nدلیل: {{ reason }}\n\n"
            "لطفاً بررسی کنید که آیا می‌توانید درخواست را تغییر دهید، مستقیماً با داوطلبان تماس بگیرید "
            "یا از یک گروه داوطلبانه کمک بخواهید.\n\nLotse، {{ tenant_name }}\n",
        ),
        NEED_STAFFED: (
            "درخواست تأمین شد: {{ need.category }}",
            "سلام {{ recipient_name }}،\n\n"
            "خبر خوب: برای این درخواست داوطلب کافی پیدا شد.\n\n" + _NEED_LINES["fa"] + "پذیرفته‌شده: "
            "{{ committed }} از {{ needed }}\n\n"
            "کسانی را که پذیرفته‌اند در Lotse می‌بینید. سپاس که این کمک را ممکن می‌کنید!\n\n"
            "Lotse، {{ tenant_name }}\n",
        ),
        WEEKLY_DIGEST: (
            "گزارش هفتگی {{ week }}: {{ digest.open }} باز، {{ digest.unstaffed }} بدون داوطلب کافی",
            "سلام {{ recipient_name }}،\n\n"
            "وضعیت {{ tenant_name }} در این هفته:\n"
            "- درخواست‌های باز: {{ digest.open }}\n"
            "- از این میان بدون داوطلب کافی: {{ digest.unstaffed }}\n"
            "- درخواست‌های تأمین‌شده: {{ digest.staffed }}\n"
            "- نرخ تأمین: {{ digest.staffing_rate }} %\n"
            "{% if digest.unstaffed_needs %}\nدرخواست‌هایی که توجه لازم دارند:\n"
            "{% for item in digest.unstaffed_needs %}- {{ item.category }}"
            "{% if item.district %} ({{ item.district }}){% endif %}: {{ item.description }}\n{% endfor %}"
            "{% endif %}\nLotse، {{ tenant_name }}\n",
        ),
    },
    "tr": {
        WELCOME: (
            "Hoş geldiniz, {{ recipient_name }}!",
            "Merhaba {{ recipient_name }},\n\n"
            "{{ tenant_name }} bölgesinde mültecilere destek olmak istediğiniz için teşekkür ederiz. Kime "
            "yardım edeceğinize siz karar verirsiniz: Size uygun talepler öneririz, siz kabul eder ya da "
            "reddedersiniz.\n\n"
            "Bilmeniz gerekenler:\n"
            "- Sigorta: {{ guidance.insurance }}\n"
            "- Belgeler: {{ guidance.certificates }}\n"
            "- Kime sorabilirsiniz: {{ guidance.contact }}\n\n"
            "Saygılarımızla\n{{ office.name }}\n\n" + _CONTACT_LINE["tr"] + "\n",
        ),
        MATCH_PROPOSED: (
            "Size uygun bir talep: {{ need.category }}",
            "Merhaba {{ recipient_name }},\n\n"
            "Size bir yardım talebi önermek istiyoruz. Yardım edip etmeyeceğinize siz karar verirsiniz.\n\n"
            + _NEED_LINES["tr"]
            + "\nNeden size soruyoruz:\n"
            + _REASONS
            + "\n"
            + _ANSWER_LINKS["tr"]
            + "\nLütfen {{ deadline }} tarihine kadar yanıt verin. Hayır demeniz de tamamen normal.\n\n"
            + _CONTACT_LINE["tr"]
            + "\n",
        ),
        PROPOSAL_REMINDER: (
            "Hatırlatma: Lütfen {{ deadline }} tarihine kadar yanıt verin",
            "Merhaba {{ recipient_name }},\n\n"
            "Size bir talep önerdik ve henüz yanıtınızı almadık.\n\n"
            + _NEED_LINES["tr"]
            + "\n"
            + _ANSWER_LINKS["tr"]
            + "\nÖneri {{ deadline }} tarihinde sona eriyor. Hayır demeniz de tamamen normal.\n\n"
            + _CONTACT_LINE["tr"]
            + "\n",
        ),
        PROPOSAL_ACCEPTED: (
            "Kabulünüz için teşekkürler: {{ need.category }}",
            "Merhaba {{ recipient_name }},\n\n"
            "Yardım etmeniz harika! Yanıtınız bize ulaştı.\n\n"
            + _NEED_LINES["tr"]
            + "{% if need.certificate %}\nLütfen şu belgeyi unutmayın: {{ need.certificate }}. "
            "{{ guidance.certificates }}\n{% endif %}"
            "\nBir şey araya girerse lütfen bize zamanında haber verin.\n\n" + _CONTACT_LINE["tr"] + "\n",
        ),
        NEED_CANCELLED: (
            "Talep iptal edildi: {{ need.category }}",
            "Merhaba {{ recipient_name }},\n\n"
            "Bu talebe artık gerek yok ve iptal edildi:\n\n" + _NEED_LINES["tr"] + "\n"
            "Başka bir şey yapmanıza gerek yok. Yardıma hazır olduğunuz için teşekkür ederiz; uygun bir "
            "talep olduğunda size yazacağız.\n\n" + _CONTACT_LINE["tr"] + "\n",
        ),
        NEED_UNSTAFFED: (
            "Yeterli gönüllüsü olmayan talep: {{ need.category }}",
            "Merhaba {{ recipient_name }},\n\n"
            "Bu talep için hâlâ gönüllü eksik:\n\n" + _NEED_LINES["tr"] + "Kabul eden: {{ committed }} / "
            "{{ needed }}\nNeden: {{ reason }}\n\n"
            "Lütfen talebi değiştirip değiştiremeyeceğinizi, gönüllülere doğrudan ulaşıp "
            "ulaşamayacağınızı ya da bir girişimden yardım isteyip isteyemeyeceğinizi kontrol edin.\n\n"
            "Lotse, {{ tenant_name }}\n",
        ),
        NEED_STAFFED: (
            "Talep karşılandı: {{ need.category }}",
            "Merhaba {{ recipient_name }},\n\n"
            "İyi haber: Bu talep için yeterli gönüllü bulundu.\n\n" + _NEED_LINES["tr"] + "Kabul eden: "
            "{{ committed }} / {{ needed }}\n\n"
            "Kimlerin kabul ettiğini Lotse'de görebilirsiniz. Bu yardımı mümkün kıldığınız için teşekkür ederiz!\n\n"
            "Lotse, {{ tenant_name }}\n",
        ),
        WEEKLY_DIGEST: (
            "Haftalık özet {{ week }}: {{ digest.open }} açık, {{ digest.unstaffed }} yeterli gönüllüsüz",
            "Merhaba {{ recipient_name }},\n\n"
            "{{ tenant_name }} bu hafta şöyle:\n"
            "- açık talepler: {{ digest.open }}\n"
            "- bunlardan yeterli gönüllüsü olmayanlar: {{ digest.unstaffed }}\n"
            "- karşılanan talepler: {{ digest.staffed }}\n"
            "- karşılanma oranı: %{{ digest.staffing_rate }}\n"
            "{% if digest.unstaffed_needs %}\nİlgi bekleyen talepler:\n"
            "{% for item in digest.unstaffed_needs %}- {{ item.category }}"
            "{% if item.district %} ({{ item.district }}){% endif %}: {{ item.description }}\n{% endfor %}"
            "{% endif %}\nLotse, {{ tenant_name }}\n",
        ),
    },
}

# One layout for every kind and language; ``text_body`` is the rendered text part.
HTML_LAYOUT = """<!DOCTYPE html>
<html lang="{{ lang }}" dir="{{ dir }}">
<head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body dir="{{ dir }}" style="font-family: sans-serif; line-height: 1.5; max-width: 40em; margin: auto;">
{{ text_body | paragraphs }}
</body>
</html>
"""

# The office's name when the tenant has no organisation of kind coordination office.
OFFICE_FALLBACK_NAME = {
    "de": "Koordinationsstelle Ehrenamt",
    "en": "Volunteer coordination office",
    "ar": "مكتب تنسيق العمل التطوعي",
    "uk": "Координаційний офіс волонтерства",
    "fa": "دفتر هماهنگی داوطلبان",
    "tr": "Gönüllü koordinasyon ofisi",
}
