"""Secret redaction: the rules, and how they run cheaply on every string we export.

The rule set follows what maintained secret scanners detect (gitleaks' rule catalogue and
detect-secrets' plugins: provider token formats, private key blocks, credentials in URLs,
authorization headers, keyword assignments such as ``DB_PASS=...``). Facts carry over (token
prefixes, lengths, alphabets); the code is ours. Like gitleaks, every rule has keywords: a rule
runs only when one of its keywords is in the case-folded text, and most rules are tried only at
the places a keyword starts. The keywords of all rules are found in one pass by an Aho-Corasick
automaton (ahocorasick-rs), so adding rules costs almost nothing on text that holds no secret,
which is nearly all text. Without that package (an unusual platform) the same keywords are found
with ``str.find``, slower but identical in result.

A match (or its named ``secret*`` groups) becomes ``[REDACTED:<kind>]``; no part of a secret
is echoed. Values that are obviously not secrets (``${DB_PASS}``, ``<password>``, ``None``,
an already redacted marker) are left alone; a token-like value must look like one (not a plain
word, not a bare number), which keeps ``max_tokens: 1000`` and ``sort_key=name`` readable.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
from collections.abc import Callable
from typing import Any, Final

__all__ = ["RULES", "Rule", "holds_keyword", "redact_secrets", "secret_key"]


def _plain_value(value: str) -> bool:
    """A value that is a reference or placeholder, not a secret."""
    if not value:
        return True
    first = value[0]
    if first in "$%{<[*" or value.startswith(("REDACTED", "os.environ", "process.env")):
        return True
    lowered = value.lower()
    return lowered in _NOT_SECRETS or set(value) <= {"*", "x", "X", ".", "-", "•"}


_NOT_SECRETS: Final = frozenset(
    {"none", "null", "nil", "true", "false", "undefined", "required", "optional", "string",
     "str", "bytes", "env", "secret", "password", "token", "redacted", "hidden", "masked"}
)  # fmt: skip

_WORDS: Final = re.compile(r"[a-z]+(?:[_\-.][a-z]+)*")


def _password_value(value: str) -> bool:
    return not _plain_value(value)


def _token_value(value: str) -> bool:
    """A value that looks like a token: not a placeholder, a number or a plain lowercase word."""
    if _plain_value(value) or len(value) < 8 or value.isdigit():
        return False
    return not (len(value) < 24 and _WORDS.fullmatch(value))


def _pwd_value(value: str) -> bool:
    # PWD=/home/me is the working directory, not a password.
    return _password_value(value) and value[0] not in "/~."


def _basic_value(value: str) -> bool:
    """`Basic <base64>` is a credential when it decodes to `user:password`."""
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


class Rule:
    """One kind of secret. `anchored`: every match starts where a keyword starts, so the
    pattern is tried only there; otherwise it is searched in the whole text when a keyword is
    present. `valid` checks each captured secret value (False keeps the text as it is).

    The pattern is compiled on first use: compiling all rules took ~10 ms of every
    `import agentsignals`, and most processes never see a keyword."""

    __slots__ = ("_pattern", "anchored", "back", "keywords", "kind", "requires", "source", "valid")

    def __init__(
        self,
        kind: str,
        source: str,
        keywords: tuple[str, ...],
        anchored: bool = True,
        valid: Callable[[str], bool] | None = None,
        back: int = 0,  # matches start this many characters before the keyword
        requires: str = "",  # also needed in the case-folded text for the rule to run
    ) -> None:
        self.kind = kind
        self.source = source
        self.keywords = keywords
        self.anchored = anchored
        self.valid = valid
        self.back = back
        self.requires = requires
        self._pattern: re.Pattern[str] | None = None

    @property
    def pattern(self) -> re.Pattern[str]:
        pattern = self._pattern
        if pattern is None:
            pattern = self._pattern = re.compile(self.source)
        return pattern


def _rule(
    kind: str,
    pattern: str,
    keywords: tuple[str, ...],
    *,
    anchored: bool = True,
    valid: Callable[[str], bool] | None = None,
    back: int = 0,
    requires: str = "",
) -> Rule:
    return Rule(
        kind,
        pattern,
        tuple(k.casefold() for k in keywords),
        anchored,
        valid,
        back,
        requires,
    )


def _ended(*keywords: str) -> tuple[str, ...]:
    """Each keyword followed by each character that can end it as a word (`pass=`, `token_`):
    the rule needs the word to end there, and `passed`, `tokens` or `keyboard` are common in
    text, so these keywords keep the rule from being tried at every such word."""
    return tuple(k + c for k in keywords for c in _WORD_ENDS)


_WORD_ENDS: Final = "_-.=:\"'` \t\\0123456789"

# Word boundaries written as lookarounds, so an anchored match may start at the keyword.
_B: Final = r"(?<![A-Za-z0-9_\-])"
_E: Final = r"(?![A-Za-z0-9_\-])"
# An assignment: optional closing quote (JSON-escaped too), `=`, `:`, `:=` or `=>`, opening quote.
_ASSIGN: Final = r"""\\?["'`]?[ \t]*(?::=|=>|==|[:=])[ \t]*"""
# A value: quoted (spaces allowed) or bare; JSON-escaped quotes count as quotes.
_VALUE: Final = (
    r"""(?:\\?"(?P<secret>[^"\\\r\n]{3,256})\\?"|\\?'(?P<secret2>[^'\\\r\n]{3,256})\\?'"""
    r"""|(?P<secret3>[^\s"'`\\,;)\]}]{3,256}))"""
)

RULES: Final[tuple[Rule, ...]] = (
    # -- key material ------------------------------------------------------------------
    _rule(
        "private_key",
        r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
        r"(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|\Z)",
        ("-----BEGIN",),
    ),
    _rule(
        "age_secret_key", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", ("AGE-SECRET",)
    ),
    # -- cloud providers -------------------------------------------------------------------
    _rule(
        "aws_access_key_id",
        _B + r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}" + _E,
        ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
    ),
    _rule(
        # `aws configure set aws_secret_access_key V`: whitespace is the separator.
        "aws_secret_access_key",
        r"(?i)aws_?(?:secret_?access_?key|session_?token)\\?[\"']?[ \t]*[:=]?[ \t]*\\?[\"']?"
        r"(?P<secret>[A-Za-z0-9/+=]{16,})",
        ("aws_secret", "aws_session", "awssecret", "awssession"),
    ),
    _rule("google_api_key", _B + r"AIza[0-9A-Za-z_\-]{35}", ("AIza",)),
    _rule("google_oauth_token", _B + r"ya29\.[0-9A-Za-z_\-]{20,}", ("ya29.",)),
    _rule("google_client_secret", _B + r"GOCSPX-[0-9A-Za-z_\-]{20,}", ("GOCSPX-",)),
    _rule(
        "azure_client_secret",
        r"(?<![A-Za-z0-9_~.\-])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}(?![A-Za-z0-9_~.\-])",
        ("Q~",),
        back=4,
    ),
    _rule("digitalocean_token", _B + r"do[opr]_v1_[a-f0-9]{64}", ("dop_v1_", "doo_v1_", "dor_v1_")),
    _rule("databricks_token", _B + r"dapi[a-f0-9]{32}(?:-\d)?" + _E, ("dapi",)),
    _rule("hashicorp_vault_token", _B + r"hv[sb]\.[A-Za-z0-9_\-]{24,}", ("hvs.", "hvb.")),
    _rule("pulumi_token", _B + r"pul-[a-f0-9]{40}", ("pul-",)),
    _rule("heroku_token", _B + r"HRKU-[A-Za-z0-9_\-]{60}", ("HRKU-",)),
    # -- code hosting and package registries -------------------------------------------------
    _rule(
        "github_token",
        _B + r"(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    _rule(
        "gitlab_token",
        _B + r"(?:gl(?:pat|ptt|dt|rt|soat|cbt|imt|agent|oas|ffct|ft)-[0-9A-Za-z_\-]{20,}"
        r"|GR1348941[0-9A-Za-z_\-]{20,})",
        (
            "glpat-",
            "glptt-",
            "gldt-",
            "glrt-",
            "glsoat-",
            "glcbt-",
            "glimt-",
            "glagent-",
            "gloas-",
            "glffct-",
            "glft-",
            "GR1348941",
        ),
    ),
    _rule("npm_token", _B + r"npm_[A-Za-z0-9]{36}" + _E, ("npm_",)),
    _rule("pypi_token", _B + r"pypi-AgE[A-Za-z0-9_\-]{50,}", ("pypi-AgE",)),
    _rule("docker_token", _B + r"dckr_pat_[A-Za-z0-9_\-]{20,}", ("dckr_pat_",)),
    # -- model providers and AI tooling ------------------------------------------------------
    _rule("api_key", _B + r"sk-[A-Za-z0-9_\-]{20,}", ("sk-",)),
    _rule(
        "huggingface_token",
        _B + r"(?:hf_[A-Za-z0-9]{30,}|api_org_[A-Za-z0-9]{30,})",
        ("hf_", "api_org_"),
    ),
    _rule(
        "api_key",
        _B + r"(?:gsk_[A-Za-z0-9]{40,}|r8_[A-Za-z0-9]{30,}|pplx-[A-Za-z0-9]{40,}"
        r"|xai-[A-Za-z0-9]{40,}|lsv2_(?:pt|sk)_[A-Za-z0-9_]{30,}|pylf_v\d_[a-z]{2,}_[A-Za-z0-9]{30,}"
        r"|tvly-(?:dev-|prod-)?[A-Za-z0-9]{30,}|fw_[A-Za-z0-9]{20,}|nvapi-[A-Za-z0-9_\-]{40,})",
        ("gsk_", "r8_", "pplx-", "xai-", "lsv2_", "pylf_v", "tvly-", "fw_", "nvapi-"),
    ),
    # -- SaaS ------------------------------------------------------------------------------
    _rule(
        "stripe_key",
        _B + r"(?:[sr]k_(?:live|test|prod)_[0-9A-Za-z]{10,}|whsec_[A-Za-z0-9+/=]{24,})",
        ("sk_live_", "sk_test_", "sk_prod_", "rk_live_", "rk_test_", "rk_prod_", "whsec_"),
    ),
    _rule(
        "slack_token",
        _B + r"(?:xox(?:[abposr]|e(?:\.xox[bp])?)-[A-Za-z0-9\-]{10,}|xapp-\d-[A-Za-z0-9\-]{10,})",
        ("xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "xoxe", "xapp-"),
    ),
    _rule(
        "webhook_url",
        r"(?:hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_\-]{20,}"
        r"|discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_\-]{20,})",
        ("hooks.slack.com/", "discord.com/api/webhooks/", "discordapp.com/api/webhooks/"),
    ),
    _rule("sendgrid_key", _B + r"SG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{30,50}", ("SG.",)),
    _rule(
        "twilio_key", _B + r"SK[0-9a-fA-F]{32}" + _E, tuple("SK" + c for c in "0123456789abcdef")
    ),
    _rule("mailgun_key", _B + r"key-[0-9a-zA-Z]{32}" + _E, ("key-",)),
    _rule(
        "shopify_token",
        _B + r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}",
        ("shpat_", "shpss_", "shpca_", "shppa_"),
    ),
    _rule("atlassian_token", _B + r"ATATT3[A-Za-z0-9_\-=]{150,}", ("ATATT3",)),
    _rule(
        "observability_token",
        _B + r"(?:glc_[A-Za-z0-9+/]{32,}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}"
        r"|sntry[su]_[A-Za-z0-9+/=_\-]{40,}|NRAK-[A-Z0-9]{27}|PMAK-[a-f0-9]{24}-[a-f0-9]{34})",
        ("glc_", "glsa_", "sntrys_", "sntryu_", "NRAK-", "PMAK-"),
    ),
    _rule(
        "productivity_token",
        _B + r"(?:lin_api_[A-Za-z0-9]{40}|ntn_[A-Za-z0-9]{40,}|secret_[A-Za-z0-9]{43}" + _E + ")",
        ("lin_api_", "ntn_", "secret_"),
    ),
    _rule("square_token", _B + r"sq0(?:atp|csp)-[0-9A-Za-z_\-]{22,}", ("sq0atp-", "sq0csp-")),
    _rule(
        "jwt",
        _B + r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
        ("eyJ",),
    ),
    # -- credentials in context ---------------------------------------------------------------
    _rule(
        # scheme://user:password@host (postgres, mysql, mongodb+srv, redis://:pw@, amqp, https).
        "url_credentials",
        r"://[^\s:/@\"'<>\\]{0,256}:(?P<secret>[^\s/\"'<>\\]{1,256})@",
        ("://",),
        valid=lambda v: not _plain_value(v),
    ),
    _rule(
        "authorization_header",
        r"(?i)(?:proxy-)?authorization\\?[\"']?[ \t]*[:=][ \t]*\\?[\"']?"
        r"(?:(?:basic|bearer|token|digest|negotiate|apikey|key|sso-key|otp|hmac)[ \t]+)?"
        r"(?P<secret>[^\s\"'\\,;]{6,})",
        ("authorization",),
        valid=_password_value,
    ),
    _rule(
        "bearer_token",
        r"(?i)(?<![A-Za-z0-9])bearer[ \t]+(?P<secret>[A-Za-z0-9._~+/=\-]{8,})",
        ("bearer",),
        valid=_token_value,
    ),
    _rule(
        "basic_auth",
        r"(?i)(?<![A-Za-z0-9])basic[ \t]+(?P<secret>[A-Za-z0-9+/]{8,}={0,2})(?![A-Za-z0-9+/=])",
        ("basic",),
        valid=_basic_value,
    ),
    _rule(
        "basic_auth",
        # curl -u user:password, --user user:password
        r"(?<![A-Za-z0-9])(?:-u|--user)[ \t=]+[\"']?[^\s:\"']{1,128}:(?P<secret>[^\s\"']{1,256})",
        ("-u ", "-u\t", "--user"),
        valid=_password_value,
    ),
    _rule(
        "credential",
        # ~/.netrc: machine host login user password secret
        r"(?i)(?<![A-Za-z0-9])password[ \t]+(?P<secret>\S{1,256})",
        ("password ", "password\t"),
        valid=_password_value,
        requires="machine",
    ),
    _rule(
        "credential",
        r"(?i)(?<![a-z])(?:set-)?cookie\\?[\"']?[ \t]*:[ \t]*\\?[\"']?(?P<secret>[^\r\n\"'\\]{4,})",
        ("cookie",),
        valid=_password_value,
    ),
    _rule(
        # Passwords and secrets: any value that is not a placeholder.
        "credential",
        r"(?i)(?:passw(?:or)?d|passphrase|(?<![a-z])pass|secret|credentials?|private[_\-]?key"
        r"|client[_\-]?secret)(?![a-z])[\w.\-]{0,24}" + _ASSIGN + _VALUE,
        (
            "password",
            "passwd",
            "passphrase",
            *_ended("pass", "secret", "credential", "credentials"),
            "private_key",
            "private-key",
            "privatekey",
            "client_secret",
            "clientsecret",
            "client-secret",
        ),
        valid=_password_value,
    ),
    _rule(
        "credential",
        r"(?i)(?<![a-z])pwd(?![a-z])[\w.\-]{0,24}" + _ASSIGN + _VALUE,
        _ended("pwd"),
        valid=_pwd_value,
    ),
    _rule(
        # Tokens and keys: a value that looks like a token.
        "credential",
        r"(?i)(?:token|(?<![a-z])auth|api[_\-]?key|access[_\-]?key|account[_\-]?key"
        r"|(?<=[_\-.])key)(?![a-z])[\w.\-]{0,24}" + _ASSIGN + _VALUE,
        (
            *_ended("token", "auth", "key"),
            "api_key",
            "api-key",
            "apikey",
            "access_key",
            "access-key",
            "accesskey",
            "accountkey",
            "account_key",
            "account-key",
        ),
        valid=_token_value,
    ),
    _rule(
        # Command-line flags: --password hunter2, --api-key=..., --db-password x
        "credential",
        r"(?i)(?<=-)(?:passw(?:or)?d|pass|token|api-?key|secret|auth-token|access-key"
        r"|private-key|client-secret)[ \t]*(?:=|[ \t])[ \t]*(?P<secret>[^\s\"'`]{3,256})",
        (
            "password",
            "passwd",
            *_ended("pass", "token", "secret"),
            "api-key",
            "apikey",
            "auth-token",
            "access-key",
            "private-key",
            "client-secret",
        ),
        valid=_password_value,
    ),
)

