package keywords

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzExtract(f *testing.F) {
	for _, seed := range []string{
		"", " ", "The quick brown fox, and the lazy dog!", "it, is", "tab\tinside  double space",
		"line\nbreak\r\n", "[]()-,|/\\\"?:;&%$#@!^.", "ÜBER straße İstanbul", "\xff\xfe invalid utf-8",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got := Extract(text)
		if len(got) > strings.Count(text, " ")+1 {
			t.Fatalf("%d keywords from %d space-separated words", len(got), strings.Count(text, " ")+1)
		}
		for _, k := range got {
			if k == "" {
				t.Fatalf("empty keyword from %q", text)
			}
			if strings.ContainsAny(k, " \n\r") || (utf8.ValidString(k) && strings.ContainsAny(k, stripped)) {
				t.Fatalf("keyword %q keeps a separator or stripped character", k)
			}
		}
		if again := Extract(text); !slices.Equal(got, again) {
			t.Fatalf("Extract is not deterministic: %q then %q", got, again)
		}
	})
}
