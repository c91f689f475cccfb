"""The e-mails are formatted under keys.mail.POLICY (header classes made once): byte for byte what
Django's own formatting under ``email.policy.default`` gives, and it is what delivery sends."""

from __future__ import annotations

import email
import email.headerregistry
import email.policy
import re
from types import SimpleNamespace

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from keys import delivery
from keys.mail import POLICY, Email, build_email, wire_bytes

LOCMEM_MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


def comparable(raw: bytes) -> bytes:
    """The bytes without what differs at every formatting: date, generated Message-ID, boundary."""
    raw = re.sub(rb"Date: [^\r\n]*", b"Date: -", raw)
    raw = re.sub(rb"Message-ID: <[0-9.]+@[^\r\n]*", b"Message-ID: -", raw)
    boundaries = set(re.findall(rb'boundary="([^"]+)"', raw))
    for number, boundary in enumerate(sorted(boundaries)):
        raw = raw.replace(boundary, b"BOUNDARY%d" % number)
    return raw


def messages() -> list[Email]:
    key = SimpleNamespace(email="élise.dupont@example.be", kind="email")
    citizen = SimpleNamespace(first_name="Élise", last_name="Dupont-Müller", email=key.email)
    made = []
    for language in ("nl", "fr", "de", "en"):
        made.append(
            build_email(
                "registration_code",
                {"code": "123456", "key": key, "minutes": 10, "signin": True},
                to="Élise Dupont <elise.dupont@example.be>",
                language=language,
            )
        )
        made.append(
            build_email(
                "security_notice",
                {
                    "notice": "new_browser",
                    "citizen": citizen,
                    "when": timezone.now(),
                    "browser": "Mozilla/5.0 (X11; Linux x86_64) Chromium/131",
                    "ip": "2001:db8::1",
                },
                to="elise.dupont@example.be",
                language=language,
            )
        )
    long = Email(
        subject="Ééééé " * 30,
        body="é" * 2000,
        to=["a@example.be", "Bé <b@example.be>"],
        headers={"Message-ID": "<csam.outbox.1.2@example.be>", "Content-Language": "fr"},
    )
    long.attach_alternative("<p>" + "é" * 2000 + "</p>", "text/html")
    return [*made, long]


@pytest.mark.parametrize("policy", ["default", "SMTP"])
@pytest.mark.parametrize("index", range(9))
def test_the_bytes_are_djangos_under_each_policy(settings, index, policy):
    """Under ``email.policy.default`` (Django's own) and ``email.policy.SMTP`` (what its SMTP
    backend asks for)."""
    settings.SITE_URL = "https://mijnsleutels.example.be"
    message = messages()[index]
    asked = getattr(email.policy, policy)
    made = message.message(policy=asked)
    assert made.policy is not asked and made.policy.linesep == asked.linesep
    assert made.policy.header_factory is POLICY.header_factory
    ours = made.as_bytes()
    djangos = EmailMultiAlternatives.message(message, policy=asked).as_bytes()
    assert comparable(ours) == comparable(djangos)
    parsed = email.message_from_bytes(ours, policy=email.policy.default)
    assert parsed["Subject"] == message.subject
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n").rstrip("\n") == (
        message.body.rstrip("\n")
    )


def test_each_header_class_is_made_once():
    assert POLICY.header_factory["Subject"] is POLICY.header_factory["subject"]
    assert POLICY.header_factory["To"] is POLICY.header_factory["to"]
    # What the registry saves: the standard one makes a new class every time.
    assert (
        email.policy.default.header_factory["Subject"]
        is not (email.policy.default.header_factory["Subject"])
    )
    assert Email(subject="x", body="y", to=["a@example.be"]).message().policy is POLICY


def test_delivery_sends_the_made_once_formatting(db, settings):
    settings.MAILERS = LOCMEM_MAILERS
    mail.outbox = []
    message = build_email(
        "registration_code",
        {"code": "123456", "key": SimpleNamespace(email="a@example.be"), "minutes": 10},
        to="a@example.be",
        language="fr",
    )
    outbound = delivery.queue_email(message, purpose="test")
    assert outbound.status == "sent"
    (sent,) = mail.outbox
    assert isinstance(sent, Email)
    assert sent.message().policy is POLICY
    assert sent.extra_headers["Message-ID"].startswith("<csam.outbox.")


# --- the SMTP backend (keys.mail_backends.SMTPBackend) -----------------------------------------

ADDRESSES = [
    "noreply@csam-activation.localhost",
    "CSAM My Digital Keys <noreply@csam-activation.localhost>",
    "Élise Dupont <elise.dupont@example.be>",
    '"Dupont, Élise" <elise@example.be>',
    "jan@exämple.be",
    "webmaster",
]


