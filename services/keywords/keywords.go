// Package keywords extracts keywords from English text the way the
// keyword-extraction tutorial's NLTK service does, and serves it as
// keywords.v1.KeywordsService.
package keywords

import (
	_ "embed"
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
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
// U+0307), and a capital sigma that ends a word becomes the final ς.
// Text with neither takes strings.ToLower.
func lower(text string) string {
	if strings.ContainsRune(text, 'İ') || strings.ContainsRune(text, 'Σ') {
		return cases.Lower(language.Und).String(text)
	}
	return strings.ToLower(text)
}

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
