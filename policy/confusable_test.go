package policy

import (
	"strings"
	"testing"
)

func TestConfusableKeysAreDeadLettered(t *testing.T) {
	p := compileYAML(t, `  - name: o
    topic: c.o
    require: [personalization]
    transforms:
      - drop_fields: [context.userAgent, properties.email, "context.*.advertisingId"]
      - pseudonymize: {fields: [userId, anonymousId]}
      - truncate_ip: {fields: [context.ip]}
`)
	tests := []struct {
		name, ev, reason string
	}{
		{"exact keys pass", `{"userId":"u","context":{"ip":"1.2.3.4","userAgent":"UA"},"properties":{"email":"e"}}`, ""},
		{"case: UserId", `{"userId":"u","UserId":"v"}`, ReasonConfusableKey},
		{"case alone: UserId without userId", `{"anonymousId":"a","UserId":"v"}`, ReasonConfusableKey},
		{"case: context.IP", `{"userId":"u","context":{"IP":"1.2.3.4"}}`, ReasonConfusableKey},
		{"case: context.UserAgent", `{"userId":"u","context":{"UserAgent":"UA"}}`, ReasonConfusableKey},
		{"case in the parent: Context.ip", `{"userId":"u","Context":{"ip":"1.2.3.4"}}`, ReasonConfusableKey},
		{"fullwidth userId", `{"anonymousId":"a","ｕｓｅｒＩｄ":"v"}`, ReasonConfusableKey},
		{"escaped fullwidth", `{"anonymousId":"a","\uff55serId":"v"}`, ReasonConfusableKey},
		{"trailing space", `{"anonymousId":"a","userId ":"v"}`, ReasonConfusableKey},
		{"leading no-break space", `{"anonymousId":"a","\u00a0userId":"v"}`, ReasonConfusableKey},
		{"zero-width space inside", `{"userId":"u","properties":{"e\u200bmail":"x"}}`, ReasonConfusableKey},
		{"soft hyphen inside", `{"userId":"u","properties":{"em\u00adail":"x"}}`, ReasonConfusableKey},
		{"mathematical bold letters", `{"userId":"u","properties":{"𝐞𝐦𝐚𝐢𝐥":"x"}}`, ReasonConfusableKey},
		{"Kelvin sign folds to k? not in any segment", `{"userId":"u","properties":{"\u212a":"x"}}`, ""},
		{"under a wildcard", `{"userId":"u","context":{"device":{"AdvertisingId":"ad"}}}`, ReasonConfusableKey},
		{"dotless i is not i", `{"userId":"u","context":{"ıp":"1"}}`, ""},
		{"unnamed level: case is free", `{"userId":"u","properties":{"Sku":"a","sku":"b"}}`, ""},
		{"confusable with a subject path only", `{"userId":"u","AnonymousID":"x"}`, ReasonConfusableKey},
		{"confusable with a filter field", `{"userId":"u","Type":"track"}`, ReasonConfusableKey},
		{"confusable timestamp", `{"userId":"u","TimeStamp":"2026-01-01T00:00:00Z"}`, ReasonConfusableKey},
		{"inside arrays paths never go", `{"userId":"u","items":[{"UserId":"x"}]}`, ""},
		{"NUL in a key", `{"userId":"u","email\u0000":"x"}`, ReasonInvalidKey},
		{"lone surrogate in a key", `{"userId":"u","\udc00email":"x"}`, ReasonInvalidKey},
		{"duplicate where no path goes", `{"userId":"u","properties":{"user":{"email":"x","email":"y"}}}`, ReasonDuplicateKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decide(t, p, tt.ev, granted(1, "personalization"))
			if tt.reason == "" {
				if err != nil || !d.Outputs[0].Write {
					t.Fatalf("err %v, decision %+v", err, d)
				}
				return
			}
			wantInputError(t, err, tt.reason)
			if strings.Contains(err.Error(), "serId") || strings.Contains(err.Error(), "mail") {
				t.Fatalf("error quotes the key: %v", err)
			}
		})
	}
}