def smtp_backends(settings) -> tuple:
    """Ours and Django's, made as the project makes its mailers (never connected here)."""
    options = {"host": "127.0.0.1", "port": 25, "timeout": 1}
    settings.MAILERS = {
        "default": {"BACKEND": "keys.mail_backends.SMTPBackend", "OPTIONS": options},
        "django": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": options},
    }
    return mail.mailers["default"], mail.mailers["django"]


def test_envelope_addresses_are_djangos_and_kept(monkeypatch, settings):
    from django.core.mail.backends.smtp import EmailBackend

    from keys import mail_backends

    monkeypatch.setattr(mail_backends, "_PREPARED", mail_backends.OrderedDict())
    ours, djangos = smtp_backends(settings)
    assert type(ours) is mail_backends.SMTPBackend
    calls = []
    original = EmailBackend.prep_address
    monkeypatch.setattr(
        EmailBackend,
        "prep_address",
        lambda self, *a, **k: calls.append(a) or original(self, *a, **k),
    )
    for force_ascii in (True, False):
        for address in ADDRESSES:
            expected = original(djangos, address, force_ascii=force_ascii)
            assert ours.prep_address(address, force_ascii=force_ascii) == expected
            assert ours.prep_address(address, force_ascii=force_ascii) == expected
    assert len(calls) == 2 * len(ADDRESSES)  # each worked out once
    for bad in ("a@b.be\r\nBcc: x@y.be", "a@b.be, c@d.be", "a b c"):
        for _twice in range(2):
            with pytest.raises(ValueError, match="Invalid address"):
                ours.prep_address(bad)


def test_only_the_newest_addresses_are_kept(monkeypatch, settings):
    from keys import mail_backends

    monkeypatch.setattr(mail_backends, "_PREPARED", mail_backends.OrderedDict())
    monkeypatch.setattr(mail_backends, "_PREPARED_MAX", 3)
    backend, _djangos = smtp_backends(settings)
    for number in range(5):
        backend.prep_address(f"p{number}@example.be")
    backend.prep_address("p2@example.be")  # used again: newest
    backend.prep_address("p5@example.be")
    assert [key[0] for key in mail_backends._PREPARED] == [
        "p4@example.be",
        "p2@example.be",
        "p5@example.be",
    ]


def test_the_envelope_over_real_smtp(settings, monkeypatch):
    """aiosmtpd hears the envelope the backend worked out, message after message."""
    import threading

    from aiosmtpd.controller import Controller

    from tests.smtp import free_port, smtp_mailers

    class Envelopes:
        def __init__(self):
            self.seen = []
            self.lock = threading.Lock()

        async def handle_DATA(self, server, session, envelope):
            with self.lock:
                self.seen.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            return "250 OK"

    handler = Envelopes()
    made_anew = []
    standard = email.headerregistry.HeaderRegistry.__getitem__
    warmed = []

    def counting(self, name):
        if warmed:
            made_anew.append(name)
        return standard(self, name)

    monkeypatch.setattr(email.headerregistry.HeaderRegistry, "__getitem__", counting)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        settings.MAILERS = smtp_mailers(controller.port)
        for _twice in range(2):
            message = Email(
                subject="Sleutel geactiveerd",
                body="Uw sleutel is geactiveerd.",
                from_email="CSAM My Digital Keys <noreply@csam-activation.localhost>",
                to=["Élise Dupont <elise.dupont@example.be>", "jan@exämple.be"],
            )
            message.attach_alternative("<p>Uw sleutel is geactiveerd.</p>", "text/html")
            assert message.send() == 1
            warmed.append(True)
    finally:
        controller.stop()
    assert len(handler.seen) == 2
    assert made_anew == []  # after the first message, every header class was made before
    for mail_from, rcpt_tos, content in handler.seen:
        assert mail_from == "noreply@csam-activation.localhost"
        assert rcpt_tos == ["elise.dupont@example.be", "jan@xn--exmple-cua.be"]
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert parsed["Subject"] == "Sleutel geactiveerd"


# --- the kept SMTP connection ------------------------------------------------------------------


class Counting:
    """An aiosmtpd handler that counts greetings (one per connection) and messages, and
    refuses the recipients named in ``refuse``."""

    def __init__(self, refuse=()):
        import threading

        self.greetings = 0
        self.messages = []
        self.refuse = set(refuse)
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.greetings += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture
def kept(monkeypatch):
    """No connection kept from another test; none left behind."""
    from keys import mail_backends

    monkeypatch.setattr(mail_backends, "_KEPT", mail_backends._Kept())
    yield mail_backends
    entry = mail_backends._KEPT.entry
    if entry is not None:
        entry[1].close()


