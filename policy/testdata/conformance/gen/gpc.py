#!/usr/bin/env python3
"""gpc.py writes Global Privacy Control vectors from the W3C GPC
specification (w3c/gpc index.html): the Sec-GPC field value is exactly "1"
(other values: as if absent; several fields: "1" if any is "1") and
navigator.globalPrivacyControl is a boolean. Events carry the signal at
context.gpc (and context.gpc_header for the several-fields case).

  python3 gpc.py <out dir>
"""
import json, os, sys

out = sys.argv[1]
SRC = {"repo": "w3c/gpc", "path": "index.html", "commit": "58d8695910f7e1a8a6600df039d0de5d7e0af377"}
n = 0


def vector(note, ctx, on, runs=None, extra_policy=""):
    global n
    n += 1
    policy = "gpc_paths: [context.gpc, context.gpc_header]\ngpc_denies: [ads]\n" + extra_policy
    runs = runs or [{"name": "reference", "policy": policy, "expect": {"withheld": ["ads"] if on else []}}]
    with open(os.path.join(out, f"gpc-gpc-{n:03d}.json"), "w") as f:
        json.dump({"kind": "gpc", "source": dict(SRC, note=note), "reference": "W3C Global Privacy Control specification, section 'The Sec-GPC Header Field for HTTP Requests' and the globalPrivacyControl property",
                   "purposes": ["ads", "other"], "event": {"userId": "u", "context": ctx}, "runs": runs}, f, indent=1)
        f.write("\n")


vector('lines 246-247, 281: Sec-GPC field value "1"', {"gpc": "1"}, True)
vector('lines 263-265: a field value other than exactly "1" ("0") is no signal', {"gpc": "0"}, False)
vector('lines 263-265: a field value other than exactly "1" (" 1") is no signal', {"gpc": " 1"}, False)
vector('lines 263-265: a field value other than exactly "1" ("true") is no signal', {"gpc": "true"}, False)
vector('lines 263-265: a field value other than exactly "1" ("yes") is no signal', {"gpc": "yes"}, False)
vector('lines 263-265: an empty field value is no signal', {"gpc": ""}, False)
vector('lines 265-268: several fields, one exactly "1": GPC', {"gpc": "0", "gpc_header": "1"}, True)
vector('lines 265-268: several fields, none exactly "1": no GPC', {"gpc": "0", "gpc_header": "2"}, False)
vector("lines 303-318: navigator.globalPrivacyControl true", {"gpc": True}, True)
vector("lines 303-318: navigator.globalPrivacyControl false", {"gpc": False}, False)
vector("lines 250-252: no field when the preference is unset (absent)", {}, False)
vector("lines 250-252: no field (null)", {"gpc": None}, False)
vector("field value 1 carried as a JSON number", {"gpc": 1}, True)
# GPC with an explicit "did not opt out" on the same event: the documented
# option signals.gpc_overrides_opt_in (California: GPC is honoured).
base = "gpc_paths: [context.gpc]\ngpc_denies: [ads]\niab:\n  opt_out_denies: [ads]\n"
vector('lines 246-247 with US Privacy "1YNN" (not opted out): GPC still withholds by default', {"gpc": "1", "us_privacy": "1YNN"}, True, runs=[
    {"name": "default", "policy": base, "expect": {"withheld": ["ads"]}},
    {"name": "gpc_overrides_opt_in false", "policy": base + "signals:\n  gpc_overrides_opt_in: false\n", "options": ["signals.gpc_overrides_opt_in"], "expect": {"withheld": []}},
])
vector('lines 246-247 with US Privacy "1YYN" (opted out): withheld either way', {"gpc": "1", "us_privacy": "1YYN"}, True, runs=[
    {"name": "default", "policy": base, "expect": {"withheld": ["ads"]}},
    {"name": "gpc_overrides_opt_in false", "policy": base + "signals:\n  gpc_overrides_opt_in: false\n", "options": ["signals.gpc_overrides_opt_in"], "expect": {"withheld": ["ads"]}},
])
print(n)
