"""The seed's wording, exactly (issue 9 §2).

The Dutch of the wizard is the seed's, word for word (SPEC §2: only typos such as "Actieveer"
are fixed, and quotation marks are the project's typographic ones). The code that the e-mail and
SMS keys send is a *registration code* in every language; the *activation code* is the paper code
of the registration office. The footer carries the seed's links. German says
"Registrierungsstelle", as the real service does.
"""

import ast
import html
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import translation

from keys.services import issuance
from tests.wizard_helpers import open_link, post_step, step_url

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Correct-Horse-9x"

# The seed, "Een digitale sleutel activeren". Its list writes "Beveiligingscode via email"; the key
# is called "Beveiligingscode via e-mail" everywhere else in the seed and on the radio buttons
# below the list, so the list shows that label (Dutch spelling, SPEC §2 "typos fixed").
SEED_KEY_INTRO = [
    "Nadat u als aanvrager de activatiecode correct hebt ingevuld kunt u een digitale sleutel "
    "activeren. U hebt de keuze tussen 3 soorten digitale sleutels:",
    "Mobiele app",
    "SMS",
    "Beveiligingscode via e-mail",
    "Selecteer de digitale sleutel naar keuze, aanvaard de gebruikersvoorwaarden en klik op "
    "Digitale sleutel activeren.",
]
# The seed, "Ga naar uw persoonlijke e-mail inbox": it calls the e-mailed code "activeringscode".
SEED_EMAIL_RECEIVED = (
    'U heeft een e-mail ontvangen van "CSAM My Digital Keys" met daarin een activeringscode.'
)
SEED_EMAIL_FILL_IN = (
    "Vul de registratiecode in die u via e-mail ontvangen heeft. Klik hierna op 'Volgende'. "
    "Het kan enkele minuten duren vooraleer u de registratiecode ontvangt en kijk ook zeker uw "
    "spam folder na. Indien u geen e-mail ontvangt, druk op 'Annuleren' en vraag een nieuwe "
    "code aan."
)
SEED_MANAGE_LINK = "Beheer zelf uw digitale sleutels"

# What the e-mailed or texted code is called, and what it must never be called, per language.
REGISTRATION_CODE = {
    "nl": "registratiecode",
    "fr": "code d'enregistrement",
    "de": "Registrierungscode",
    "en": "registration code",
}
SAYS_REGISTRATION_CODE = {
    "fr": re.compile(r"codes? d'enregistrement", re.IGNORECASE),
    "de": re.compile(r"Registrierungscodes?", re.IGNORECASE),
}
ACTIVATION_CODE = {
    "fr": re.compile(r"codes? d['’]activation", re.IGNORECASE),
    "de": re.compile(r"Aktivierungscode", re.IGNORECASE),
    "en": re.compile(r"activation codes?", re.IGNORECASE),
}

QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'", "’": "'"})


def normalize(text: str) -> str:
    """Text as read: entities decoded, straight quotation marks and apostrophes, single spaces."""
    text = html.unescape(text).translate(QUOTES).replace("\u00a0", " ")
    return re.sub(r"\s+", " ", text).strip()


def words(text: str) -> str:
    """The wording without its quotation marks: the seed quotes 'Volgende' where the project
    typesets “Volgende” (Dutch text only; it has no apostrophes)."""
    return re.sub(r"\s+", " ", re.sub(r"[\"']", "", normalize(text))).strip()


class Blocks(HTMLParser):
    """The text of each paragraph, list item and heading, with the tags inside each one."""

    BLOCKS = {"p", "li", "h1", "h2", "legend", "label", "button", "a"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str, list[str]]] = []
        self._stack: list[tuple[str, list[str], list[str]]] = []

    def handle_starttag(self, tag, attrs):
        for _name, _text, inner in self._stack:
            inner.append(tag)
        if tag in self.BLOCKS:
            self._stack.append((tag, [], []))

    def handle_endtag(self, tag):
        if self._stack and self._stack[-1][0] == tag:
            name, text, inner = self._stack.pop()
            self.blocks.append((name, normalize("".join(text)), inner))
            if self._stack:
                self._stack[-1][1].append("".join(text))

    def handle_data(self, data):
        if self._stack:
            self._stack[-1][1].append(data)


