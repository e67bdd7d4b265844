// A minimal Global Vendor List for the reference encoder: vendor 10
// declares purposes 1..11 under consent, 2 and 7..11 also flexible, and
// special feature 1; vendors 11 and 12 the same.
"use strict";
const { GVL } = require("@iabtechlabtcf/core");

function gvl() {
  const purposes = {};
  for (let i = 1; i <= 11; i++) purposes[i] = { id: i, name: "p" + i, description: "", illustrations: [] };
  const vendor = (id) => ({
    id, name: "v" + id, purposes: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], legIntPurposes: [],
    flexiblePurposes: [2, 7, 8, 9, 10, 11], specialPurposes: [], features: [], specialFeatures: [1],
    policyUrl: "https://example.com", usesCookies: false, cookieRefresh: false, usesNonCookieAccess: false,
  });
  return new GVL({
    gvlSpecificationVersion: 3, vendorListVersion: 100, tcfPolicyVersion: 5, lastUpdated: "2026-01-01T00:00:00Z",
    purposes, specialPurposes: {}, features: {}, specialFeatures: { 1: { id: 1, name: "geo", description: "", illustrations: [] } },
    stacks: {}, dataCategories: {}, vendors: { 10: vendor(10), 11: vendor(11), 12: vendor(12) },
  });
}
module.exports = { gvl };