def serve(handler, port=None):
    from aiosmtpd.controller import Controller

    from tests.smtp import free_port

    controller = Controller(handler, hostname="127.0.0.1", port=port or free_port())
    controller.start()
    return controller


def restarted(settings, first, second):
    """One message over a connection to ``first``, which then stops; ``second`` serves on the
    same port, so the kept connection is dead. Returns ``second``'s controller."""
    from tests.smtp import smtp_mailers

    controller = serve(first)
    port = controller.port
    settings.MAILERS = smtp_mailers(port)
    assert send("before@example.be") == 1
    controller.stop()
    return serve(second, port=port)


def send(to="a@example.be"):
    return Email(subject="Test", body="Body", to=[to]).send()


def test_the_connection_is_kept_for_the_next_message(settings, kept):
    from tests.smtp import smtp_mailers

    handler = Counting()
    controller = serve(handler)
    try:
        settings.MAILERS = smtp_mailers(controller.port)
        for number in range(3):
            assert send(f"p{number}@example.be") == 1
    finally:
        controller.stop()
    assert handler.messages == [["p0@example.be"], ["p1@example.be"], ["p2@example.be"]]
    assert handler.greetings == 1


def test_a_kept_connection_the_server_closed_is_replaced(settings, kept):
    """The server went away (restarted, or closed the idle connection): the message still
    goes, once, over a new connection."""
    first, second = Counting(), Counting()
    controller = restarted(settings, first, second)
    try:
        assert send("after@example.be") == 1
    finally:
        controller.stop()
    assert first.messages == [["before@example.be"]]
    assert second.messages == [["after@example.be"]]
    assert second.greetings == 1


def test_an_idle_connection_is_not_used_again(settings, kept, monkeypatch):
    from tests.smtp import smtp_mailers

    monkeypatch.setattr(kept, "KEEP_IDLE_SECONDS", 0.0)
    handler = Counting()
    controller = serve(handler)
    try:
        settings.MAILERS = smtp_mailers(controller.port)
        assert send() == 1
        assert send() == 1
    finally:
        controller.stop()
    assert len(handler.messages) == 2 and handler.greetings == 2


def test_a_connection_that_saw_an_error_is_not_kept(settings, kept):
    import smtplib

    from tests.smtp import smtp_mailers

    handler = Counting(refuse={"nobody@example.be"})
    controller = serve(handler)
    try:
        settings.MAILERS = smtp_mailers(controller.port)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            send("nobody@example.be")
        assert kept._KEPT.entry is None
        assert send("somebody@example.be") == 1
    finally:
        controller.stop()
    assert handler.messages == [["somebody@example.be"]]
    assert handler.greetings == 2


def test_another_server_gets_its_own_connection(settings, kept):
    from tests.smtp import smtp_mailers

    one, two = Counting(), Counting()
    first, second = serve(one), serve(two)
    try:
        for controller in (first, second, first):
            settings.MAILERS = smtp_mailers(controller.port)
            assert send() == 1
    finally:
        first.stop()
        second.stop()
    assert (len(one.messages), len(two.messages)) == (2, 1)
    assert (one.greetings, two.greetings) == (2, 1)


def test_a_kept_connection_answered_421_is_replaced(settings, kept):
    """A relay that takes a few messages per connection says 421 at the next MAIL FROM: the
    message goes over a new connection at once (not to a retry minutes later)."""
    from tests.smtp import smtp_mailers

    class OnePerConnection(Counting):
        async def handle_MAIL(self, server, session, envelope, address, mail_options):
            if getattr(session, "used", False):
                return "421 Too many messages on this connection"
            session.used = True
            envelope.mail_from = address
            return "250 OK"

    handler = OnePerConnection()
    controller = serve(handler)
    try:
        settings.MAILERS = smtp_mailers(controller.port)
        assert send("one@example.be") == 1
        assert send("two@example.be") == 1
    finally:
        controller.stop()
    assert handler.messages == [["one@example.be"], ["two@example.be"]]
    assert handler.greetings == 2


def test_a_replacement_connection_that_fails_is_not_kept(settings, kept):
    """The kept connection is gone and its replacement's server refuses the recipient: the
    error reaches the caller (the outbox retries) and no connection is kept."""
    import smtplib

    first, second = Counting(), Counting(refuse={"nobody@example.be"})
    controller = restarted(settings, first, second)
    try:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            send("nobody@example.be")
        assert kept._KEPT.entry is None
    finally:
        controller.stop()


