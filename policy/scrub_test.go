package policy

import (
	"strings"
	"testing"
)

func TestScrubTransform(t *testing.T) {
	tests := []struct {
		name, transforms, ev, want, actions string
	}{
		{"values, nested, arrays, keys",
			`[{keep_only: [userId, properties, context.page]}, {pseudonymize: {fields: [userId]}}, {scrub: {}}]`,
			`{"userId":"u-42","anonymousId":"anon-7","properties":{"user":{"email":"carol@example.com"},"items":[{"email":"dave@example.com","sku":"s1"}],"alice@example.com":true,"note":"ref u-42 and anon-7","product_id":"u-42"},"context":{"page":{"url":"https://s.example/users/u-42/orders?email=carol%40example.com&utm_source=nl#f","path":"/users/u-42/orders","search":"?q=bob%40example.com"}}}`,
			`{"userId":"PSEUDO","properties":{"user":{"email":"[email]"},"items":[{"email":"[email]","sku":"s1"}],"[email]#2":true,"note":"ref [id] and [id]","product_id":"[id]"},"context":{"page":{"url":"https://s.example/users/[id]/orders?utm_source=nl","path":"/users/[id]/orders","search":""}}}`,
			"keep_only:$(1 removed),pseudonymize:userId,scrub:context.page.url(3 replaced: id),scrub:context.page.path(1 replaced: id),scrub:context.page.search(1 replaced),scrub:*(6 replaced: email,id)"},
		{"already transformed values are left alone",
			`[{truncate_ip: {}}, {scrub: {}}]`,
			`{"userId":"u1","context":{"ip":"203.0.113.77","note":"from 203.0.113.77"}}`,
			`{"userId":"u1","context":{"ip":"203.0.113.0","note":"from [ip]"}}`,
			"truncate_ip:context.ip,scrub:*(1 replaced: ip)"},
		{"clean event unchanged",
			`[{scrub: {}}]`,
			`{"userId":"u1","event":"Order Completed","timestamp":"2026-11-22T10:15:30.5Z","properties":{"revenue":12.5,"product_id":"sku-4711","ts":1732280000000}}`,
			`{"userId":"u1","event":"Order Completed","timestamp":"2026-11-22T10:15:30.5Z","properties":{"revenue":12.5,"product_id":"sku-4711","ts":1732280000000}}`,
			"none"},
		{"only listed fields, custom params",
			`[{scrub: {fields: [properties], urls: [properties.link], keep_params: [ref, "utm_*"]}}]`,
			`{"userId":"u1","messageId":"bob@example.com","properties":{"link":"https://x.example/a?ref=home&utm_x=1&e=1","phone":"+1 555 123 4567"}}`,
			`{"userId":"u1","messageId":"bob@example.com","properties":{"link":"https://x.example/a?ref=home&utm_x=1","phone":"[phone]"}}`,
			"scrub:properties.link(1 replaced),scrub:properties(1 replaced: phone)"},
	}
	keys := testKeys(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compileYAML(t, "  - {name: o, topic: c.o, require: [personalization], transforms: "+tt.transforms+"}\n")
			d, err := decide(t, p, tt.ev, granted(1, "personalization"))
			if err != nil {
				t.Fatal(err)
			}
			o := d.Outputs[0]
			want := strings.ReplaceAll(tt.want, "PSEUDO", pseudonym(t, keys, "k1", "u-42"))
			if string(o.Value) != want {
				t.Errorf("value\n got %s\nwant %s", o.Value, want)
			}
			if h := o.ActionsHeader(); h != tt.actions {
				t.Errorf("actions\n got %s\nwant %s", h, tt.actions)
			}
		})
	}
}
