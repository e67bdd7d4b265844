// gen.js writes the conformance vectors in ../vectors from consent strings
// published in public repositories, decoding every string with the IAB's
// reference decoders (@iabtechlabtcf/core, @iabgpp/cmpapi) and deciding it
// by the rules cited in ../README.md. The tests never run it.
//
//   cd /tmp/enc && npm install @iabtechlabtcf/core@1.5.21 @iabgpp/cmpapi@3.2.0
//   NODE_PATH=/tmp/enc/node_modules node gen.js <mirrors dir> <out dir>
//
// <mirrors dir> holds bare clones named owner+repo/repo.
"use strict";
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");
const { TCString } = require("@iabtechlabtcf/core");
const { GppModel, HeaderV1 } = require("@iabgpp/cmpapi");

const [mirrors, out] = process.argv.slice(2);
function pkgVersion(name) {
  const dir = path.dirname(require.resolve(name));
  for (let d = dir; d !== "/"; d = path.dirname(d)) {
    const f = path.join(d, "package.json");
    if (fs.existsSync(f)) {
      const p = JSON.parse(fs.readFileSync(f));
      if (p.name === name) return p.version;
    }
  }
  return "?";
}
const versions = { tcf: pkgVersion("@iabtechlabtcf/core"), gpp: pkgVersion("@iabgpp/cmpapi") };

function repoFile(repo, file) {
  const dir = path.join(mirrors, repo.replace("/", "+"), "repo");
  const commit = execFileSync("git", ["-C", dir, "rev-parse", "HEAD"]).toString().trim();
  const text = execFileSync("git", ["-C", dir, "show", "HEAD:" + file], { maxBuffer: 1 << 28 }).toString();
  return { repo, path: file, commit, text };
}

function listFiles(repo, re) {
  const dir = path.join(mirrors, repo.replace("/", "+"), "repo");
  return execFileSync("git", ["-C", dir, "ls-tree", "-r", "--name-only", "HEAD"], { maxBuffer: 1 << 28 })
    .toString().split("\n").filter((f) => re.test(f));
}

function lineOf(text, idx) {
  return text.slice(0, idx).split("\n").length;
}

// ---------------------------------------------------------------- policy
const TCF_PURPOSES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const FLEX = [2, 7, 8, 9, 10, 11];
const NO_LI = [1, 3, 4, 5, 6];
const PURPOSES = TCF_PURPOSES.map((n) => "tcf" + n).concat(["ads", "other"]);

// compat: the options that make consentd decide as the references do;
// strict: consentd's defaults.
const COMPAT = {
  min_tcf_policy_version: 2,
  require_service_specific: false,
  disclosed_vendors_required_from: "never",
  gpp_unsupported_sections: "ignore",
  strict_decoding: false,
  tcf_purpose_one_treatment: "allow",
};
const STRICT = {
  min_tcf_policy_version: 4,
  require_service_specific: true,
  disclosed_vendors_required_from: "2026-02-28",
  gpp_unsupported_sections: "reject",
  strict_decoding: true,
  tcf_purpose_one_treatment: "deny",
};

function iabYAML(vendor, opts) {
  const lines = ["iab:", `  vendor_id: ${vendor}`, "  tcf_purposes:"];
  for (const n of TCF_PURPOSES) lines.push(`    tcf${n}: [${n}]`);
  lines.push(`  tcf_flexible_purposes: [${FLEX.join(", ")}]`);
  lines.push("  opt_out_denies: [ads]");
  for (const [k, v] of Object.entries(opts)) {
    if (STRICT[k] !== v) lines.push(`  ${k}: ${typeof v === "string" ? JSON.stringify(v) : v}`);
  }
  return lines.join("\n") + "\n";
}

// ---------------------------------------------------------------- TCF rule
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

function segmentTypes(tc) {
  return tc.split(".").slice(1).map((s) => B64.indexOf(s[0]) >> 3);
}

