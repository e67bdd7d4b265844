package policy

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/LiveRamp/iabconsent"
)

// GPP sections consentd decides (GPP specification section ids).
const (
	gppTCFEUv2 = 2
	gppUSPv1   = 6
)

// usSection describes the core segment of a GPP US section as the IAB's
// reference decoders (iabgpp-es, iabgpp-java) read it: a 6-bit version
// followed by two-bit fields. Only the fields consentd decides on are
// named, by their index among the two-bit fields (-1: absent).
type usSection struct {
	name string
	// fields is the number of two-bit fields.
	fields                  int
	sale, sharing, targeted int
	// gpcSegment: a second segment is the GPC subsection (usin, usky and
	// usri carry sensitive-data consents there instead).
	gpcSegment bool
}

// usSections is indexed by GPP section id. Field layouts follow
// iabgpp-es v3.2 (see the README, "IAB strings").
var usSections = map[int]usSection{
	7:  {"usnat", 32, 6, 7, 8, true}, // 16 sensitive-data fields, 3 known-child (see decodeUSNat)
	8:  {"usca", 20, 3, 4, -1, true},
	9:  {"usva", 17, 3, -1, 4, false},
	10: {"usco", 16, 3, -1, 4, true},
	11: {"usut", 18, 4, -1, 5, false},
	12: {"usct", 19, 3, -1, 4, true},
	13: {"usfl", 20, 3, -1, 4, false},
	14: {"usmt", 20, 3, -1, 4, true},
	15: {"usor", 23, 3, -1, 4, true},
	16: {"ustx", 18, 3, -1, 4, true},
	17: {"usde", 23, 3, -1, 4, true},
	18: {"usia", 18, 4, -1, 5, true},
	19: {"usne", 18, 3, -1, 4, true},
	20: {"usnh", 20, 3, -1, 4, true},
	21: {"usnj", 24, 3, -1, 4, true},
	22: {"ustn", 18, 3, -1, 4, true},
	23: {"usmn", 18, 3, -1, 4, true},
	24: {"usmd", 8, 5, -1, 6, true},
	25: {"usin", 9, 5, -1, 6, false},
	26: {"usky", 9, 5, -1, 6, false},
	27: {"usri", 9, 5, -1, 6, false},
}

// gppSectionName names a section id for messages and explanations.
func gppSectionName(id int) string {
	switch id {
	case gppTCFEUv2:
		return "tcfeuv2"
	case gppUSPv1:
		return "uspv1"
	case 5:
		return "tcfcav1"
	}
	if s, ok := usSections[id]; ok {
		return s.name
	}
	return fmt.Sprintf("section %d", id)
}

// decodeBits base64url-decodes a GPP segment keeping every bit: it
// returns the bytes (zero-padded) and the number of bits the text holds.
func decodeBits(s string) ([]byte, int, error) {
	n := len(s) * 6
	if r := len(s) % 4; r != 0 {
		s += strings.Repeat("A", 4-r)
	}
	b, err := base64.URLEncoding.WithPadding(base64.NoPadding).DecodeString(s)
	if err != nil {
		return nil, 0, fmt.Errorf("not base64url")
	}
	return b, n, nil
}

// usOptOut is what a US section says.
type usOptOut struct {
	optedOut, optedIn, gpc bool
	// mspa: the MSPA and notice fields decided (sections 7 to 12).
	mspa mspaDecision
}

