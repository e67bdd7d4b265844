#!/usr/bin/env python3
"""segment.py writes Segment vectors transcribed from Segment's consent
documentation (segmentio/segment-docs): the table "Reconcile consent object
and integrations object conflicts" (rows without an integrations object,
which consentd does not read), the paragraph "Reconcile CMP and Segment
consent category conflicts", and the Segment Consent Preference Updated
example of "Consent Stored on the Profile". Each (row, destination) pair is
one vector whose purpose "dest" is the destination.

  python3 segment.py <out dir>
"""
import json, os, sys

out = sys.argv[1]
CONN = {"repo": "segmentio/segment-docs", "path": "src/privacy/consent-management/consent-in-segment-connections.md", "commit": "57d5f56da1d7df4b2943c65d12da0c5b0a0def1c"}
UNIFY = {"repo": "segmentio/segment-docs", "path": "src/privacy/consent-management/consent-in-unify.md", "commit": "f43e627256d528769e380254ad1b21b0805fb030"}
REF = "Segment consent enforcement as documented: a destination mapped to categories receives data only if every category is true; a missing category is false; unmapped destinations are not gated"
n = 0


def vector(src, note, consent, cats, flows, stored=True):
    """consent: the context.consent object (None: absent); cats: the
    categories mapped to dest; flows: the documented outcome for dest."""
    global n
    n += 1
    ctx = {} if consent is None else {"consent": consent}
    event = {"userId": "u", "type": "track", "event": "Order Completed", "context": ctx}
    mapping = {c: "dest" for c in cats} or {"Functional": "other"}
    policy = "consent_categories:\n" + "".join(f"  {json.dumps(k)}: {v}\n" for k, v in sorted(mapping.items()))
    prefs = (consent or {}).get("categoryPreferences")
    expect = {"withheld": [] if flows else ["dest"]}
    record = None
    if stored and prefs is not None:
        record = {"userId": "u", "type": "track", "event": "Segment Consent Preference Updated", "timestamp": "2023-01-01T00:00:00.000Z", "context": ctx}
        granted = ["dest"] if cats and flows else []
        if not cats:
            # "other" is mapped to a category the preferences lack.
            expect["withheld"] = ["other"] if "Functional" not in prefs or not prefs["Functional"] else []
        expect["stored"] = {"granted": granted + ([] if cats else ([] if expect["withheld"] else ["other"])), "keep": (["other"] if cats else ["dest"])}
    elif not cats and prefs is not None:
        expect["withheld"] = ["other"] if not prefs.get("Functional") else []
    n_str = f"{n:03d}"
    with open(os.path.join(out, f"segment-segment-docs-{n_str}.json"), "w") as f:
        json.dump({"kind": "segment", "source": dict(src, note=note), "reference": REF, "purposes": ["dest", "other"],
                   "event": event, "record": record, "runs": [{"name": "reference", "policy": policy, "expect": expect}]}, f, indent=1)
        f.write("\n")


T = "table 'Reconcile consent object and integrations object conflicts', row: "
# Rows without an integrations object.
vector(CONN, T + "no consent object: data flows to all destinations (a destination mapped to ad)", None, ["ad"], True)
vector(CONN, T + "empty consent object: data flows to all destinations (a destination mapped to ad)", {}, ["ad"], True)
vector(CONN, T + "empty categoryPreferences: no data to mapped destinations", {"categoryPreferences": {}}, ["ad"], False)
vector(CONN, T + "empty categoryPreferences: data flows to destinations not mapped to a category", {"categoryPreferences": {}}, [], True)
vector(CONN, T + "{ad: true, analytics: false}, no mapping: data flows to all destinations", {"categoryPreferences": {"ad": True, "analytics": False}}, [], True)
vector(CONN, T + "{ad: true, analytics: false}, ad = facebook: flows to facebook", {"categoryPreferences": {"ad": True, "analytics": False}}, ["ad"], True)
vector(CONN, T + "{ad: true, analytics: false}, analytics = amplitude: no data to amplitude", {"categoryPreferences": {"ad": True, "analytics": False}}, ["analytics"], False)
vector(CONN, T + "{ad: true, analytics: false}, facebook mapped to ad and analytics: no data to facebook", {"categoryPreferences": {"ad": True, "analytics": False}}, ["ad", "analytics"], False)
vector(CONN, T + "{ad: true, analytics: false}, google-ads mapped to ad only: flows to google-ads", {"categoryPreferences": {"ad": True, "analytics": False}}, ["ad"], True)
vector(CONN, T + "{ad: true, analytics: true}, facebook mapped to ad and analytics: flows to facebook", {"categoryPreferences": {"ad": True, "analytics": True}}, ["ad", "analytics"], True)
vector(CONN, T + "{ad: false, analytics: true}, facebook mapped to ad and analytics: no data to facebook", {"categoryPreferences": {"ad": False, "analytics": True}}, ["ad", "analytics"], False)
vector(CONN, T + "{ad: false, analytics: true}, google-ads mapped to ad: no data to google-ads", {"categoryPreferences": {"ad": False, "analytics": True}}, ["ad"], False)
vector(CONN, T + "{ad: false, analytics: true}, amplitude mapped to analytics: consent allows amplitude", {"categoryPreferences": {"ad": False, "analytics": True}}, ["analytics"], True)
P = "section 'Reconcile CMP and Segment consent category conflicts': "
vector(CONN, P + "a CMP category (advertising) with no Segment category: data flows to unmapped destinations", {"categoryPreferences": {"advertising": True}}, [], True)
vector(CONN, P + "a CMP category (advertising, false) with no Segment category: unmapped destinations still receive data", {"categoryPreferences": {"advertising": False}}, [], True)
vector(CONN, P + "a Segment category (functional) the CMP does not send: no data to destinations mapped to it", {"categoryPreferences": {"advertising": True}}, ["functional"], False)
vector(CONN, P + "destinations mapped to a different category honour consent for that category", {"categoryPreferences": {"advertising": False, "functional": True}}, ["functional"], True)
vector(CONN, "section 'Consent object': example object, destination mapped to Advertising", {"categoryPreferences": {"Advertising": True, "Analytics": False, "Functional": True, "DataSharing": False}}, ["Advertising"], True)
vector(CONN, "section 'Consent object': example object, destination mapped to Analytics", {"categoryPreferences": {"Advertising": True, "Analytics": False, "Functional": True, "DataSharing": False}}, ["Analytics"], False)
vector(CONN, "section 'Consent object': example object, destination mapped to Advertising and Functional", {"categoryPreferences": {"Advertising": True, "Analytics": False, "Functional": True, "DataSharing": False}}, ["Advertising", "Functional"], True)
vector(CONN, "section 'Consent object': example object, destination mapped to Functional and DataSharing", {"categoryPreferences": {"Advertising": True, "Analytics": False, "Functional": True, "DataSharing": False}}, ["Functional", "DataSharing"], False)
U = "Segment Consent Preference Updated example (functional and advertising agreed, analytics and data sharing not): "
ex = {"categoryPreferences": {"Advertising": True, "Analytics": False, "Functional": True, "DataSharing": False}}
vector(UNIFY, U + "advertising", ex, ["Advertising"], True)
vector(UNIFY, U + "analytics", ex, ["Analytics"], False)
vector(UNIFY, U + "functional", ex, ["Functional"], True)
vector(UNIFY, U + "data sharing", ex, ["DataSharing"], False)
vector(UNIFY, "troubleshooting: an empty consent object sets every category to false", {"categoryPreferences": {}}, ["Advertising"], False)
print(n)
