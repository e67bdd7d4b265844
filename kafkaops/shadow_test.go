package kafkaops

import (
	"strings"
	"testing"
)

func TestShadowReportHidesKeysThatMayBePersonal(t *testing.T) {
	for in, want := range map[string]string{
		"":                             "",
		"properties.title":             "properties.title",
		"traits.alice@example.com":     "traits.[key]",
		"properties.4111111111111111":  "properties.[key]",
		"a.sku123456":                  "a.[key]",
		"a.sku-12345.b":                "a.sku-12345.b",
		"x." + strings.Repeat("k", 65): "x.[key]",
	} {
		if got := safePath(in); got != want {
			t.Errorf("safePath(%q) = %q, want %q", in, got, want)
		}
	}
}