# --- the bytes the SMTP backend sends (keys.mail.wire_bytes) -----------------------------------


def service_messages() -> list[Email]:
    """Every e-mail the service sends, in every language, to a plain address, and the edge
    cases of their text: long lines, a dot or ``From`` at a line's start, spaces and tabs at a
    line's end, ``=`` signs, CRLF and CR line ends, long and encoded-word-like subjects."""
    key = SimpleNamespace(email="elise.dupont@example.be", kind="email")
    citizen = SimpleNamespace(first_name="Élise", last_name="Dupont-Müller", email=key.email)
    activation = SimpleNamespace(
        expires_at=timezone.now(), pk=1, citizen=citizen, get_state_display=lambda: "x"
    )
    contexts = {
        "registration_code": {"code": "123456", "key": key, "minutes": 10, "signin": True},
        "security_notice": {
            "notice": "new_browser",
            "citizen": citizen,
            "when": timezone.now(),
            "browser": "Mozilla/5.0 (X11; Linux x86_64) Chromium/131",
            "ip": "2001:db8::1",
        },
        "key_activated": {"key": key, "kind": None, "citizen": citizen},
        "activation": {
            "citizen": citizen,
            "activation": activation,
            "activation_link": "https://mijnsleutels.example.be/nl/activeren/abc/",
        },
    }
    made = [
        build_email(template, context, to=key.email, language=language)
        for template, context in contexts.items()
        for language in ("nl", "fr", "de", "en")
    ]
    odd_text = (
        "é" * 2000
        + "\n.starts with a dot\nFrom the start\ntrailing spaces   \ntab\t\n"
        + "a = b, =?utf-8?q?x?=\r\nCRLF\rCR\n\n"
        + "x" * 300
        + "\n"
    )
    subjects = [
        "Ééééé " * 30,
        "A long ASCII subject that goes on " * 6,
        "x" * 300,
        "=?utf-8?q?not_an_encoded_word?=",
        "",
        "€ 🔑 " * 25 + "Schlüssel",  # 3- and 4-byte characters across encoded words
    ]
    for number, subject in enumerate(subjects):
        odd = Email(
            subject=subject,
            body=odd_text,
            from_email="CSAM My Digital Keys <noreply@csam-activation.localhost>",
            to=["a.b+c@example.be", "Jan Peeters <jan.peeters@sub.example.be>"],
            headers={
                "Message-ID": f"<csam.outbox.{number}.2@example.be>",
                "Content-Language": "fr",
            },
        )
        odd.attach_alternative("<p>" + odd_text + "</p>", "text/html")
        made.append(odd)
    made.append(Email(subject="Text only", body="Just text.\n", to=["a@example.be"]))
    html_only = Email(subject="HTML only", body="", to=["a@example.be"])
    html_only.attach_alternative("<p>Only HTML.</p>", "text/html")
    made.append(html_only)
    return made


