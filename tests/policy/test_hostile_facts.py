"""Whatever a host reports, evaluation answers with a verdict and never raises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.facts import (
    BrowserCookiePolicy,
    Facts,
    PendingReboot,
    ProbeInfo,
    Product,
    Service,
    SmartCardType,
)
from policy import default_policy, evaluate, explain

names = st.one_of(
    st.sampled_from(
        [
            "NHS Credential Management",
            "NHS Identity Agent",
            "NHS Digital Identity Agent",
            "NHS Identity Hub",
            "NHS Port Service",
            "IDEMIA Authentic Web Pack",
            "Oberthur Technologies Authentic Web Pack",
        ]
    ),
    st.text(max_size=60),
)
versions = st.one_of(
    st.none(),
    st.sampled_from(["1.3.1.0", "1.4.2.0", "2.4.10.0", "3.1", "4.1.2.0", "", " ", "latest"]),
    st.text(max_size=20),
)
products = st.builds(
    Product,
    name=names,
    version=versions,
    publisher=st.one_of(st.none(), st.sampled_from(["IDEMIA", "Oberthur", "NHS"]), st.text()),
    view=st.sampled_from(["x64", "x86"]),
)
services = st.builds(
    Service,
    name=st.sampled_from(["SCardSvr", "scardsvr", "CertPropSvc", "x"]),
    present=st.booleans(),
    state=st.one_of(st.none(), st.text(max_size=10)),
    start_type=st.one_of(st.none(), st.sampled_from(["Disabled", "Manual", "Automatic"])),
)
cookies = st.builds(
    BrowserCookiePolicy,
    browser=st.sampled_from(["chrome", "edge"]),
    block_third_party_cookies=st.one_of(st.none(), st.booleans()),
    cookies_allowed_for_urls=st.lists(
        st.one_of(
            st.sampled_from(["[*.]localhost", "localhost:", "://", "[", ":*", "*"]),
            st.text(max_size=30),
        ),
        max_size=4,
    ).map(tuple),
)
facts = st.builds(
    Facts,
    schema_version=st.just(1),
    probe=st.builds(
        ProbeInfo, marker=st.just("cmscan-probe"), version=st.just("1"), duration_ms=st.just(1)
    ),
    products=st.lists(products, max_size=6).map(tuple),
    dotnet_release=st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63)),
    services=st.lists(services, max_size=3).map(tuple),
    smartcard_readers=st.lists(st.text(max_size=20), max_size=3).map(tuple),
    smartcard_types=st.lists(
        st.builds(SmartCardType, name=st.text(max_size=40), minidriver=st.none() | st.text()),
        max_size=3,
    ).map(tuple),
    cm_listening=st.none() | st.booleans(),
    pending_reboot=st.builds(PendingReboot),
    browser_policies=st.lists(cookies, max_size=3).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(facts)
def test_evaluation_never_raises_and_agrees_with_explain(host: Facts) -> None:
    policy = default_policy()
    verdict = evaluate(policy, host)
    results = {r.rule.id: r for r in explain(policy, host)}
    failed = [rid for rid, r in results.items() if r.outcome == "fail"]
    assert sorted(failed) == sorted(verdict.failing_ids + verdict.advisory_ids)
    for finding in verdict.failing + verdict.advisories:
        assert finding.reason == results[finding.rule_id].observed
        assert finding.reason.isprintable()
        assert 0 < len(finding.reason) <= 300
    assert verdict.status == ("noncompliant" if verdict.failing else "compliant")


def test_reasons_stay_on_one_line() -> None:
    from tests.policy import builders as b

    hostile = b.facts([b.cm("1.0\n\x1b[31mFAKE", "x64"), b.idemia()])
    (finding,) = evaluate(default_policy(), hostile).failing
    assert (
        finding.reason
        == "NHS Credential Management version '1.0\\n\\x1b[31mFAKE' is not a Windows version"
    )
    long_name = b.facts([b.product("NHS Identity Hub " + "x" * 1000, "1"), *b.GOOD_PRODUCTS])
    (finding,) = evaluate(default_policy(), long_name).failing
    assert len(finding.reason) == 300
    assert finding.reason.endswith("…")