// tcfDecide decodes a TC string with @iabtechlabtcf/core and decides every
// TCF purpose for vendor under opts: TCF Policies (policy version, service
// specific, Disclosed Vendors of TCF v2.3) and prebid-server's full
// enforcement (gdpr/full_enforcement.go) for the legal basis.
function tcfDecide(tc, vendor, opts) {
  let m;
  try {
    if (B64.indexOf(tc[0]) !== 2) throw new Error("not a TCF v2 string");
    m = TCString.decode(tc);
  } catch (e) {
    return { invalid: true, why: "reference decoder: " + e.message };
  }
  const fails = [];
  if (m.policyVersion < opts.min_tcf_policy_version) fails.push("min_tcf_policy_version");
  if (opts.require_service_specific && !m.isServiceSpecific) fails.push("require_service_specific");
  if (opts.strict_decoding && m.policyVersion >= 4 && [3, 4, 5, 6].some((n) => m.purposeLegitimateInterests.has(n))) fails.push("strict_decoding");
  const hasDV = segmentTypes(tc).includes(1);
  if (!hasDV && opts.disclosed_vendors_required_from !== "never" && m.lastUpdated >= new Date(opts.disclosed_vendors_required_from + "T00:00:00Z"))
    fails.push("disclosed_vendors_required_from");
  if (fails.length) return { invalid: true, why: "TCF policy: " + fails.join(", "), options: fails };
  const disclosed = !hasDV || m.vendorsDisclosed.has(vendor);
  const restr = {};
  for (const r of m.publisherRestrictions.getRestrictions(vendor)) {
    if (restr[r.purposeId] === undefined || r.restrictionType === 0) restr[r.purposeId] = r.restrictionType;
  }
  const allowed = [];
  // PurposeOneTreatment: prebid-server's purpose_one_treatment (enabled,
  // access_allowed by default) establishes purpose 1 whatever the bits.
  const p1t = m.purposeOneTreatment && opts.tcf_purpose_one_treatment === "allow";
  for (const n of TCF_PURPOSES) {
    const flex = FLEX.includes(n);
    const consentOK = m.purposeConsents.has(n) && m.vendorConsents.has(vendor);
    const liOK = flex && !NO_LI.includes(n) && m.purposeLegitimateInterests.has(n) && m.vendorLegitimateInterests.has(vendor);
    let ok;
    switch (restr[n]) {
      case 0: ok = false; break;
      case 1: ok = consentOK; break;
      case 2: ok = liOK; break;
      default: ok = consentOK || liOK;
    }
    if (n === 1 && p1t) ok = true;
    if (disclosed && ok) allowed.push(n);
  }
  return {
    invalid: false,
    allowed,
    options: m.purposeOneTreatment && opts.tcf_purpose_one_treatment !== "allow" ? ["tcf_purpose_one_treatment"] : undefined,
    sf1: m.specialFeatureOptins.has(1),
    decoded: {
      policyVersion: m.policyVersion, isServiceSpecific: m.isServiceSpecific,
      lastUpdated: m.lastUpdated && m.lastUpdated.toISOString().slice(0, 10),
      purposeConsents: [...m.purposeConsents.values ? m.purposeConsents : []].filter((x) => x[1]).map((x) => x[0]),
      purposeLegitimateInterests: [...m.purposeLegitimateInterests].filter((x) => x[1]).map((x) => x[0]),
      vendorConsent: m.vendorConsents.has(vendor), vendorLegitimateInterest: m.vendorLegitimateInterests.has(vendor),
      disclosedVendorsSegment: hasDV, vendorDisclosed: hasDV ? m.vendorsDisclosed.has(vendor) : null,
      publisherRestrictions: restr, specialFeature1: m.specialFeatureOptins.has(1),
    },
  };
}

// tcfOptions lists the options that changed a valid decision's TCF
// sections (a GPP string's res.tcf).
function tcfOptions(d) {
  const o = [...new Set((d.tcf || []).flatMap((t) => t.options || []))];
  return o.length ? o : undefined;
}

function pickVendor(tc) {
  try {
    const m = TCString.decode(tc);
    const r = [];
    m.publisherRestrictions.getAllRestrictions().forEach((pr) => r.push(...m.publisherRestrictions.getVendors(pr)));
    if (r.length) return r[0];
    for (const vec of [m.vendorConsents, m.vendorLegitimateInterests, m.vendorsDisclosed]) {
      for (const [id, on] of vec) if (on) return id;
    }
  } catch (e) {}
  return 1;
}

// ---------------------------------------------------------------- GPP rule
const US_OPTOUT = ["SaleOptOut", "SharingOptOut", "TargetedAdvertisingOptOut"];
const SUPPORTED = new Set([2, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27]);
const SECOND_SEGMENT_SENSITIVE = new Set(["usin", "usky", "usri"]);

