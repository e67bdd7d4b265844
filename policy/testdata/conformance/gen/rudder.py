#!/usr/bin/env python3
"""rudder.py writes RudderStack vectors from rudder-server's own consent
filter tests (processor/consent_test.go): every (test case, destination)
pair becomes one vector whose purpose "dest" is fed by the destination's
consent ids, and whose reference decision is the test's expectedDestIDs.

  go run ./goliterals consent_test.go TestFilterDestinations > filter.json
  go run ./goliterals consent_test.go TestGetConsentManagementInfo > info.json
  python3 rudder.py filter.json info.json <commit> <out dir>
"""
import json, os, sys

filt, info, commit, out = sys.argv[1:5]
SRC = {"repo": "rudderlabs/rudder-server", "path": "processor/consent_test.go", "commit": commit}
REF = "rudder-server processor/consent.go getConsentFilteredDestinations (expected destinations of its own test)"
n = 0


def policy(ids, strategies, extra=""):
    y = "consent_categories:\n" + "".join(f"  {json.dumps(i)}: dest\n" for i in sorted(set(ids)))
    if strategies or extra:
        y += "signals:\n"
        if strategies:
            y += "  rudderstack_strategies: {" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in strategies.items()) + "}\n"
        y += extra
    return y


def write(v):
    global n
    n += 1
    with open(os.path.join(out, f"rudderstack-rudder-server-{n:03d}.json"), "w") as f:
        json.dump(v, f, indent=1)
        f.write("\n")


def dest_ids(dest, provider, source_has_gcm=True):
    """The consent ids and fixed strategy rudder-server uses for dest."""
    cfg = dest.get("Config") or {}
    cm = cfg.get("consentManagement")
    if isinstance(cm, list):
        for e in cm:
            if not isinstance(e, dict) or not e.get("provider"):
                continue
            cons = [c.get("consent") for c in (e.get("consents") or []) if isinstance(c, dict) and c.get("consent")]
            if cons and e["provider"] == provider:
                if provider == "custom":
                    return cons, e.get("resolutionStrategy") or "and", "gcm custom"
                return cons, None, "gcm"
    if provider in ("", "oneTrust"):
        cats = [c.get("oneTrustCookieCategory") for c in (cfg.get("oneTrustCookieCategories") or []) if isinstance(c, dict) and isinstance(c.get("oneTrustCookieCategory"), str) and c.get("oneTrustCookieCategory")]
        if cats:
            return cats, "and", "legacy oneTrust"
    if provider in ("", "ketch"):
        ps = [c.get("purpose") for c in (cfg.get("ketchConsentPurposes") or []) if isinstance(c, dict) and isinstance(c.get("purpose"), str) and c.get("purpose")]
        if ps:
            return ps, "or", "legacy ketch"
    return [], None, "no consent ids"


for case in json.load(open(filt)):
    ev = case.get("event") or {}
    cm = (ev.get("context") or {}).get("consentManagement") or {}
    provider = cm.get("provider") or ""
    conns = case.get("connectionInfo") or [{"destinations": case.get("destinations"), "expectedDestIDs": case.get("expectedDestIDs")}]
    for conn in conns:
        for dest in conn["destinations"]:
            ids, fixed, how = dest_ids(dest, provider)
            allowed = dest["ID"] in (conn.get("expectedDestIDs") or [])
            event = {"userId": "u", "context": dict(ev.get("context") or {})}
            strategies = {provider: fixed} if fixed else {}
            stored = None
            if cm:
                stored = {"granted": (["dest"] if ids and allowed else []), "keep": (["other"] if ids else ["dest", "other"])}
            write({
                "kind": "rudderstack",
                "source": dict(SRC, note=f"line {case['_line']}: {case['description']}; {dest['ID']} ({how})"),
                "reference": REF,
                "purposes": ["dest", "other"],
                "event": event,
                "record": dict(event, timestamp="2026-11-22T10:00:00Z") if cm else None,
                "runs": [{"name": "reference", "policy": policy(ids or ["unmapped-id"], strategies) if ids else "consent_categories:\n  unmapped-id: other\n",
                          "expect": {"withheld": [] if allowed else ["dest"], **({"stored": stored} if stored and ids else {})}}],
            })

# getConsentManagementInfo: how rudder-server reads the object. A purpose
# fed by "consent category 3" is withheld when the parsed denied ids hold it.
for case in json.load(open(info)):
    inp = case["input"]
    exp = case["expected"]
    denied = exp.get("DeniedConsentIDs") or [] if isinstance(exp, dict) else []
    allowed = "consent category 3" not in denied
    cm = (inp.get("context") or {}).get("consentManagement")
    malformed = cm is not None and exp == "$defConsentManagementInfo" and not (isinstance(cm, dict) and set(cm) <= {"provider"})
    event = dict(inp, userId="u")
    runs = [{"name": "reference", "policy": policy(["consent category 3"], {}, "  invalid_rudderstack: ignore\n" if malformed else ""),
             "expect": {"withheld": [] if allowed else ["dest"]}}]
    if malformed:
        runs.append({"name": "default", "policy": policy(["consent category 3"], {}), "options": ["signals.invalid_rudderstack"], "expect": {"invalid": True}})
    write({
        "kind": "rudderstack",
        "source": dict(SRC, note=f"line {case['_line']}: {case['description']}"),
        "reference": "rudder-server processor/consent.go getConsentManagementInfo (expected value of its own test), then getConsentFilteredDestinations",
        "purposes": ["dest", "other"], "event": event, "record": None, "runs": runs,
    })
print(n)