def blocks(fragment: str) -> list[tuple[str, str, list[str]]]:
    parser = Blocks()
    parser.feed(fragment)
    return parser.blocks


def intro_of(page: str) -> str:
    """A wizard page's own text: from its heading to the end of its form (no step indicator,
    no footer)."""
    return page.split("</h1>", 1)[1].split("</form>", 1)[0]


def footer_of(page: str) -> str:
    return page.split('<footer class="site-footer">', 1)[1].split("</footer>", 1)[0]


@pytest.fixture
def at_key(client, citizen, clerk, request):
    """The key step in the language the test asks for (``language`` parameter, default nl)."""
    language = getattr(request, "param", "nl")
    citizen.language = language
    citizen.save()
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    open_link(client, issued.activation_link)
    response = post_step(
        client, "code", {"activation_code": issued.formatted_code}, language=language
    )
    assert response["Location"] == step_url("key", language)
    return language


@pytest.fixture
def at_verify_email(client, at_key):
    language = at_key
    mail.outbox.clear()
    post_step(client, "key", {"kind": "email", "accept_terms": "on"}, language=language)
    response = post_step(
        client,
        "account",
        {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
        language=language,
    )
    assert response["Location"] == step_url("verify", language)
    return language


def test_dutch_key_choice_intro_is_the_seeds_text_word_for_word(client, at_key):
    page = client.get(step_url("key")).content.decode()
    intro = [(name, text, inner) for name, text, inner in blocks(intro_of(page).split("<form")[0])]
    assert [text for _, text, _ in intro] == SEED_KEY_INTRO
    assert [name for name, _, _ in intro] == ["p", "li", "li", "li", "p"]
    # The seed shows the button's name in bold.
    assert "<strong>Digitale sleutel activeren</strong>" in page


@pytest.mark.parametrize(
    ("at_key", "first", "last"),
    [
        (
            "en",
            "After you as the applicant have entered the activation code correctly, you can "
            "activate a digital key. You can choose between 3 kinds of digital keys:",
            "Select the digital key of your choice, accept the terms of use and click "
            "Activate digital key.",
        ),
        (
            "fr",
            "Après avoir correctement saisi le code d'activation, vous pouvez, en tant que "
            "demandeur, activer une clé numérique. Vous avez le choix entre 3 types de clés "
            "numériques :",
            "Sélectionnez la clé numérique de votre choix, acceptez les conditions "
            "d'utilisation et cliquez sur Activer la clé numérique.",
        ),
        (
            "de",
            "Nachdem Sie als Antragsteller den Aktivierungscode korrekt eingegeben haben, können "
            "Sie einen digitalen Schlüssel aktivieren. Sie haben die Wahl zwischen 3 Arten "
            "digitaler Schlüssel:",
            "Wählen Sie den digitalen Schlüssel Ihrer Wahl, akzeptieren Sie die "
            "Nutzungsbedingungen und klicken Sie auf Digitalen Schlüssel aktivieren.",
        ),
    ],
    indirect=["at_key"],
)
def test_key_choice_intro_translates_the_seed(client, at_key, first, last):
    page = client.get(step_url("key", at_key)).content.decode()
    texts = [text for _, text, _ in blocks(intro_of(page).split("<form")[0])]
    assert texts[0] == first
    assert texts[-1] == last
    assert len(texts) == 5, "the three kinds of digital keys are listed between"


def test_dutch_email_step_keeps_the_seeds_sentences(client, at_verify_email):
    page = client.get(step_url("verify")).content.decode()
    texts = [text for _, text, _ in blocks(intro_of(page))]
    assert "Ga naar uw persoonlijke e-mail inbox" in texts
    # The seed's sentence, exactly, as a sentence of its own (where the mail went comes after).
    received = next(text for text in texts if "CSAM My Digital Keys" in text)
    assert words(received).startswith(words(SEED_EMAIL_RECEIVED)), received
    assert words(SEED_EMAIL_FILL_IN) in [words(text) for text in texts]
    assert "Registratiecode *" in texts  # the field's label


@pytest.mark.parametrize("at_key", ["fr", "de", "en"], indirect=True)
def test_email_step_calls_the_mailed_code_a_registration_code(client, at_verify_email):
    language = at_verify_email
    page = normalize(intro_of(client.get(step_url("verify", language)).content.decode()))
    assert not ACTIVATION_CODE[language].search(page), page
    assert page.lower().count(REGISTRATION_CODE[language].lower()) >= 3, page
    # The e-mail itself says the same.
    message = mail.outbox[-1]
    for text in (message.subject, message.body, message.alternatives[0][0]):
        assert not ACTIVATION_CODE[language].search(normalize(text)), text
    assert REGISTRATION_CODE[language].lower() in normalize(message.subject).lower()


@pytest.mark.parametrize("language", ["nl", "fr", "de", "en"])
def test_footer_links_to_my_digital_keys(client, db, language):
    page = client.get(f"/{language}/").content.decode()
    footer = blocks(footer_of(page))
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', footer_of(page))
    with translation.override(language):
        my_keys = reverse("keys:my-keys")
        signin = reverse("keys:signin")
    assert my_keys.startswith(f"/{language}/")
    # The seed's first link; its address is our own "Mijn digitale sleutels" page.
    assert links[0][0] == my_keys
    if language == "nl":
        assert links[0][1] == SEED_MANAGE_LINK
        assert footer[0][:2] == ("h2", "Links")
    # Signed out, the page asks to sign in first.
    response = client.get(my_keys)
    assert response.status_code == 302
    assert response["Location"].startswith(signin)


@pytest.mark.parametrize("path", ["/de/", "/de/wachtwoord-vergeten/", "/de/activeren/unknown/"])
def test_german_pages_say_registrierungsstelle(client, db, path):
    response = client.get(path, follow=True)
    page = normalize(response.content.decode())
    assert "büro" not in page.lower(), path
    assert "Registrierungsstelle" in page, path


# The catalogs ------------------------------------------------------------------------------


def read_catalog(language: str) -> list[dict[str, str]]:
    """The entries of a committed .po file: msgid, msgid_plural and every msgstr form."""
    entries, entry, field = [], {}, None
    path = ROOT / "locale" / language / "LC_MESSAGES" / "django.po"
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            if entry.get("msgid"):
                entries.append(entry)
            entry, field = {}, None
            continue
        if line.startswith("#"):
            continue
        match = re.match(r"(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) (\".*\")$", line)
        if match:
            field = match.group(1)
            entry[field] = ""
            line = match.group(2)
        entry[field] += ast.literal_eval(line)
    return entries


def msgstrs(entry: dict[str, str]) -> list[str]:
    return [value for key, value in entry.items() if key.startswith("msgstr")]


def about_a_sent_code(msgid: str) -> bool:
    """Whether a message is about the code the e-mail or SMS key sends (not the paper code)."""
    return bool(
        re.search(r"registration code", msgid, re.IGNORECASE)
        or re.search(r"(e-mail|text message) from .CSAM", msgid)
        or re.search(r"code (by|via) (e-mail|SMS|text message)", msgid)
    )


@pytest.mark.parametrize("language", ["fr", "de"])
def test_catalog_never_calls_a_sent_code_an_activation_code(language):
    entries = read_catalog(language)
    paper = {"fr": "Code d'activation", "de": "Aktivierungscode"}[language]
    assert [msgstrs(entry) for entry in entries if entry["msgid"] == "Activation code"] == [[paper]]
    sent = [entry for entry in entries if about_a_sent_code(entry["msgid"])]
    assert len(sent) >= 10
    for entry in sent:
        for text in msgstrs(entry):
            assert not ACTIVATION_CODE[language].search(text), (entry["msgid"], text)
            if "registration code" in entry["msgid"].lower():
                assert SAYS_REGISTRATION_CODE[language].search(text), (entry["msgid"], text)
    # And "activation code" is said only where the English says it: the paper code.
    for entry in entries:
        if any(ACTIVATION_CODE[language].search(text) for text in msgstrs(entry)):
            assert re.search(r"activation (link (and|or) )?codes?", entry["msgid"], re.I), entry


def test_german_catalog_says_registrierungsstelle():
    entries = read_catalog("de")
    offending = [
        (entry["msgid"], text)
        for entry in entries
        for text in msgstrs(entry)
        if re.search(r"b(ü|ue)ro", text, re.IGNORECASE)
    ]
    assert offending == []
    office = {entry["msgid"]: msgstrs(entry) for entry in entries}
    assert office["registration office"] == ["Registrierungsstelle"]
    assert office["registration offices"] == ["Registrierungsstellen"]