// gppDecide decodes a GPP string with @iabgpp/cmpapi and decides it: TCF
// EU (2) as a TC string, US Privacy (6) by its sale opt-out, US sections by
// their sale / sharing / targeted-advertising opt-outs and GPC subsection
// (GPP specification field semantics: 1 = opted out).
function gppDecide(str, vendor, opts, sids) {
  const parts = str.split("~");
  let m, obj, ids;
  try {
    ids = new HeaderV1(parts[0]).getFieldValue("SectionIds");
  } catch (e) {
    return { invalid: true, why: "reference decoder: header: " + e.message };
  }
  try {
    m = new GppModel(str);
    obj = m.toObject();
  } catch (e) {
    // A section the reference cannot decode; unsupported sections are
    // then rejected whatever gpp_unsupported_sections says.
    return { invalid: true, why: "reference decoder: " + e.message, corruptUnsupported: ids.some((id) => !SUPPORTED.has(id)) };
  }
  if (parts.length - 1 !== ids.length) return { invalid: true, why: "reference decoder: header and sections disagree" };
  const res = { invalid: false, optOut: false, optedIn: false, gpc: false, tcf: [], decoded: obj };
  const fails = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    const body = parts[i + 1];
    const applicable = !sids || sids.includes(id);
    if (!SUPPORTED.has(id)) {
      if (opts.gpp_unsupported_sections === "reject") fails.push("gpp_unsupported_sections");
      continue;
    }
    const sec = obj[sectionName(id)];
    if (sec === undefined && id !== 2) return { invalid: true, why: "reference decoder: section " + id + " not decoded" };
    let apply;
    if (id === 2) {
      const d = tcfDecide(body, vendor, opts);
      if (d.invalid && !d.options) return { ...d, why: "section tcfeuv2: " + d.why };
      if (d.invalid && applicable) {
        fails.push(...d.options);
        continue;
      }
      apply = () => res.tcf.push(d);
    } else if (id === 6) {
      if (!/^1[YN-]{3}$/.test(body)) return { invalid: true, why: "section uspv1: not version 1 with Y, N or - (prebid-server ccpa)" };
      apply = () => { if (body[2] === "Y") res.optOut = true; if (body[2] === "N") res.optedIn = true; };
    } else {
      const nm = sectionName(id);
      if (opts.strict_decoding) {
        const v = sec.Version ?? sec.MspaVersion;
        const okVersion = id === 7 ? v === 1 || v === 2 : v === 1;
        let reserved = false;
        for (const [k, val] of Object.entries(sec)) {
          if (/Version$|^Gpc/.test(k)) continue;
          if (k === "SensitiveDataProcessing" && SECOND_SEGMENT_SENSITIVE.has(nm)) continue;
          for (const x of [].concat(val)) if (x === 3) reserved = true;
        }
        if (!okVersion || reserved) fails.push("strict_decoding");
      }
      apply = () => {
        let out = false, inn = false;
        for (const f of US_OPTOUT) {
          if (sec[f] === 1) out = true;
          if (sec[f] === 2) inn = true;
        }
        if (out) res.optOut = true;
        if (inn && !out) res.optedIn = true;
        if (sec.Gpc === true && !SECOND_SEGMENT_SENSITIVE.has(nm)) res.gpc = true;
      };
    }
    if (applicable) apply();
  }
  if (fails.length) return { invalid: true, why: "consentd option: " + [...new Set(fails)].join(", "), options: [...new Set(fails)] };
  return res;
}

const SECTION_NAMES = { 2: "tcfeuv2", 5: "tcfcav1", 6: "uspv1", 7: "usnat", 8: "usca", 9: "usva", 10: "usco", 11: "usut", 12: "usct", 13: "usfl", 14: "usmt", 15: "usor", 16: "ustx", 17: "usde", 18: "usia", 19: "usne", 20: "usnh", 21: "usnj", 22: "ustn", 23: "usmn", 24: "usmd", 25: "usin", 26: "usky", 27: "usri" };
function sectionName(id) { return SECTION_NAMES[id]; }

// ---------------------------------------------------------------- vectors
const vectors = [];
const seen = new Set();

function expectFromTCF(d) {
  if (d.invalid) return { invalid: true };
  return { withheld: TCF_PURPOSES.filter((n) => !d.allowed.includes(n)).map((n) => "tcf" + n), coarse_geo: !d.sf1 };
}

function expectFromGPP(d) {
  if (d.invalid) return { invalid: true };
  const withheld = new Set();
  let coarse = false;
  for (const t of d.tcf) {
    for (const n of TCF_PURPOSES) if (!t.allowed.includes(n)) withheld.add("tcf" + n);
    if (!t.sf1) coarse = true;
  }
  if (d.optOut || d.gpc) withheld.add("ads");
  return { withheld: PURPOSES.filter((p) => withheld.has(p)), coarse_geo: coarse };
}

