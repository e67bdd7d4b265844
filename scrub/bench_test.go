package scrub

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// A ~640-byte synthetic event (internal/synth shape) with an e-mail, IPs
// and ids in it.
var benchEvent = []byte(`{"type":"track","event":"Order Completed","userId":"user-000123","anonymousId":"anon-000123-5f2c","messageId":"msg-4711","timestamp":"2026-11-22T09:00:01.258Z","context":{"ip":"83.19.201.77","userAgent":"Mozilla/5.0 (Macintosh) Safari/605.1","locale":"de-DE","page":{"url":"https://shop.example/products/shoes","path":"/products/shoes"},"location":{"latitude":52.526108,"longitude":13.409854,"city":"Berlin","country":"DE"},"device":{"id":"dev-123","advertisingId":"ad-123"}},"properties":{"product_id":"sku-2211","category":"shoes","revenue":123.5,"currency":"EUR","email":"user-000123@example.com"},"traits":{"plan":"pro","email":"user-000123@example.com"}}`)

var benchIDs = [][]byte{[]byte("user-000123"), []byte("anon-000123-5f2c")}

// BenchmarkScrubJSON scrubs every string and key of a whole event.
func BenchmarkScrubJSON(b *testing.B) {
	var sc Scanner
	var out []byte
	b.SetBytes(int64(len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		out, _ = sc.JSON(out[:0], benchEvent, benchIDs)
	}
}

// BenchmarkScrubURL reduces a URL with a query.
func BenchmarkScrubURL(b *testing.B) {
	u := []byte("https://shop.example/users/user-000123/orders?email=carol%40example.com&utm_source=news&utm_medium=mail#top")
	keep := func(name string) bool { return len(name) > 4 && name[:4] == "utm_" }
	var sc Scanner
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		out, _ = sc.URL(out[:0], u, keep, benchIDs)
	}
}

// BenchmarkScrubLongBase64 scrubs a 1 MB base64 string of text (the worst
// case of the base64 detector: every alignment passes its text filter and
// the decoded text is scanned whole).
func BenchmarkScrubLongBase64(b *testing.B) {
	text := bytes.Repeat([]byte("lorem ipsum dolor sit amet "), 29000)
	in := []byte(base64.StdEncoding.EncodeToString(text))
	var sc Scanner
	var out []byte
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		out, _ = sc.Text(out[:0], in, benchIDs)
	}
}
