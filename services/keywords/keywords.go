// Package keywords extracts keywords from English text the way the
// keyword-extraction tutorial's NLTK service does, and serves it as
// keywords.v1.KeywordsService.
package keywords

import (
	_ "embed"
	"strings"
	"unicode"
	"unicode/utf8"
)

// englishStopWords is NLTK's English stop-word list (179 words, one a line).
//
//go:embed english_stopwords.txt
var englishStopWords string

// stopWords is englishStopWords as a set.
var stopWords = func() map[string]struct{} {
	words := strings.Fields(englishStopWords)
	set := make(map[string]struct{}, len(words))
	for _, w := range words {
		set[w] = struct{}{}
	}
	return set
}()

// IsStopWord reports whether w, already lowercased, is an English stop word.
func IsStopWord(w string) bool {
	_, ok := stopWords[w]
	return ok
}

// StopWordCount is the number of stop words on the list.
func StopWordCount() int { return len(stopWords) }

// lineBreaks deletes the line breaks the tutorial removes before splitting.
var lineBreaks = strings.NewReplacer("\n", "", "\r", "")

// stripped are the characters removed from every word after the stop-word test.
const stripped = `[]()-,|/\"?:;&%$#@!^.`

// Extract returns the keywords of text.
//
// The steps are the tutorial's, in its order: lowercase; delete '\n' and
// '\r'; split on single spaces (a tab stays inside its word); drop words on
// the stop-word list, tested before punctuation is stripped (so "it," is kept
// and becomes "it"); delete the characters []()-,|/\"?:;&%$#@!^. from each
// word. Order and duplicates are kept. Unlike the tutorial, words that end
// up empty (from double spaces or lone punctuation) are dropped.
func Extract(text string) []string {
	text = lower(text)
	var keywords []string
	for word := range strings.SplitSeq(text, " ") {
		word = lineBreaks.Replace(word)
		if word == "" || IsStopWord(word) {
			continue
		}
		word = stripPunctuation(word)
		if word != "" {
			keywords = append(keywords, word)
		}
	}
	return keywords
}

// lower is Python's str.lower(), which the tutorial calls. Go's
// strings.ToLower maps rune by rune, where Python applies Unicode's full
// lower-case mappings; they differ twice: İ (U+0130) becomes i̇ (i and
// U+0307), and a capital sigma becomes the final ς where Python finds
// that it ends a word (finalSigma). Text with neither takes
// strings.ToLower.
func lower(text string) string {
	if !strings.ContainsRune(text, 'İ') && !strings.ContainsRune(text, 'Σ') {
		return strings.ToLower(text)
	}
	var b strings.Builder
	b.Grow(len(text) + 1)
	for i, r := range text {
		switch r {
		case 'İ':
			b.WriteString("i\u0307")
		case 'Σ':
			if finalSigma(text, i) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma reports whether the capital sigma at text[i] is final as
// Python's str.lower() decides: past the case-ignorable characters before
// it comes a cased one, and past those after it none does. Python skips
// every case-ignorable character, those that are cased as well (modifier
// letters such as ʰ, U+0345) included, where x/text's cases.Lower stops at
// them: "ʰΣ" is "ʰσ" in Python.
func finalSigma(text string, i int) bool {
	before := text[:i]
	for {
		r, n := utf8.DecodeLastRuneInString(before)
		if n == 0 {
			return false // no cased character before it
		}
		before = before[:len(before)-n]
		if !caseIgnorable(r) {
			if !cased(r) {
				return false
			}
			break
		}
	}
	for _, r := range text[i+len("Σ"):] {
		if !caseIgnorable(r) {
			return !cased(r)
		}
	}
	return true
}

// cased is Unicode's Cased property: upper, lower or title case letters
// and the characters Unicode counts with them (Other_Lowercase,
// Other_Uppercase).
func cased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

// midWord are the characters of Word_Break MidLetter, MidNumLet and
// Single_Quote, which Unicode's Case_Ignorable property adds to the
// general categories that caseIgnorable tests (Go's unicode package has
// no Word_Break table).
const midWord = "'.:\u00b7\u0387\u055f\u05f4\u2018\u2019\u2024\u2027\ufe13\ufe52\ufe55\uff07\uff0e\uff1a"

// caseIgnorable is Unicode's Case_Ignorable property. An upper- or
// lower-case letter (Lu, Ll: most of the text finalSigma looks at) is in
// none of its categories.
func caseIgnorable(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiCaseIgnorable[r]
	}
	if unicode.IsUpper(r) || unicode.IsLower(r) {
		return false
	}
	return caseIgnorableCategories(r)
}

func caseIgnorableCategories(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) || strings.ContainsRune(midWord, r)
}

// asciiCaseIgnorable is caseIgnorableCategories for ASCII.
var asciiCaseIgnorable = func() (t [utf8.RuneSelf]bool) {
	for r := range rune(utf8.RuneSelf) {
		t[r] = caseIgnorableCategories(r)
	}
	return t
}()

// stripPunctuation removes the stripped characters from word, allocating
// only when there is something to remove.
func stripPunctuation(word string) string {
	if !strings.ContainsAny(word, stripped) {
		return word
	}
	var b strings.Builder
	b.Grow(len(word))
	for _, r := range word {
		if !strings.ContainsRune(stripped, r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
