package policy

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/consentd/consentd/event"
	"github.com/consentd/consentd/scrub"
)

// ScrubSpec configures scrub: personal data found in what an output keeps.
type ScrubSpec struct {
	// Fields whose values, and the keys below them, are scrubbed: e-mail
	// addresses, phone numbers, card numbers, IP literals and the event's
	// own subject ids are replaced by [email], [phone], [card], [ip] and
	// [id]. Default: ["*"] (every field the output still has).
	Fields []string `yaml:"fields"`
	// URLs are fields holding URLs, paths or query strings, reduced to
	// scheme, host and the path segments no detector matches; the query
	// keeps only KeepParams and the fragment is dropped. They are scrubbed
	// before Fields. Default: context.page.{url,path,referrer,search} and
	// properties.{url,path,referrer,search}.
	URLs []string `yaml:"urls"`
	// KeepParams are the query parameters URLs keep; a trailing "*" makes
	// a prefix. Default: ["utm_*"].
	KeepParams []string `yaml:"keep_params"`
	// IDs are the fields holding the event's subject ids, whose values are
	// replaced wherever else they appear (whole words of two characters or
	// more; whole URL path segments of any length).
	// Default: [userId, anonymousId, previousId].
	IDs []string `yaml:"ids"`
}

var (
	defaultScrubURLs = []string{"context.page.url", "context.page.path", "context.page.referrer", "context.page.search",
		"properties.url", "properties.path", "properties.referrer", "properties.search"}
	defaultScrubIDs = []string{"userId", "anonymousId", "previousId"}
)

type scrubT struct {
	fields fields
	urls   fields
	ids    []event.Path
	params []string
}

func compileScrub(s *ScrubSpec) (*scrubT, error) {
	f, err := paths(s.Fields, "*")
	if err != nil {
		return nil, fmt.Errorf("scrub: %w", err)
	}
	u, err := paths(s.URLs, defaultScrubURLs...)
	if err != nil {
		return nil, fmt.Errorf("scrub: urls: %w", err)
	}
	ids, err := paths(s.IDs, defaultScrubIDs...)
	if err != nil {
		return nil, fmt.Errorf("scrub: ids: %w", err)
	}
	for _, p := range ids {
		if p.HasWildcard() {
			return nil, fmt.Errorf("scrub: ids: %s: wildcards are not allowed", p)
		}
	}
	params := s.KeepParams
	if params == nil {
		params = []string{"utm_*"}
	}
	for _, p := range params {
		if p == "" || strings.Contains(strings.TrimSuffix(p, "*"), "*") {
			return nil, fmt.Errorf("scrub: keep_params: %q: want a name or a prefix ending in *", p)
		}
	}
	return &scrubT{fields: newFields(f), urls: newFields(u), ids: ids, params: params}, nil
}

func (t *scrubT) String() string {
	return fmt.Sprintf("scrub: %s; urls %s keeping params %s", t.fields, t.urls, strings.Join(t.params, ", "))
}

func (t *scrubT) fieldPaths() []event.Path {
	return append(append(append([]event.Path(nil), t.fields.paths...), t.urls.paths...), t.ids...)
}

func (t *scrubT) keepParam(name string) bool {
	for _, p := range t.params {
		if pre, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(name, pre) || name == p {
			return true
		}
	}
	return false
}

type scrubState struct {
	sc      scrub.Scanner
	ids     [][]byte
	idRefs  []event.Ref
	scratch []byte
	key     []byte
}

var scrubPool = sync.Pool{New: func() any { return new(scrubState) }}

func (t *scrubT) Apply(ed *event.Edit, _ *Keyring, rec func(Action)) error {
	st := scrubPool.Get().(*scrubState)
	defer scrubPool.Put(st)
	st.ids, st.idRefs = st.ids[:0], st.idRefs[:0]
	for _, p := range t.ids {
		v, ok, err := ed.Original(p)
		if err != nil {
			return err
		}
		if ok && (v.Kind == event.String || v.Kind == event.Number) {
			if id := v.Text(); len(id) > 0 {
				st.ids = append(st.ids, id)
			}
		}
		// The id fields themselves are the pseudonymize transform's business.
		if err := ed.Each(p, func(r event.Ref) error { st.idRefs = append(st.idRefs, r); return nil }); err != nil {
			return err
		}
	}
	err := t.urls.each(ed, func(r event.Ref, path string) error {
		v := ed.Value(r)
		if v.Kind != event.String {
			return nil
		}
		out, n := st.sc.URL(st.scratch[:0], v.Text(), t.keepParam, st.ids)
		st.scratch = out
		if n > 0 {
			ed.Replace(r, scrub.AppendQuoted(nil, out))
			rec(Action{Op: "scrub", Path: path, Count: n})
		}
		return nil
	})
	if err != nil {
		return err
	}
	return t.fields.each(ed, func(r event.Ref, path string) error {
		total := 0
		ed.Rewrite(r, func(key []byte, pos int) []byte {
			out, n := st.sc.Text(st.key[:0], key, st.ids)
			st.key = out
			if n == 0 {
				return nil
			}
			total += n
			out = fmt.Appendf(out, "#%d", pos)
			return scrub.AppendQuoted(nil, out)
		}, func(r event.Ref, v event.Value) []byte {
			if v.Kind == event.Bool || v.Kind == event.Null || slices.Contains(st.idRefs, r) {
				return nil
			}
			out, n := st.sc.JSON(st.scratch[:0], v.Raw, st.ids)
			st.scratch = out
			if n == 0 {
				return nil
			}
			total += n
			return bytes.Clone(out)
		})
		if total > 0 {
			rec(Action{Op: "scrub", Path: path, Count: total})
		}
		return nil
	})
}
