package keywords_test

import (
	"slices"
	"testing"

	"connectrpc.com/connect"

	keywordsv1 "github.com/switchyard/switchyard/gen/keywords/v1"
	"github.com/switchyard/switchyard/gen/keywords/v1/keywordsv1connect"
	legacykeywords "github.com/switchyard/switchyard/gen/legacy/keywords"
	"github.com/switchyard/switchyard/gen/legacy/keywords/keywordsconnect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// KeywordsService and the tutorial's /KeywordService/GetKeywords through the
// whole server, in every protocol. The extraction itself is tested in
// keywords_test.go and fuzzed in fuzz_test.go.

func TestGetKeywords(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{MaxKeywordTextBytes: 64})
	testserver.ForEachProtocol(t, func(t *testing.T, p testserver.Protocol) {
		c := keywordsv1connect.NewKeywordsServiceClient(srv.HTTPClient, srv.URL, p.Opts...)
		kw, err := c.GetKeywords(testserver.CallContext(t), connect.NewRequest(&keywordsv1.GetKeywordsRequest{Text: "The quick brown fox, and the lazy dog!"}))
		if want := []string{"quick", "brown", "fox", "lazy", "dog"}; err != nil || !slices.Equal(kw.Msg.GetKeywords(), want) {
			t.Errorf("GetKeywords = %v, %v; want %v", kw, err, want)
		}
		_, err = c.GetKeywords(testserver.CallContext(t), connect.NewRequest(&keywordsv1.GetKeywordsRequest{Text: string(make([]byte, 65))}))
		testserver.WantCode(t, err, connect.CodeResourceExhausted)
	})
}

func TestLegacyGetKeywords(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	testserver.ForEachProtocol(t, func(t *testing.T, p testserver.Protocol) {
		c := keywordsconnect.NewKeywordServiceClient(srv.HTTPClient, srv.URL, p.Opts...)
		words, err := c.GetKeywords(testserver.CallContext(t), connect.NewRequest(&legacykeywords.Request{Text: "I like it, very much"}))
		if err != nil || !slices.Equal(words.Msg.GetKeywords(), []string{"like", "it", "much"}) {
			t.Errorf("GetKeywords = %v, %v", words, err)
		}
	})
}
