package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/consentd/consentd/event"
)

// SignalSummary explains, for consentd policy check, which consent signals
// carried by events can withhold each purpose and on which legal basis.
// Signals only ever withhold: the stored record must grant a purpose too.
func (p *Policy) SignalSummary() string {
	var b strings.Builder
	b.WriteString("consent signals carried by events (each can only withhold a purpose; the stored record must grant it):\n")
	ip := p.iab
	if ip != nil {
		fmt.Fprintf(&b, "  TC strings at %s: TCF policy version >= %d", pathList(ip.tcfPaths), ip.minVersion)
		if ip.serviceSpecific {
			b.WriteString(", service-specific only")
		}
		if !ip.dvFrom.IsZero() {
			fmt.Fprintf(&b, ", Disclosed Vendors segment required from %s", ip.dvFrom.Format("2006-01-02"))
		}
		b.WriteString("; GPP strings at " + pathList(ip.gppPaths) + " (applicable sections from " + pathList(ip.gppSIDPaths) + ")")
		if ip.gppIgnoreOther {
			b.WriteString(", unsupported sections ignored")
		} else {
			b.WriteString(", unsupported sections rejected")
		}
		b.WriteString("; US Privacy strings at " + pathList(ip.uspPaths) + "\n")
	}
	for _, pu := range p.Purposes {
		var lines []string
		var cats []string
		for c, q := range p.ConsentCategories {
			if q == pu {
				cats = append(cats, c)
			}
		}
		slices.Sort(cats)
		if len(cats) > 0 {
			lines = append(lines, fmt.Sprintf("Segment categoryPreferences %s (consent: every one true)", strings.Join(cats, ", ")))
			rule := "a denied id withholds (\"and\"), all denied for \"or\""
			if p.CMP.RudderRequireAllowed {
				rule += "; every id must also be allowed"
			}
			lines = append(lines, fmt.Sprintf("RudderStack consent ids %s (consent: %s)", strings.Join(cats, ", "), rule))
		}
		if ip != nil {
			if ids := ip.tcfPurposes[pu]; len(ids) > 0 {
				var parts []string
				for _, id := range ids {
					basis := "consent"
					switch {
					case slices.Contains(ip.flex, id):
						basis = "consent or legitimate interest (flexible)"
					case slices.Contains(ip.li, id):
						basis = "legitimate interest"
					}
					parts = append(parts, fmt.Sprintf("%d on %s", id, basis))
				}
				lines = append(lines, fmt.Sprintf("TCF vendor %d, purposes %s; publisher restrictions and Disclosed Vendors applied (TC strings and GPP section 2)", ip.vendor, strings.Join(parts, ", ")))
			}
			if slices.Contains(ip.optOutDenies, pu) {
				lines = append(lines, "opt-out of sale, sharing or targeted advertising: US Privacy, GPP sections 6 to 27 and their GPC subsection")
			}
		}
		if slices.Contains(p.GPCDenies, pu) {
			lines = append(lines, "Global Privacy Control at "+pathList(p.GPCPaths)+" (opt-out)")
		}
		if p.signals != nil {
			if types := p.signals.gcm[pu]; len(types) > 0 {
				lines = append(lines, fmt.Sprintf("Google Consent Mode at %s: %s granted (consent)", pathList(p.signals.gcmPaths), strings.Join(types, ", ")))
			}
		}
		fmt.Fprintf(&b, "- %s:", pu)
		if len(lines) == 0 {
			b.WriteString(" no signal can withhold it (the stored record decides)\n")
			continue
		}
		b.WriteString("\n")
		for _, l := range lines {
			b.WriteString("    " + l + "\n")
		}
	}
	if p.signals != nil && !p.signals.gpcOverrides {
		b.WriteString("GPC yields to an explicit \"did not opt out\" on the same event (signals.gpc_overrides_opt_in: false)\n")
	}
	return b.String()
}

func pathList(ps []event.Path) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
