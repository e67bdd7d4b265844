package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var mapping = Mapping{
	Purposes: []string{"personalization", "analytics", "advertising"},
	Categories: map[string]string{
		"Personalization": "personalization",
		"Analytics":       "analytics",
		"Advertising":     "advertising",
		"Marketing":       "advertising", // two categories feed one purpose
		"C0002":           "analytics",
	},
}

func TestParse(t *testing.T) {
	msgTime := time.UnixMilli(1732280000123)
	tests := []struct {
		name    string
		in      string
		format  Format
		subject string
		version int64
		granted []string
		expires string
	}{
		{"native", `{"subject":"u1","purposes":{"personalization":true,"analytics":false},"version":1732280000000,"source":"cmp","expires_at":"2027-01-01T00:00:00Z"}`,
			Native, "u1", 1732280000000, []string{"personalization"}, "2027-01-01T00:00:00Z"},
		{"segment", `{"type":"track","event":"Segment Consent Preference Updated","userId":"u2","timestamp":"2026-11-22T10:00:00.5Z","context":{"consent":{"categoryPreferences":{"Personalization":true,"Analytics":true,"C0002":true,"Advertising":true,"Marketing":false}}}}`,
			Segment, "u2", time.Date(2026, 11, 22, 10, 0, 0, 5e8, time.UTC).UnixMilli(), []string{"personalization", "analytics"}, ""},
		{"segment anonymous, message time", `{"type":"track","event":"Segment Consent Preference Updated","anonymousId":"a3","context":{"consent":{"categoryPreferences":{"Advertising":true,"Marketing":true}}}}`,
			Segment, "a3", 1732280000123, []string{"advertising"}, ""},
		{"rudderstack and", `{"type":"track","userId":"u4","originalTimestamp":"2026-11-22T10:00:00Z","context":{"consentManagement":{"provider":"oneTrust","allowedConsentIds":["C0002","Analytics","Advertising"],"deniedConsentIds":["Marketing"],"resolutionStrategy":"and"}}}`,
			RudderStack, "u4", time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixMilli(), []string{"personalization", "analytics"}, ""},
		{"rudderstack or", `{"type":"track","userId":"u5","timestamp":"2026-11-22T10:00:00Z","context":{"consentManagement":{"allowedConsentIds":["Advertising"],"deniedConsentIds":["Marketing"],"resolutionStrategy":"or"}}}`,
			RudderStack, "u5", time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixMilli(), []string{"personalization", "analytics", "advertising"}, ""},
		{"rudderstack denied wins", `{"userId":"u6","timestamp":"2026-11-22T10:00:00Z","context":{"consentManagement":{"allowedConsentIds":["Analytics","C0002"],"deniedConsentIds":["C0002"]}}}`,
			RudderStack, "u6", time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixMilli(), []string{"personalization", "advertising"}, ""},
		{"rudderstack allowedConsentIds object, unknown strategy is and", `{"userId":"u7","timestamp":"2026-11-22T10:00:00Z","context":{"consentManagement":{"allowedConsentIds":{"C0002":"Performance"},"deniedConsentIds":["Marketing"],"resolutionStrategy":"xor"}}}`,
			RudderStack, "u7", time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixMilli(), []string{"personalization", "analytics"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := Parse([]byte(tt.in), msgTime, mapping)
			if err != nil {
				t.Fatal(err)
			}
			if u.Format != tt.format || u.Subject != tt.subject || u.Version != tt.version {
				t.Fatalf("got %s %q v%d", u.Format, u.Subject, u.Version)
			}
			var granted []string
			for _, p := range mapping.Purposes {
				if u.Purposes[p] {
					granted = append(granted, p)
				}
			}
			if strings.Join(granted, ",") != strings.Join(tt.granted, ",") {
				t.Fatalf("granted %v, want %v (%s)", granted, tt.granted, u.Summary())
			}
			if tt.expires != "" && u.Expires.UTC().Format(time.RFC3339) != tt.expires {
				t.Fatalf("expires %v", u.Expires)
			}
			if strings.Contains(u.Summary(), tt.subject) {
				t.Fatalf("summary names the subject: %s", u.Summary())
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not json":                 `{"subject":`,
		"no format":                `{"type":"track","userId":"u"}`,
		"empty subject":            `{"subject":"","purposes":{"analytics":true},"version":1}`,
		"no version":               `{"subject":"u","purposes":{"analytics":true}}`,
		"fractional version":       `{"subject":"u","purposes":{"analytics":true},"version":1.5}`,
		"negative version":         `{"subject":"u","purposes":{"analytics":true},"version":-1}`,
		"unknown purpose":          `{"subject":"u","purposes":{"dancing":true},"version":1}`,
		"purpose not boolean":      `{"subject":"u","purposes":{"analytics":"yes"},"version":1}`,
		"null purpose":             `{"subject":"u","purposes":{"analytics":null},"version":1}`,
		"bad expiry":               `{"subject":"u","purposes":{"analytics":true},"version":1,"expires_at":"tomorrow"}`,
		"segment wrong event":      `{"event":"Order Completed","userId":"u","context":{"consent":{"categoryPreferences":{"Analytics":true}}}}`,
		"segment no subject":       `{"event":"Segment Consent Preference Updated","context":{"consent":{"categoryPreferences":{"Analytics":true}}}}`,
		"segment bad time":         `{"event":"Segment Consent Preference Updated","userId":"u","timestamp":"noon","context":{"consent":{"categoryPreferences":{"Analytics":true}}}}`,
		"rudder denied not a list": `{"userId":"u","timestamp":"2026-11-22T10:00:00Z","context":{"consentManagement":{"deniedConsentIds":"Analytics"}}}`,
		"rudder not an object":     `{"userId":"u","timestamp":"2026-11-22T10:00:00Z","context":{"consentManagement":["Analytics"]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(in), time.Time{}, mapping)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if strings.Contains(err.Error(), `"u"`) {
				t.Fatalf("error names the subject: %v", err)
			}
		})
	}
}