function addTCF(src, tc, note) {
  const key = "tcf:" + tc;
  if (seen.has(key)) return;
  seen.add(key);
  const vendor = pickVendor(tc);
  const ref = tcfDecide(tc, vendor, COMPAT);
  const def = tcfDecide(tc, vendor, STRICT);
  const runs = [{ name: "reference", policy: iabYAML(vendor, COMPAT), expect: expectFromTCF(ref), why: ref.why }];
  if (JSON.stringify(expectFromTCF(def)) !== JSON.stringify(expectFromTCF(ref)))
    runs.push({ name: "default", policy: iabYAML(vendor, STRICT), expect: expectFromTCF(def), why: def.why, options: def.options });
  vectors.push({
    kind: "tcf", source: { repo: src.repo, path: src.path, commit: src.commit, note }, string: tc,
    reference: `@iabtechlabtcf/core ${versions.tcf} decode; TCF Policies and prebid-server full enforcement (vendor ${vendor}, flexible purposes ${FLEX.join(",")})`,
    decoded: ref.decoded, purposes: PURPOSES,
    event: { userId: "u", context: { tcString: tc } }, runs,
  });
}

function addGPP(src, str, note, sids) {
  const key = "gpp:" + str + ":" + (sids || "");
  if (seen.has(key)) return;
  seen.add(key);
  let vendor = 1;
  const tcPart = str.split("~").find((p) => p.startsWith("C"));
  if (tcPart) vendor = pickVendor(tcPart);
  let compat = COMPAT;
  let ref = gppDecide(str, vendor, COMPAT, sids);
  if (ref.corruptUnsupported) compat = { ...COMPAT, gpp_unsupported_sections: "reject" };
  const def = gppDecide(str, vendor, STRICT, sids);
  const runs = [{ name: "reference", policy: iabYAML(vendor, compat), expect: expectFromGPP(ref), why: ref.why }];
  if (JSON.stringify(expectFromGPP(def)) !== JSON.stringify(expectFromGPP(ref)))
    runs.push({ name: "default", policy: iabYAML(vendor, STRICT), expect: expectFromGPP(def), why: def.why, options: def.options || tcfOptions(def) });
  const ctx = { gppString: str };
  if (sids) ctx.gpp_sid = sids;
  vectors.push({
    kind: "gpp", source: { repo: src.repo, path: src.path, commit: src.commit, note }, string: str,
    reference: `@iabgpp/cmpapi ${versions.gpp} GppModel decode; GPP specification field semantics (opt-out = 1, GPC subsection), TCF section as a TC string`,
    decoded: ref.invalid ? undefined : ref.decoded, purposes: PURPOSES, event: { userId: "u", context: ctx }, runs,
  });
}

function addUSP(src, s, note) {
  const key = "usp:" + s;
  if (seen.has(key)) return;
  seen.add(key);
  const valid = s === "" || /^1[YN-]{3}$/.test(s);
  const expect = valid ? { withheld: s[2] === "Y" ? ["ads"] : [] } : { invalid: true };
  vectors.push({
    kind: "usp", source: { repo: src.repo, path: src.path, commit: src.commit, note }, string: s,
    reference: "prebid-server privacy/ccpa/parsedpolicy.go parseConsent (IAB US Privacy String specification)",
    purposes: ["ads", "other"], event: { userId: "u", context: { us_privacy: s } },
    runs: [{ name: "reference", policy: "iab:\n  opt_out_denies: [ads]\n", expect }],
  });
}