// decodeUS reads a GPP US section (its core segment and, where the
// section has one, the GPC subsection).
func decodeUS(id int, body string, strict bool) (usOptOut, error) {
	sec := usSections[id]
	segs := strings.Split(body, ".")
	b, nbits, err := decodeBits(segs[0])
	if err != nil {
		return usOptOut{}, err
	}
	r := iabconsent.NewConsentReader(b)
	version, _ := r.ReadInt(6)
	fields := sec.fields
	sale, sharing, targeted := sec.sale, sec.sharing, sec.targeted
	if id == 7 && (nbits == 60 || nbits == 66) {
		// usnat written before the 16 sensitive-data fields: 12 and 2 known
		// child fields, which the reference decoders widen by position.
		fields = 27
	}
	if strict && (version < 1 || (id == 7 && version > 2) || (id != 7 && version > 1)) {
		return usOptOut{}, fmt.Errorf("unknown version %d", version)
	}
	if nbits < 6+2*fields {
		return usOptOut{}, fmt.Errorf("%d bits, want %d", nbits, 6+2*fields)
	}
	vals := make([]int, fields)
	for i := range vals {
		vals[i], _ = r.ReadInt(2)
		if strict && vals[i] == 3 {
			return usOptOut{}, fmt.Errorf("reserved value 3 in field %d", i+1)
		}
	}
	if r.Err != nil {
		return usOptOut{}, r.Err
	}
	var out usOptOut
	for _, i := range []int{sale, sharing, targeted} {
		if i < 0 {
			continue
		}
		switch vals[i] {
		case 1:
			out.optedOut = true
		case 2:
			out.optedIn = true
		}
	}
	if sec.gpcSegment && len(segs) > 1 {
		sub, err := iabconsent.ParseGppSubSections(segs[1:])
		if err != nil {
			return usOptOut{}, fmt.Errorf("GPC subsection: %v", err)
		}
		out.gpc = sub.Gpc
	} else {
		for _, s := range segs[1:] {
			if _, _, err := decodeBits(s); err != nil {
				return usOptOut{}, err
			}
		}
	}
	switch {
	case id == 7:
		// Fields by position as the reference decoders read them (the
		// layout follows the length); lists as long as the version has
		// them (12 sensitive-data categories and 2 known-child fields in
		// version 1).
		layout := usnatLayout(16, 3)
		if fields == 27 {
			layout = usnatLayout(12, 2)
		}
		v := readUSFields(layout, vals)
		if version == 1 {
			v[fSensitive] = v[fSensitive][:min(12, len(v[fSensitive]))]
			v[fChild] = v[fChild][:min(2, len(v[fChild]))]
		}
		out.mspa = decideMSPA(v, version, out.gpc)
	case usLayouts[id] != nil:
		out.mspa = decideMSPA(normalizeState(id, readUSFields(usLayouts[id], vals)), 1, out.gpc)
	}
	return out, nil
}

// applyGPP decides a GPP string: its header, then every section it holds,
// each decoded (a corrupt section makes the whole string invalid) and, when
// the event lists its applicable sections (gpp_sid), applied only if
// listed.
func (ip *iabPolicy) applyGPP(s, path string, haveSID bool, sids []int, sink *signalSink) error {
	where := "GPP string at " + path
	parts := strings.Split(s, "~")
	h := parts[0]
	if len(h)%4 == 0 {
		// ParseGppHeader appends one "A" to keep the last bits; a header of
		// 4n characters then is not valid base64. Two more zero bits keep
		// its meaning.
		h += "A"
	}
	hdr, err := iabconsent.ParseGppHeader(h)
	if err != nil {
		return invalidConsentString("%s: header: %v", where, err)
	}
	if len(parts)-1 != len(hdr.Sections) {
		return invalidConsentString("%s: header lists %d sections, string holds %d", where, len(hdr.Sections), len(parts)-1)
	}
	type decided struct {
		id    int
		apply func() error
	}
	var todo []decided
	for i, id := range hdr.Sections {
		body := parts[i+1]
		secWhere := fmt.Sprintf("%s: section %s (%d)", where, gppSectionName(id), id)
		if body == "" {
			return invalidConsentString("%s: empty", secWhere)
		}
		switch {
		case id == gppTCFEUv2:
			c, err := ip.parseTC(body)
			if err != nil {
				return invalidConsentString("%s: %v", secWhere, err)
			}
			todo = append(todo, decided{id, func() error { return ip.applyTCF(c, "gpp", secWhere, sink) }})
		case id == gppUSPv1:
			todo = append(todo, decided{id, func() error { return ip.applyUSP(body, "gpp", secWhere, sink) }})
		default:
			if _, ok := usSections[id]; !ok {
				if ip.gppIgnoreOther {
					continue
				}
				return invalidConsentString("%s: not supported (iab.gpp_unsupported_sections: reject)", secWhere)
			}
			us, err := decodeUS(id, body, ip.strict)
			if err != nil {
				return invalidConsentString("%s: %v", secWhere, err)
			}
			todo = append(todo, decided{id, func() error {
				denied := us.optedOut || us.mspa.denied
				sink.withhold("gpp", func(pu string) bool {
					return (!denied || ip.optOut(pu)) && (!us.mspa.sensitive || ip.sensitiveOK(pu))
				})
				if us.mspa.geo {
					sink.coarseGeo = true
				}
				sink.optedIn = sink.optedIn || (us.optedIn && !denied)
				sink.gpc = sink.gpc || us.gpc
				return nil
			}})
		}
	}
	for _, d := range todo {
		if haveSID && !slices.Contains(sids, d.id) {
			continue
		}
		if err := d.apply(); err != nil {
			return err
		}
	}
	if len(todo) == 0 {
		sink.withhold("gpp", allowAll)
	}
	return nil
}