_SECRET_GROUPS: Final = ("secret", "secret2", "secret3")


def _keyword_index() -> tuple[list[str], list[tuple[int, ...]]]:
    keywords: list[str] = []
    owners: list[list[int]] = []
    position: dict[str, int] = {}
    for i, rule in enumerate(RULES):
        for keyword in rule.keywords:
            at = position.get(keyword)
            if at is None:
                at = position[keyword] = len(keywords)
                keywords.append(keyword)
                owners.append([])
            owners[at].append(i)
    return keywords, [tuple(o) for o in owners]


_KEYWORDS, _OWNERS = _keyword_index()
_automaton: Any = None


def _find_keywords(folded: str) -> list[tuple[int, int, int]]:
    """(keyword number, start, end) of every keyword occurrence in `folded`, overlaps
    included."""
    global _automaton
    if _automaton is None:
        try:
            import ahocorasick_rs

            _automaton = ahocorasick_rs.AhoCorasick(_KEYWORDS)
        except Exception:  # the package is missing or broken: str.find finds the same
            _automaton = False
    if _automaton is not False:
        return _automaton.find_matches_as_indexes(folded, True)  # type: ignore[no-any-return]
    found: list[tuple[int, int, int]] = []
    for k, keyword in enumerate(_KEYWORDS):
        i = folded.find(keyword)
        while i >= 0:
            found.append((k, i, i + len(keyword)))
            i = folded.find(keyword, i + 1)
    return found