// ---------------------------------------------------------------- sources
const TC_RE = /["'`](C[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9_-]+)*)["'`]/g;
const GPP_RE = /["'`](DBA[A-Za-z0-9_-]*(?:[.~][A-Za-z0-9_-]*)*)["'`]/g;
const SECTION_CALL_RE = /(?:new Us\w+|new Usp\w+|new TcfEuV2|\.decode|decodeSection\(\s*["'`]\w+["'`],|\.equal|assertEquals)\(\s*["'`]([A-Za-z0-9_.-]+)["'`]/g;

function scan(src, re, fn) {
  for (const m of src.text.matchAll(re)) fn(m[1], `line ${lineOf(src.text, m.index)}`);
}

function sectionVectors(src, name) {
  scan(src, SECTION_CALL_RE, (body, where) => {
    if (/^(true|false)$/.test(body)) return;
    if (name === "tcfeuv2") {
      addTCF(src, body, where);
    }
    if (name === "uspv1") addUSP(src, body, where);
    // Wrap the section with a header written by the reference encoder.
    let header;
    try {
      const e = new GppModel();
      e.setFieldValue(name, fieldFor(name), valueFor(name));
      header = e.encode().split("~")[0];
    } catch (e) {
      return;
    }
    addGPP(src, header + "~" + body, where + " (section " + name + ", header by @iabgpp/cmpapi)");
  });
}

function fieldFor(name) {
  if (name === "uspv1") return "Notice";
  if (name === "tcfeuv2" || name === "tcfcav1") return "CmpId";
  return "MspaCoveredTransaction";
}
function valueFor(name) {
  if (name === "uspv1") return "Y";
  if (name === "tcfeuv2" || name === "tcfcav1") return 1;
  return 1;
}

const SECTION_FILE = /(?:section\/|encoder\/section\/)(HeaderV1|TcfCaV1|TcfEuV2|Usp?V1|Us[A-Z][a-z]+|UspV1)(?:Test\.java|\.test\.ts)$/;

function run() {
  // IAB Tech Lab GPP reference libraries.
  for (const repo of ["IABTechLab/iabgpp-java", "IABTechLab/iabgpp-es"]) {
    for (const f of listFiles(repo, /test.*(GppModel|section\/\w+)(Test\.java|\.test\.ts)$/)) {
      const src = repoFile(repo, f);
      scan(src, GPP_RE, (s, where) => addGPP(src, s, where));
      const m = SECTION_FILE.exec(f);
      if (m && m[1] !== "HeaderV1") sectionVectors(src, m[1].toLowerCase());
      scan(src, TC_RE, (s, where) => addTCF(src, s, where));
    }
  }
  // IAB TCF reference library.
  for (const f of listFiles("InteractiveAdvertisingBureau/iabtcf-es", /modules\/(core|cmpapi)\/test\/.*\.test\.ts$/)) {
    const src = repoFile("InteractiveAdvertisingBureau/iabtcf-es", f);
    scan(src, TC_RE, (s, where) => addTCF(src, s, where));
  }
  // prebid-server and prebid's Go decoders.
  for (const f of ["gdpr/full_enforcement_test.go", "gdpr/impl_test.go", "gdpr/basic_enforcement_test.go", "gdpr/consent_parser_test.go", "privacy/ccpa/policy_test.go", "endpoints/cookie_sync_test.go", "endpoints/setuid_test.go", "exchange/utils_test.go"]) {
    const src = repoFile("prebid/prebid-server", f);
    scan(src, TC_RE, (s, where) => addTCF(src, s, where));
    scan(src, GPP_RE, (s, where) => addGPP(src, s, where));
  }
  {
    const src = repoFile("prebid/prebid-server", "privacy/ccpa/parsedpolicy_test.go");
    scan(src, /consent:\s+"([^"]*)"/g, (s, where) => addUSP(src, s, where));
  }
  for (const f of listFiles("prebid/go-gpp", /_test\.go$/)) {
    const src = repoFile("prebid/go-gpp", f);
    scan(src, GPP_RE, (s, where) => addGPP(src, s, where));
  }
  for (const f of listFiles("prebid/go-gdpr", /tcf2\/.*_test\.go$/)) {
    const src = repoFile("prebid/go-gdpr", f);
    scan(src, TC_RE, (s, where) => addTCF(src, s, where));
  }
  for (const f of listFiles("LiveRamp/iabconsent", /(v2_parsed_consent|gpp_parsed_consent|mspa_parsed_consent)_fixture_test\.go$/)) {
    const src = repoFile("LiveRamp/iabconsent", f);
    scan(src, TC_RE, (s, where) => addTCF(src, s, where));
    scan(src, GPP_RE, (s, where) => addGPP(src, s, where));
  }
  // gpp_sid: the applicable sections of multi-section strings.
  for (const v of vectors.slice()) {
    if (v.kind !== "gpp" || v.runs[0].expect.invalid || v.event.context.gpp_sid) continue;
    const parts = v.string.split("~");
    if (parts.length < 3) continue;
    const ids = new HeaderV1(parts[0]).getFieldValue("SectionIds");
    addGPP(v.source, v.string, v.source.note + ", gpp_sid [" + ids[ids.length - 1] + "]", [ids[ids.length - 1]]);
  }
  fs.mkdirSync(out, { recursive: true });
  const counts = {};
  for (const v of vectors) {
    const short = v.source.repo.split("/")[1];
    counts[v.kind + " " + v.source.repo] = (counts[v.kind + " " + v.source.repo] || 0) + 1;
    const n = String(counts[v.kind + " " + v.source.repo]).padStart(3, "0");
    fs.writeFileSync(path.join(out, `${v.kind}-${short}-${n}.json`), JSON.stringify(v, null, 1) + "\n");
  }
  console.log(counts, vectors.length);
}

if (require.main === module) run();
module.exports = { tcfDecide, gppDecide, tcfOptions, iabYAML, COMPAT, STRICT, PURPOSES, versions };