def read(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def what_a_reader_sees(message: email.message.EmailMessage) -> dict:
    """Headers and the text of each part as a mail reader decodes them."""
    parts = list(message.iter_parts()) if message.is_multipart() else [message]
    return {
        "content_type": message.get_content_type(),
        "headers": {name: str(message[name]) for name in ("From", "To", "Content-Language")},
        "parts": [
            (part.get_content_type(), part.get_content_charset(), part.get_content())
            for part in parts
        ],
    }


def normalised(seen: dict) -> dict:
    seen["parts"] = [
        (kind, charset, text.replace("\r\n", "\n").replace("\r", "\n"))
        for kind, charset, text in seen["parts"]
    ]
    return seen


@pytest.mark.parametrize("index", range(len(service_messages())))
def test_wire_bytes_read_as_djangos_formatting(settings, index):
    """A reader parsing the directly formatted bytes sees what it sees in Django's: every
    header, every part, every character of the text (line ends aside: both are CRLF on the
    wire, a CR alone becomes a line end in both). Two places where Django's reads otherwise
    are right here: a subject that looks like an encoded word reads as written (Django's
    decodes it), and ``MIME-Version`` is on the message, not only on an HTML-only part."""
    settings.SITE_URL = "https://mijnsleutels.example.be"
    message = service_messages()[index]
    raw = wire_bytes(message)
    assert raw is not None
    djangos = EmailMultiAlternatives.message(message, policy=email.policy.SMTP).as_bytes()
    ours = read(raw)
    assert normalised(what_a_reader_sees(ours)) == normalised(what_a_reader_sees(read(djangos)))
    assert ours.defects == [] and all(part.defects == [] for part in ours.walk())
    assert ours["Subject"] == message.subject
    assert ours["MIME-Version"] == "1.0"
    assert ours["Date"].datetime is not None
    assert ours["Message-ID"] == (message.extra_headers.get("Message-ID") or ours["Message-ID"])
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", ours["Message-ID"])
    # 7-bit, CRLF only, every line within RFC 5322's hard limit, the bodies within 76.
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    lines = raw.split(b"\r\n")
    assert max(map(len, lines)) <= 998
    body_lines = raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert max(map(len, body_lines)) <= 76
    if len(message.subject) < 60 or " " in message.subject.strip():
        header_lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        assert max(map(len, header_lines)) <= 78


def test_wire_bytes_of_a_service_email_differ_only_where_formatting_may():
    message = service_messages()[0]
    first, second = wire_bytes(message), wire_bytes(message)
    assert comparable(first) == comparable(second)  # only date, boundary (and generated id)
    assert first != second  # a fresh boundary each time


@pytest.mark.parametrize(
    "change",
    [
        {"to": ["Élise Dupont <elise.dupont@example.be>"]},
        {"to": ["jan@exämple.be"]},
        {"to": ['"Dupont, Elise" <elise@example.be>']},
        {"to": ["Dr. Jan <jan@example.be>"]},
        {"to": ["webmaster"]},
        {"to": []},
        {"from_email": "Élise <noreply@example.be>"},
        {"cc": ["c@example.be"]},
        {"reply_to": ["r@example.be"]},
        {"headers": {"Content-Language": "fr", "X-Note": "été"}},
        {"headers": {"To": "Someone <a@example.be>"}},
        {"headers": {"Subject": "Twice"}},
        {"headers": {"Content-Type": "text/plain"}},
        {"headers": {"X-Split": "a\r\nBcc: x@example.be"}},
        {"subject": "Line\nbreak"},
    ],
)
def test_any_other_shape_goes_to_djangos_formatting(change):
    fields = {"subject": "Test", "body": "Body", "to": ["a@example.be"], **change}
    message = Email(**fields)
    message.attach_alternative("<p>Body</p>", "text/html")
    assert wire_bytes(message) is None


def test_attachments_other_alternatives_and_charsets_go_to_djangos_formatting():
    with_file = Email(subject="Test", body="Body", to=["a@example.be"])
    with_file.attach("a.txt", "text", "text/plain")
    calendar = Email(subject="Test", body="Body", to=["a@example.be"])
    calendar.attach_alternative("BEGIN:VCALENDAR", "text/calendar")
    latin = Email(subject="Test", body="Body", to=["a@example.be"])
    latin.encoding = "iso-8859-1"
    html_body = Email(subject="Test", body="<p>Body</p>", to=["a@example.be"])
    html_body.content_subtype = "html"
    for message in (with_file, calendar, latin, html_body):
        assert wire_bytes(message) is None


def test_the_backend_sends_wire_bytes_over_real_smtp(settings, monkeypatch, kept):
    """A service e-mail goes out as ``wire_bytes`` formats it, without the e-mail package's
    formatting; another shape still goes through Django's, and both arrive whole."""
    from tests.smtp import smtp_mailers

    class Raw:
        def __init__(self):
            self.seen = []

        async def handle_DATA(self, server, session, envelope):
            self.seen.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            return "250 OK"

    formatted_by_django = []
    standard = EmailMultiAlternatives.message

    def spy(self, *args, **kwargs):
        formatted_by_django.append(self.subject)
        return standard(self, *args, **kwargs)

    monkeypatch.setattr(EmailMultiAlternatives, "message", spy)
    handler = Raw()
    controller = serve(handler)
    try:
        settings.MAILERS = smtp_mailers(controller.port)
        service = build_email(
            "registration_code",
            {"code": "654321", "key": SimpleNamespace(email="a@example.be"), "minutes": 10},
            to="a@example.be",
            language="fr",
        )
        assert service.send() == 1
        other = Email(subject="Other", body="Body", to=["Élise <elise@example.be>"])
        assert other.send() == 1
    finally:
        controller.stop()
    assert formatted_by_django == ["Other"]
    (_, rcpt, content), (_, other_rcpt, other_content) = handler.seen
    assert rcpt == ["a@example.be"] and other_rcpt == ["elise@example.be"]
    assert b"Content-Transfer-Encoding: quoted-printable" in content and content.isascii()
    parsed = read(content)
    assert parsed["Subject"] == service.subject
    assert "654321" in parsed.get_body(("plain",)).get_content()
    assert "654321" in parsed.get_body(("html",)).get_content()
    assert read(other_content)["To"] == "Élise <elise@example.be>"
