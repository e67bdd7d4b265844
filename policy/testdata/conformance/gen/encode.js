// encode.js writes vectors for cases no public file covers, encoding the
// strings with the IAB's reference encoders (@iabtechlabtcf/core,
// @iabgpp/cmpapi) and deciding them as gen.js does. The tests never run it.
//
//   NODE_PATH=/tmp/enc/node_modules node encode.js <out dir>
"use strict";
const fs = require("fs");
const path = require("path");
const { TCString, TCModel } = require("@iabtechlabtcf/core");
const { GppModel } = require("@iabgpp/cmpapi");
const { gvl } = require("./gvl.js");
const { tcfDecide, gppDecide, tcfOptions, iabYAML, COMPAT, STRICT, PURPOSES, versions } = require("./gen.js");

const out = process.argv[2];
fs.mkdirSync(out, { recursive: true });
const V = 10;
let n = 0;

function tc(edit) {
  const m = new TCModel(gvl());
  m.cmpId = 10;
  m.cmpVersion = 1;
  m.isServiceSpecific = true;
  m.created = new Date("2026-03-02T00:00:00Z");
  m.lastUpdated = new Date("2026-03-02T00:00:00Z");
  m.purposeConsents.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  m.vendorConsents.set([V]);
  m.vendorsDisclosed.set([V, 11]);
  m.specialFeatureOptins.set(1);
  let segments = ["core", "vendorsDisclosed"];
  const seg = edit(m);
  if (seg) segments = seg;
  return TCString.encode(m, { segments });
}

const TCF_EXPECT = (d) => (d.invalid ? { invalid: true } : { withheld: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].filter((x) => !d.allowed.includes(x)).map((x) => "tcf" + x), coarse_geo: !d.sf1 });

function write(kind, v) {
  n++;
  fs.writeFileSync(path.join(out, `${kind}-encoded-${String(n).padStart(3, "0")}.json`), JSON.stringify(v, null, 1) + "\n");
}

function addTCF(note, s) {
  const ref = tcfDecide(s, V, COMPAT);
  const def = tcfDecide(s, V, STRICT);
  const runs = [{ name: "reference", policy: iabYAML(V, COMPAT), expect: TCF_EXPECT(ref), why: ref.why }];
  if (JSON.stringify(TCF_EXPECT(def)) !== JSON.stringify(TCF_EXPECT(ref))) runs.push({ name: "default", policy: iabYAML(V, STRICT), expect: TCF_EXPECT(def), why: def.why, options: def.options });
  else runs.push({ name: "default", policy: iabYAML(V, STRICT), expect: TCF_EXPECT(def) });
  write("tcf", {
    kind: "tcf",
    source: { repo: "InteractiveAdvertisingBureau/iabtcf-es", path: `npm @iabtechlabtcf/core@${versions.tcf} TCString.encode`, commit: "839b9557bfb9852ab9187a65747fce8e305b90b3", note: "encoded by gen/encode.js: " + note },
    string: s, reference: `@iabtechlabtcf/core ${versions.tcf} decode; TCF Policies and prebid-server full enforcement (vendor ${V})`,
    decoded: ref.decoded, purposes: PURPOSES, event: { userId: "u", context: { tcString: s } }, runs,
  });
  return s;
}

const GPP_EXPECT = (d, gpcOverrides = true) => {
  if (d.invalid) return { invalid: true };
  // signals.gpc_overrides_opt_in false: GPC yields to an explicit "did not
  // opt out" on the same event.
  if (!gpcOverrides && d.optedIn) d = { ...d, gpc: false };
  const w = new Set();
  let coarse = false;
  for (const t of d.tcf) {
    for (let x = 1; x <= 11; x++) if (!t.allowed.includes(x)) w.add("tcf" + x);
    if (!t.sf1) coarse = true;
  }
  if (d.optOut || d.gpc) w.add("ads");
  return { withheld: PURPOSES.filter((p) => w.has(p)), coarse_geo: coarse };
};

function addGPP(note, s, sids, extra) {
  const ref = gppDecide(s, V, COMPAT, sids);
  const def = gppDecide(s, V, STRICT, sids);
  const gpcOverrides = !(extra || "").includes("gpc_overrides_opt_in: false");
  const runs = [{ name: "reference", policy: iabYAML(V, COMPAT) + (extra || ""), expect: GPP_EXPECT(ref, gpcOverrides), why: ref.why }];
  runs.push({ name: "default", policy: iabYAML(V, STRICT) + (extra || ""), expect: GPP_EXPECT(def, gpcOverrides), why: def.why, options: def.options || tcfOptions(def) });
  const ctx = { gppString: s };
  if (sids) ctx.gpp_sid = sids;
  write("gpp", {
    kind: "gpp",
    source: { repo: "IABTechLab/iabgpp-es", path: `npm @iabgpp/cmpapi@${versions.gpp} GppModel.encode`, commit: "fd0546e7b28e7e186bc27aac6375e6c10a80e47e", note: "encoded by gen/encode.js: " + note },
    string: s, reference: `@iabgpp/cmpapi ${versions.gpp} GppModel decode; GPP specification field semantics`,
    decoded: ref.invalid ? undefined : ref.decoded, purposes: PURPOSES, event: { userId: "u", context: ctx }, runs,
  });
}

