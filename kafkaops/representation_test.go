package kafkaops

import (
	"testing"

	"github.com/consentd/consentd/internal/representation"
	"github.com/consentd/consentd/policy"
)

func TestFoldUnwrittenHidesValuesNoCleanTopicHolds(t *testing.T) {
	in := representation.Counts{
		{Output: "a", Field: "country", Value: "DE"}:                   {Raw: 10, Clean: 4},
		{Output: "a", Field: "country", Value: "LI"}:                   {Raw: 1}, // only a subject without consent
		{Output: "b", Field: "country", Value: "FR"}:                   {Raw: 3}, // written by a, not b: shown
		{Output: "a", Field: "country", Value: "FR"}:                   {Raw: 3, Clean: 3},
		{Output: "a", Field: "country", Value: policy.SegmentRedacted}: {Raw: 2},
		{Output: "a", Field: "country", Value: representation.Other}:   {Raw: 5, Clean: 1},
	}
	got := foldUnwritten(in)
	want := representation.Counts{
		{Output: "a", Field: "country", Value: "DE"}:                   {Raw: 10, Clean: 4},
		{Output: "b", Field: "country", Value: "FR"}:                   {Raw: 3},
		{Output: "a", Field: "country", Value: "FR"}:                   {Raw: 3, Clean: 3},
		{Output: "a", Field: "country", Value: policy.SegmentRedacted}: {Raw: 2},
		{Output: "a", Field: "country", Value: representation.Other}:   {Raw: 6, Clean: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%v = %v, want %v", k, got[k], v)
		}
	}
}
