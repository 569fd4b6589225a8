"""The policy file format (format 1), as pydantic models that reject anything they do not know."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
)

from collectors.wildcards import WildcardError, compile_wildcard
from policy.versions import VersionError, VersionRequirement

FORMAT = 1

# Rule ids appear in metric labels, CSV columns and command lines: keep them plain.
RULE_ID = r"^[a-z0-9][a-z0-9._-]{0,99}$"
POLICY_ID = RULE_ID
# RBAC activity codes as Care Identity Management writes them: B0360, B8006.
ACTIVITY_CODE = r"^B[0-9]{4}$"
_INT_COMPARISON = re.compile(r"\s*(>=|<=|==|!=|>|<)\s*([0-9]{1,12})\s*")
# A pattern longer than this is a mistake, and a regex that long could be slow to match.
_MAX_PATTERN = 200


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_strip_whitespace=True)


def _one_or_more(value: Any) -> Any:
    """Let `name: X` stand for `name: [X]`."""
    return [value] if isinstance(value, str) else value


Patterns = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=_MAX_PATTERN)]],
    BeforeValidator(_one_or_more),
    Field(min_length=1),
]
Words = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=100)]],
    BeforeValidator(_one_or_more),
    Field(min_length=1),
]
MatchMode = Literal["glob", "regex"]
Browser = Literal["chrome", "edge"]
BROWSERS: tuple[Browser, ...] = ("chrome", "edge")


def _check_patterns(patterns: list[str] | None, info: ValidationInfo) -> list[str] | None:
    regex = info.data.get("match") == "regex"
    for pattern in patterns or ():
        try:
            re.compile(pattern) if regex else compile_wildcard(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        except WildcardError as exc:
            raise ValueError(f"invalid wildcard: {exc}") from None
    return patterns


def _check_wildcards(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        try:
            compile_wildcard(pattern)
        except WildcardError as exc:
            raise ValueError(f"invalid wildcard: {exc}") from None
    return patterns


class ProductCheck(_Strict):
    """Installed products (Add/Remove Programs) whose name matches, optionally by publisher and
    at a version; under `not`, that no such product is installed."""

    match: MatchMode = "glob"
    name: Patterns
    publisher: Patterns | None = None
    version: str | None = None
    label: str | None = Field(default=None, min_length=1, max_length=100)

    _patterns = field_validator("name", "publisher")(_check_patterns)

    @field_validator("version")
    @classmethod
    def _requirement(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                VersionRequirement.parse(value)
            except VersionError as exc:
                raise ValueError(str(exc)) from None
        return value


class ServiceCheck(_Strict):
    """A Windows service: present (or absent), with a start type and state in (or not in) a set."""

    name: str = Field(min_length=1, max_length=256)
    present: bool = True
    start_type: Words | None = None
    start_type_not: Words | None = None
    state: Words | None = None
    state_not: Words | None = None


class CardTypeCheck(_Strict):
    """A registered smart-card type (Calais\\SmartCards), optionally with a given minidriver."""

    match: MatchMode = "glob"
    name: Patterns
    minidriver: Patterns | None = None

    _patterns = field_validator("name", "minidriver")(_check_patterns)


class BrowserCookiesCheck(_Strict):
    """Every listed browser that blocks third-party cookies must allow them for `url`."""

    url: str = Field(min_length=1, max_length=500)
    browsers: list[Browser] = Field(default_factory=lambda: list(BROWSERS), min_length=1)

    @field_validator("url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        port = re.fullmatch(r"[a-z][a-z0-9+.-]*://[^/\s:]+(?::(\d{1,5}))?(?:/\S*)?", value)
        if port is None or (port[1] is not None and int(port[1]) > 65535):
            raise ValueError(f"{value!r} is not an absolute URL such as https://localhost:43485")
        return value


def dotnet_comparison(value: str) -> tuple[str, int]:
    """'>= 528040' as (operator, release), or ValueError."""
    match = _INT_COMPARISON.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not a release comparison; write e.g. '>= 528040'")
    return match[1], int(match[2])


def _valid_dotnet(value: Any) -> Any:
    if isinstance(value, str):
        dotnet_comparison(value)
    return value


class Product(_Strict):
    product: ProductCheck


class DotnetRelease(_Strict):
    dotnet_release: Annotated[str, BeforeValidator(_valid_dotnet)]


class ServiceCondition(_Strict):
    service: ServiceCheck


class SmartcardReader(_Strict):
    smartcard_reader: bool


class CardType(_Strict):
    card_type: CardTypeCheck


class PendingRebootCondition(_Strict):
    pending_reboot: bool


class CmListening(_Strict):
    cm_listening: bool


class BrowserCookies(_Strict):
    browser_cookies: BrowserCookiesCheck


class AllOf(_Strict):
    all_of: Annotated[list[Condition], Field(min_length=1)]


class AnyOf(_Strict):
    any_of: Annotated[list[Condition], Field(min_length=1)]


class Not(_Strict):
    not_: Condition = Field(alias="not")


# The tags are bracketed so that they never collide with a YAML key when an error location
# is walked back to its line and column (the walk skips path parts that name no key).
KINDS: dict[str, type[_Strict]] = {
    "product": Product,
    "dotnet_release": DotnetRelease,
    "service": ServiceCondition,
    "smartcard_reader": SmartcardReader,
    "card_type": CardType,
    "pending_reboot": PendingRebootCondition,
    "cm_listening": CmListening,
    "browser_cookies": BrowserCookies,
    "all_of": AllOf,
    "any_of": AnyOf,
    "not": Not,
}


def tag(kind: str) -> str:
    return f"<{kind}>"


def _kind(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return tag(key) if key in KINDS else None
    if isinstance(value, BaseModel):
        for kind, model in KINDS.items():
            if isinstance(value, model):
                return tag(kind)
    return None


def _shape(value: Any) -> Any:
    """Explain a malformed condition better than 'unable to extract tag'."""
    if isinstance(value, BaseModel):
        return value
    kinds = ", ".join(KINDS)
    if not isinstance(value, dict):
        raise ValueError(f"a condition is a mapping with one key, one of: {kinds}")
    if len(value) != 1:
        found = ", ".join(str(k) for k in value) or "none"
        raise ValueError(f"a condition has exactly one key (found: {found}); use all_of/any_of")
    key = next(iter(value))
    if key not in KINDS:
        raise ValueError(f"unknown condition {key!r}; expected one of: {kinds}")
    return value


Condition = Annotated[
    Annotated[Product, Tag(tag("product"))]
    | Annotated[DotnetRelease, Tag(tag("dotnet_release"))]
    | Annotated[ServiceCondition, Tag(tag("service"))]
    | Annotated[SmartcardReader, Tag(tag("smartcard_reader"))]
    | Annotated[CardType, Tag(tag("card_type"))]
    | Annotated[PendingRebootCondition, Tag(tag("pending_reboot"))]
    | Annotated[CmListening, Tag(tag("cm_listening"))]
    | Annotated[BrowserCookies, Tag(tag("browser_cookies"))]
    | Annotated[AllOf, Tag(tag("all_of"))]
    | Annotated[AnyOf, Tag(tag("any_of"))]
    | Annotated[Not, Tag(tag("not"))],
    Discriminator(_kind),
    BeforeValidator(_shape),
]


class RuleSpec(_Strict):
    """One rule: `check` must hold wherever `when` (if given) holds."""

    id: str = Field(pattern=RULE_ID)
    title: str = Field(min_length=1, max_length=200)
    severity: Literal["required", "advisory"]
    remediation: str = Field(min_length=1, max_length=2000)
    when: Condition | None = None
    check: Condition


def _activity_code(value: str) -> str:
    if not re.fullmatch(ACTIVITY_CODE, value):
        raise ValueError(f"{value!r} is not an activity code: expected B and 4 digits, e.g. B0360")
    return value


ActivityCode = Annotated[str, AfterValidator(_activity_code)]


class AccessSpec(_Strict):
    """Who may open the dashboard a practice's staff use: smartcard activity codes held for
    that practice's ODS code; any one of `grants` will do, and `implies` lists what a code
    also grants (so a policy can name an implied code in `grants`)."""

    title: str = Field(default="PCN appointments dashboard", min_length=1, max_length=200)
    grants: Annotated[list[ActivityCode], Field(min_length=1, max_length=100)]
    implies: dict[ActivityCode, Annotated[list[ActivityCode], Field(min_length=1)]] = Field(
        default_factory=dict, max_length=100
    )


class PolicySpec(_Strict):
    """A whole policy file."""

    format: int
    id: str = Field(pattern=POLICY_ID)
    title: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    watch: Patterns

    _wildcards = field_validator("watch")(_check_wildcards)
    rules: Annotated[list[RuleSpec], Field(min_length=1, max_length=500)]
    access: AccessSpec | None = None


AllOf.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()
RuleSpec.model_rebuild()
PolicySpec.model_rebuild()
