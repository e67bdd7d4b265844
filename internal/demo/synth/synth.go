// Package synth generates realistic Segment-spec tracking events and
// consent records for the demo, benchmarks and tests. Output is
// deterministic for a seed. Imports nothing of consentd.
package synth

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// Purposes used by the default policy.
var Purposes = []string{"personalization", "analytics", "advertising"}

// Generator produces events and consent.
type Generator struct {
	rnd   *rand.Rand
	users int
	seq   int
	start time.Time
}

// New returns a generator over users synthetic subjects.
func New(seed uint64, users int) *Generator {
	return &Generator{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), users: users, start: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
}

// UserID returns the id of user i.
func UserID(i int) string { return fmt.Sprintf("user-%06d", i) }

// AnonID returns the anonymous id of user i.
func AnonID(i int) string { return fmt.Sprintf("anon-%06d-5f2c", i) }

// Consent returns user i's seeded consent: roughly 10% have no record,
// the rest a mix of grants. ok is false for "no record".
//
// Consent is skewed on purpose: users at home in SkewedCountry grant
// personalization and analytics far less often (30% and 40%, against
// 70% and 80%), so that the representation report has a segment to
// find.
func (g *Generator) Consent(i int) (purposes map[string]bool, ok bool) {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	if r.IntN(10) == 0 {
		return nil, false
	}
	pers, anal := 7, 8
	if HomeCountry(i) == SkewedCountry {
		pers, anal = 3, 4
	}
	return map[string]bool{
		"personalization": r.IntN(10) < pers,
		"analytics":       r.IntN(10) < anal,
		"advertising":     r.IntN(10) < 3,
	}, true
}

// SkewedCountry is the country whose users consent less (see Consent).
const SkewedCountry = "DE"

// HomeCountry returns user i's country: every event of the user is sent
// from it.
func HomeCountry(i int) string { return countries[i%len(countries)] }

var (
	pages     = []string{"/", "/products", "/products/shoes", "/cart", "/checkout", "/account"}
	events    = []string{"Product Viewed", "Product Added", "Order Completed", "Signed Up", "Search Performed"}
	cities    = []string{"Berlin", "Paris", "Lisbon", "Buenos Aires", "Sydney", "Toronto"}
	countries = []string{"DE", "FR", "PT", "AR", "AU", "CA"}
	coords    = [][2]float64{{52.520008, 13.404954}, {48.856613, 2.352222}, {38.722252, -9.139337}, {-34.603722, -58.381592}, {-33.868820, 151.209290}, {43.651070, -79.347015}}
	locales   = []string{"de-DE", "fr-FR", "pt-PT", "es-AR", "en-AU", "en-CA"}
	agents    = []string{"Mozilla/5.0 (Macintosh) Safari/605.1", "Mozilla/5.0 (Linux; Android 14) Chrome/130.0"}
)

// Event returns the next event (about 600 bytes) and the index of its user.
// About 1 in 5 events carry only an anonymousId.
func (g *Generator) Event() ([]byte, int) {
	g.seq++
	r := g.rnd
	u := r.IntN(g.users)
	_ = r.IntN(len(cities)) // the stream of draws stays as it was
	c := u % len(cities)    // the user's home (HomeCountry)
	ts := g.start.Add(time.Duration(g.seq) * 37 * time.Millisecond).Format(time.RFC3339Nano)
	ip := fmt.Sprintf("%d.%d.%d.%d", 10+r.IntN(200), r.IntN(256), r.IntN(256), 1+r.IntN(254))
	if r.IntN(5) == 0 {
		ip = fmt.Sprintf("2001:db8:%x:%x::%x", r.IntN(65536), r.IntN(65536), 1+r.IntN(65535))
	}
	user := `"userId":"` + UserID(u) + `",`
	if r.IntN(5) == 0 {
		user = ""
	}
	page := pages[r.IntN(len(pages))]
	var typ, name, props string
	switch k := r.IntN(10); {
	case k < 6:
		typ, name = "track", events[r.IntN(len(events))]
		props = fmt.Sprintf(`{"product_id":"sku-%d","category":"shoes","revenue":%d.5,"currency":"EUR","email":"%s@example.com"}`, r.IntN(5000), r.IntN(400), UserID(u))
	case k < 9:
		typ = "page"
		props = fmt.Sprintf(`{"path":%q,"title":"Shop"}`, page)
	default:
		typ = "identify"
		props = `{}`
	}
	evName := ""
	if name != "" {
		evName = `"event":"` + name + `",`
	}
	b := make([]byte, 0, 768)
	b = append(b, `{"type":"`+typ+`",`+evName+user+`"anonymousId":"`+AnonID(u)+`","messageId":"msg-`+strconv.Itoa(g.seq)+`","timestamp":"`+ts+`",`...)
	b = fmt.Appendf(b, `"context":{"ip":%q,"userAgent":%q,"locale":%q,"page":{"url":"https://shop.example%s","path":%q},`,
		ip, agents[r.IntN(len(agents))], locales[c], page, page)
	b = fmt.Appendf(b, `"location":{"latitude":%.6f,"longitude":%.6f,"city":%q,"country":%q},"device":{"id":"dev-%d","advertisingId":"ad-%d"}},`,
		coords[c][0]+r.Float64()/100, coords[c][1]+r.Float64()/100, cities[c], countries[c], u, u)
	b = fmt.Appendf(b, `"properties":%s,"traits":{"plan":"pro","email":"%s@example.com"}}`, props, UserID(u))
	return b, u
}

// BadEvents are inputs that must be dead-lettered or dropped, with the
// reason consentd should give.
var BadEvents = []struct {
	Value  []byte
	Reason string
}{
	{[]byte(`{"type":"track","userId":"user-000001",`), "invalid_json"},
	{[]byte(`["not","an","object"]`), "not_object"},
	{[]byte(`{"type":"track","userId":{"id":1}}`), "invalid_subject"},
	{[]byte(`{"type":"track","userId":"user-000002","context":{"ip":"10.1.2.3","ip":"10.9.9.9"}}`), "duplicate_key"},
	{[]byte(`{"type":"track","userId":"user-000003","context":{"ip":"not-an-ip"}}`), "invalid_ip"},
	{[]byte(`{"type":"track","event":"Signed Up","properties":{}}`), "no_subject"},
}
