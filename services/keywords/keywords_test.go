package keywords

import (
	"slices"
	"strings"
	"testing"
)

func TestStopWordList(t *testing.T) {
	if n := StopWordCount(); n != 179 {
		t.Errorf("stop-word list has %d words, want NLTK's 179", n)
	}
	for _, w := range []string{"i", "the", "it's", "won't", "ourselves"} {
		if !IsStopWord(w) {
			t.Errorf("%q should be a stop word", w)
		}
	}
	for _, w := range []string{"it,", "fox", "The"} {
		if IsStopWord(w) {
			t.Errorf("%q should not be a stop word (the list is lowercase, without punctuation)", w)
		}
	}
}

func TestExtract(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"tutorial-style sentence", "I want to extract keywords from this text.", []string{"want", "extract", "keywords", "text"}},
		{"case folded", "GRPC Is Fast", []string{"grpc", "fast"}},
		{"order and duplicates kept", "fox dog fox, fox.", []string{"fox", "dog", "fox", "fox"}},
		{"stop word tested before stripping", "it, is what it is", []string{"it"}},
		{"apostrophes are not stripped", "don't stop, it's fine", []string{"stop", "fine"}},
		{"every stripped character", `a[b]c(d)e-f,g|h/i\j"k?l:m;n&o%p$q#r@s!t^u.v`, []string{"abcdefghijklmnopqrstuv"}},
		{"line breaks deleted, not split", "hello\nworld\r\nagain", []string{"helloworldagain"}},
		{"tabs stay inside words", "tab\tinside word", []string{"tab\tinside", "word"}},
		{"double spaces leave no empty words", "gap  here", []string{"gap"}},
		{"lone punctuation dropped", "wow ! -- ...", []string{"wow"}},
		{"only stop words", "the and of a", nil},
		{"empty", "", nil},
		{"unicode kept", "Zürich café", []string{"zürich", "café"}},
		// Python's str.lower(), as the tutorial: İ is i and a combining
		// dot (not the stop word "i"), a sigma that ends a word is final.
		{"dotted capital I", "İ İstanbul", []string{"i\u0307", "i\u0307stanbul"}},
		{"final sigma", "ΣΑΣ ΌΣΟΣ, ΣΑΣΑ Σ AΣ ΑΣ\u0301Α", []string{"σας", "όσος", "σασα", "σ", "aς", "ασ\u0301α"}},
		// Python looks past every case-ignorable letter for a cased one,
		// modifier letters (ʰ, ᵃ) and U+0345 too, though they are cased
		// themselves: with no other letter before it, the sigma is not
		// final.
		{"sigma after cased ignorables only", "ʰΣ \u0345Σ ᵃΣ ⁿΣ", []string{"ʰσ", "\u0345σ", "ᵃσ", "ⁿσ"}},
		{"final sigma before ignorables", "AΣʰ A.Σ.b A'Σ", []string{"aςʰ", "aσb", "a'ς"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Extract(tt.text); !slices.Equal(got, tt.want) {
				t.Errorf("Extract(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestHandlerTextLimit(t *testing.T) {
	h := NewHandler(10)
	if _, err := h.Keywords(strings.Repeat("x", 11)); err == nil || !strings.Contains(err.Error(), "limit is 10") {
		t.Errorf("Keywords(11 bytes) error = %v, want the limit named", err)
	}
	if kw, err := h.Keywords(strings.Repeat("x", 10)); err != nil || len(kw) != 1 {
		t.Errorf("Keywords(10 bytes) = %q, %v", kw, err)
	}
}

func BenchmarkExtract(b *testing.B) {
	text := strings.Repeat("The quick brown fox jumps over the lazy dog, and it's (very) happy! ", 20)
	b.ReportAllocs()
	for b.Loop() {
		Extract(text)
	}
}

// Greek capitals take lower's own path (finalSigma looks around every
// capital sigma), where other text takes strings.ToLower.
func BenchmarkExtractGreekCapitals(b *testing.B) {
	text := strings.Repeat("ΟΔΥΣΣΕΥΣ ΚΑΙ Η ΠΗΝΕΛΟΠΗ, ΣΤΗΝ ΙΘΑΚΗ. Σ'ΑΓΑΠΩ ", 20)
	b.ReportAllocs()
	for b.Loop() {
		Extract(text)
	}
}