function restrict(m, purpose, type, vendors) {
  const { PurposeRestriction } = require("@iabtechlabtcf/core");
  const pr = new PurposeRestriction(purpose, type);
  for (const v of vendors) m.publisherRestrictions.add(v, pr);
}

// TCF: publisher restrictions, Disclosed Vendors, service-specific,
// flexible purposes, special feature 1.
const base = addTCF("consent for every purpose, vendor consented and disclosed", tc(() => {}));
addTCF("publisher restriction type 0 (not allowed) on purpose 2 for the vendor", tc((m) => restrict(m, 2, 0, [V])));
addTCF("publisher restriction type 0 on purpose 2 for another vendor only", tc((m) => restrict(m, 2, 0, [11])));
addTCF("publisher restriction type 0 on purpose 7 for a vendor range holding the vendor", tc((m) => restrict(m, 7, 0, [9, 10, 11, 12])));
addTCF("publisher restriction type 1 (require consent) on flexible purpose 7, consent given", tc((m) => restrict(m, 7, 1, [V])));
addTCF("publisher restriction type 1 on flexible purpose 7, no consent but legitimate interest", tc((m) => {
  restrict(m, 7, 1, [V]);
  m.purposeConsents.unset(7);
  m.purposeLegitimateInterests.set(7);
  m.vendorLegitimateInterests.set(V);
}));
addTCF("publisher restriction type 2 (require legitimate interest) on flexible purpose 2, consent but no legitimate interest", tc((m) => restrict(m, 2, 2, [V])));
addTCF("publisher restriction type 2 on flexible purpose 2 with legitimate interest", tc((m) => {
  restrict(m, 2, 2, [V]);
  m.purposeLegitimateInterests.set(2);
  m.vendorLegitimateInterests.set(V);
}));
addTCF("flexible purpose 8 on legitimate interest alone (no restriction)", tc((m) => {
  m.purposeConsents.unset(8);
  m.purposeLegitimateInterests.set(8);
  m.vendorLegitimateInterests.set(V);
}));
addTCF("flexible purpose 8: purpose legitimate interest but the vendor's objected", tc((m) => {
  m.purposeConsents.unset(8);
  m.purposeLegitimateInterests.set(8);
}));
addTCF("purpose 1 without consent", tc((m) => m.purposeConsents.unset(1)));
addTCF("vendor without consent; flexible purposes on legitimate interest", tc((m) => {
  m.vendorConsents.unset(V);
  m.vendorLegitimateInterests.set(V);
  m.purposeLegitimateInterests.set([2, 7, 8, 9, 10, 11]);
}));
addTCF("special feature 1 withheld", tc((m) => m.specialFeatureOptins.unset(1)));
addTCF("Disclosed Vendors segment without the vendor", tc((m) => m.vendorsDisclosed.unset(V)));
addTCF("no Disclosed Vendors segment, last updated after 2026-02-28", tc(() => ["core"]));
addTCF("no Disclosed Vendors segment, last updated 2025-06-01", tc((m) => {
  m.created = new Date("2025-06-01T00:00:00Z");
  m.lastUpdated = new Date("2025-06-01T00:00:00Z");
  return ["core"];
}));
addTCF("IsServiceSpecific=0 (global scope)", tc((m) => { m.isServiceSpecific = false; }));
addTCF("publisher restrictions of all three types on different purposes", tc((m) => {
  restrict(m, 2, 0, [V]);
  restrict(m, 7, 1, [V]);
  restrict(m, 9, 2, [V]);
  m.purposeLegitimateInterests.set(9);
  m.vendorLegitimateInterests.set(V);
}));