def _folded(text: str) -> str:
    """Case-folded for the keywords. Unlike lower(), casefold() maps what re's IGNORECASE also
    matches (long s, Kelvin sign); the two Turkish i's are mapped here."""
    folded = text.casefold()
    if "\u0131" in folded or "\u0307" in folded:
        folded = folded.replace("i\u0307", "i").replace("\u0131", "i")
    return folded


_MIN_SECRET_CHARS: Final = 6


def holds_keyword(text: str) -> bool:
    """Whether any rule's keyword is in `text` (case-folded). Without one, `redact_secrets`
    finds nothing: a cheap first look at text that is usually clean."""
    return len(text) >= _MIN_SECRET_CHARS and bool(_find_keywords(_folded(text)))


def redact_secrets(text: str) -> tuple[str, int]:
    """Replace secrets with a marker naming their kind; never echoes any part of a secret.
    Returns the text and how many secrets were replaced.

    One case fold and one keyword pass; then each triggered rule, in order, is tried at its
    keywords (or searched, when its matches do not start at a keyword). A match that overlaps
    one accepted from an earlier rule is skipped, so rules earlier in `RULES` win, and every
    replacement is made in one final pass over the original text."""
    if len(text) < _MIN_SECRET_CHARS:
        return text, 0
    folded = _folded(text)
    hits = _find_keywords(folded)
    if not hits:
        return text, 0
    # Where each triggered rule's keywords start (a list per rule; duplicates removed below).
    starts: dict[int, list[int]] = {}
    get = starts.get
    owners = _OWNERS
    for k, start, _ in hits:
        for rule_no in owners[k]:
            at = get(rule_no)
            if at is None:
                starts[rule_no] = [start]
            else:
                at.append(start)
    aligned = len(folded) == len(text)
    # Accepted (start, end, replacement) spans, kept sorted by start, never overlapping.
    spans: list[tuple[int, int, str]] = []
    for rule_no in sorted(starts):
        rule = RULES[rule_no]
        if rule.requires and rule.requires not in folded:
            continue
        pattern = rule.pattern
        if rule.anchored and aligned:
            back = rule.back
            matches: Any = (
                pattern.match(text, pos - back)
                for pos in sorted(set(starts[rule_no]))
                if pos >= back
            )
        else:
            matches = pattern.finditer(text)
        for m in matches:
            if m is None:
                continue
            begin, end = m.span()
            if end == begin or _overlaps(spans, begin, end):
                continue
            replacement = _replacement(rule, m)
            if replacement is not None:
                bisect.insort(spans, (begin, end, replacement))
    if not spans:
        return text, 0
    out: list[str] = []
    done = 0
    for begin, end, replacement in spans:
        out.append(text[done:begin])
        out.append(replacement)
        done = end
    out.append(text[done:])
    return "".join(out), len(spans)


