#!/usr/bin/env python3
"""Re-decide the GPP vectors' US sections under Prebid.js's MSPA activity
controls (libraries/mspa/activityControls.ts and modules/gppControl_usstates.ts
at prebid/Prebid.js 03a1d19 / 62cddb4), reading the fields @iabgpp/cmpapi
decoded (the vector's "decoded"). A section that denies consent
(isConsentDenied) or sensitive data (isTransmitUfpdConsentDenied) withholds
the purposes of opt_out_denies (the runs' policies set it to [ads]; the
sensitive-data purposes default to it); one that denies precise geolocation
(isTransmitGeoConsentDenied) coarsens coordinates. Sections 13 to 27 are not
normalized by Prebid.js and keep the opt-out semantics the vectors had.

Usage: python3 gen/mspa.py vectors
"""
import glob, json, os, sys

GEO = 7
CANNOT = [i - 1 for i in (6, 7, 9, 10, 12, 14, 16)]
MOVES = {"usca": {1: [9], 2: [10], 3: [8], 4: [1, 2], 5: [12], 8: [3], 9: [4]},
         "usut": {3: [4], 4: [5], 5: [3]}}
STATES = {"usca", "usva", "usco", "usut", "usct"}
SID = {"usnat": 7, "usca": 8, "usva": 9, "usco": 10, "usut": 11, "usct": 12}


def applicable(x):
    return x is not None and x != 0


def normalize(name, cd):
    fields = ["Version", "Gpc", "SharingNotice", "SaleOptOutNotice", "SharingOptOutNotice",
              "TargetedAdvertisingOptOutNotice", "SensitiveDataProcessingOptOutNotice",
              "SensitiveDataLimitUseNotice", "SaleOptOut", "SharingOptOut", "TargetedAdvertisingOptOut",
              "PersonalDataConsents", "MspaCoveredTransaction", "MspaOptOutOptionMode", "MspaServiceProviderMode"]
    out = {f: (cd[f] if f in cd and not isinstance(cd[f], list) else None) for f in fields}
    sens = [None] * 12
    done = set()
    for i, el in enumerate(cd.get("SensitiveDataProcessing") or []):
        moved = (i + 1) in MOVES.get(name, {})
        dests = MOVES[name][i + 1] if moved else [i + 1]
        for d in dests:
            if d - 1 < 12 and (d - 1) not in done:
                sens[d - 1] = el
                if moved:
                    done.add(d - 1)
    out["SensitiveDataProcessing"] = sens
    cc = cd.get("KnownChildSensitiveDataConsents")
    if not isinstance(cc, list):
        cc = [cc]
    if not any(c != 0 for c in cc):
        out["KnownChildSensitiveDataConsents"] = [0, 0]
    elif name == "usct" and len(cc) == 3 and cc[1] == 2 and cc[2] == 2:
        out["KnownChildSensitiveDataConsents"] = [2, 1]
    else:
        out["KnownChildSensitiveDataConsents"] = [1, 1]
    return out


def basic(cd):
    kc = cd["KnownChildSensitiveDataConsents"] + [None, None, None]
    return (cd.get("MspaServiceProviderMode") == 1 or cd.get("Gpc") in (1, True) or
            cd.get("PersonalDataConsents") == 2 or kc[0] == 1 or kc[2] == 1 or applicable(kc[1]) or
            cd.get("MspaCoveredTransaction") == 0)


def notice_is(cd, v):
    return cd.get("SensitiveDataProcessingOptOutNotice") == v or cd.get("SensitiveDataLimitUseNotice") == v


def consent_denied(cd):
    if basic(cd):
        return True
    for s in ("Sale", "Sharing", "TargetedAdvertising"):
        oo, notice = cd.get(s + "OptOut"), cd.get(s + "OptOutNotice")
        if oo == 1 or notice == 2 or (oo == 2 and notice == 0):
            return True
    return cd.get("SharingNotice") == 2 or (cd.get("SharingOptOut") == 2 and cd.get("SharingNotice") == 0)


def sensitive_denied(cd):
    card = 16 if cd.get("Version") == 2 else 12
    sdp = (cd.get("SensitiveDataProcessing") or []) + [None] * 16
    rng = [i for i in range(card) if i != GEO]
    return (consent_denied(cd) or notice_is(cd, 2) or
            any(applicable(sdp[i]) for i in CANNOT if i < card) or
            any(sdp[i] == 1 for i in rng if i not in CANNOT) or
            (notice_is(cd, 0) and any(sdp[i] == 2 for i in rng)))


def geo_denied(cd):
    sdp = (cd.get("SensitiveDataProcessing") or []) + [None] * 16
    g = sdp[GEO]
    return g == 1 or basic(cd) or notice_is(cd, 2) or (notice_is(cd, 0) and g == 2)


def sids(ev):
    s = (ev.get("context") or {}).get("gpp_sid")
    if s is None:
        return None
    if isinstance(s, str):
        s = [int(x) for x in s.replace("_", ",").split(",") if x.strip()]
    return s


def main(d):
    changed = 0
    for f in sorted(glob.glob(os.path.join(d, "gpp-*.json"))):
        v = json.load(open(f))
        dec = v.get("decoded") or {}
        app = sids(v["event"])
        deny = geo = False
        for name, cd in dec.items():
            if name not in SID or (app is not None and SID[name] not in app):
                continue
            if not isinstance(cd, dict) or "Version" not in cd:
                continue
            ncd = cd if name == "usnat" else normalize(name, cd)
            deny = deny or consent_denied(ncd) or sensitive_denied(ncd)
            geo = geo or geo_denied(ncd)
        touched = False
        for r in v["runs"]:
            e = r["expect"]
            if e.get("invalid"):
                continue
            if deny and "ads" in v["purposes"] and "ads" not in e.get("withheld", []):
                e["withheld"] = sorted(set(e.get("withheld", [])) | {"ads"})
                touched = True
            if geo and e.get("coarse_geo") is False:
                e["coarse_geo"] = True
                touched = True
        if deny or geo or touched:
            if "Prebid.js MSPA" not in v["reference"]:
                v["reference"] += "; US sections 7-12 under Prebid.js MSPA activity controls (libraries/mspa/activityControls.ts, modules/gppControl_usstates.ts)"
        if touched:
            changed += 1
            with open(f, "w") as out:
                json.dump(v, out, indent=1, ensure_ascii=False)
                out.write("\n")
    print("vectors changed:", changed, file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