// GPP: TCF and US Privacy inside GPP, usnat with state sections, every US
// state section, GPC subsection, applicable sections.
function gpp(edit) {
  const m = new GppModel();
  edit(m);
  return m.encode();
}
addGPP("TCF EU v2 section", gpp((m) => m.decodeSection("tcfeuv2", base)));
addGPP("TCF EU v2 section with a type-0 publisher restriction on purpose 2", gpp((m) => m.decodeSection("tcfeuv2", tc((t) => restrict(t, 2, 0, [V])))));
addGPP("TCF EU v2 section without the vendor disclosed", gpp((m) => m.decodeSection("tcfeuv2", tc((t) => t.vendorsDisclosed.unset(V)))));
addGPP("TCF EU v2 and US Privacy (opted out of sale)", gpp((m) => {
  m.decodeSection("tcfeuv2", base);
  m.decodeSection("uspv1", "1YYN");
}));
const multi = gpp((m) => {
  m.decodeSection("tcfeuv2", tc((t) => t.purposeConsents.unset(1)));
  m.decodeSection("uspv1", "1YNN");
  m.setFieldValue("usnat", "SaleOptOutNotice", 1);
  m.setFieldValue("usnat", "SaleOptOut", 1);
  m.setFieldValue("usnat", "MspaCoveredTransaction", 1);
});
addGPP("TCF EU v2 (no purpose 1), US Privacy (not opted out), usnat (opted out of sale)", multi);
addGPP("same string, gpp_sid [2]: only TCF applies", multi, [2]);
addGPP("same string, gpp_sid [6]: only US Privacy applies", multi, [6]);
addGPP("same string, gpp_sid [7]: only usnat applies", multi, [7]);
addGPP("same string, gpp_sid [-1]: no section applies", multi, [-1]);
const states = ["usca", "usva", "usco", "usut", "usct", "usfl", "usmt", "usor", "ustx", "usde", "usia", "usne", "usnh", "usnj", "ustn", "usmn", "usmd", "usin", "usky", "usri"];
for (const st of states) {
  addGPP(`usnat (not opted out) and ${st} opted out of sale`, gpp((m) => {
    m.setFieldValue("usnat", "SaleOptOutNotice", 1);
    m.setFieldValue("usnat", "SaleOptOut", 2);
    m.setFieldValue("usnat", "SharingOptOut", 2);
    m.setFieldValue("usnat", "TargetedAdvertisingOptOut", 2);
    m.setFieldValue("usnat", "MspaCoveredTransaction", 1);
    m.setFieldValue(st, "SaleOptOutNotice", 1);
    m.setFieldValue(st, "SaleOptOut", 1);
    m.setFieldValue(st, "MspaCoveredTransaction", 1);
  }));
  addGPP(`${st} opted out of targeted advertising only`, gpp((m) => {
    m.setFieldValue(st, st === "usca" ? "SharingOptOut" : "TargetedAdvertisingOptOut", 1);
    m.setFieldValue(st, "SaleOptOut", 2);
    m.setFieldValue(st, "MspaCoveredTransaction", 1);
  }));
  addGPP(`${st} not opted out`, gpp((m) => {
    m.setFieldValue(st, "SaleOptOut", 2);
    m.setFieldValue(st, "MspaCoveredTransaction", 1);
  }));
}
const gpcOptIn = gpp((m) => {
  m.setFieldValue("usnat", "SaleOptOut", 2);
  m.setFieldValue("usnat", "SharingOptOut", 2);
  m.setFieldValue("usnat", "TargetedAdvertisingOptOut", 2);
  m.setFieldValue("usnat", "MspaCoveredTransaction", 1);
  m.setFieldValue("usnat", "Gpc", true);
});
addGPP("usnat not opted out, GPC subsection set (GPC wins by default)", gpcOptIn);
addGPP("usnat not opted out, GPC subsection set, gpc_overrides_opt_in false", gpcOptIn, undefined, "signals:\n  gpc_overrides_opt_in: false\n");

// TCF purpose-one treatment (appended so that earlier files keep their
// numbers): the CMP did not ask for purpose 1 consent.
const p1t = (edit) => tc((m) => {
  m.purposeOneTreatment = true;
  m.publisherCountryCode = "DE";
  m.purposeConsents.unset(1);
  return edit && edit(m);
});
addTCF("PurposeOneTreatment=1, purpose 1 consent not asked (0)", p1t());
addTCF("PurposeOneTreatment=1 and purpose 1 consent given", tc((m) => { m.purposeOneTreatment = true; }));
addTCF("PurposeOneTreatment=1, purpose 1 not asked, publisher restriction type 0 on purpose 1", p1t((m) => restrict(m, 1, 0, [V])));
addTCF("PurposeOneTreatment=1, purpose 1 not asked, vendor without consent", p1t((m) => { m.vendorConsents.unset(V); }));
addTCF("PurposeOneTreatment=1, purpose 1 not asked, Disclosed Vendors segment without the vendor", p1t((m) => { m.vendorsDisclosed.unset(V); }));
addGPP("TCF EU v2 section with PurposeOneTreatment=1, purpose 1 not asked", gpp((m) => m.decodeSection("tcfeuv2", p1t())));
console.log(n);