def _overlaps(spans: list[tuple[int, int, str]], begin: int, end: int) -> bool:
    i = bisect.bisect_left(spans, (begin,))
    if i < len(spans) and spans[i][0] < end:
        return True
    return i > 0 and spans[i - 1][1] > begin


def _replacement(rule: Rule, m: re.Match[str]) -> str | None:
    """The replacement for one match, or None to keep it (a value that is not a secret)."""
    marker = f"[REDACTED:{rule.kind}]"
    groups = [g for g in _SECRET_GROUPS if g in m.re.groupindex and m.group(g) is not None]
    if not groups:
        return marker
    whole = m.group(0)
    offset = m.start(0)
    out: list[str] = []
    done = 0
    for name in groups:
        value = m.group(name)
        if rule.valid is not None and not rule.valid(value):
            return None
        start, end = m.span(name)
        out.append(whole[done : start - offset])
        out.append(marker)
        done = end - offset
    out.append(whole[done:])
    return "".join(out)


# Keys whose value is a secret whatever it looks like: a dict entry `{"password": "x"}` is
# redacted as a whole before encoding, so JSON escaping cannot hide it from the patterns.
_SECRET_KEY: Final = re.compile(
    r"(?i)(?:passw(?:or)?d|passphrase|^pass$|[_\-.]pass$|^pwd$|[_\-.]pwd$|secret|credential"
    r"|private[_\-]?key|token$|api[_\-]?key|access[_\-]?key|account[_\-]?key|^auth$|[_\-.]auth$"
    r"|authorization|cookie$)"
)


def secret_key(key: str) -> bool:
    """The mapping key names a secret (`password`, `HF_TOKEN`, `apiKey`, `Authorization`)."""
    return _SECRET_KEY.search(key) is not None
