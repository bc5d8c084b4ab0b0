package keywords

import (
	"context"

	"connectrpc.com/connect"

	legacykeywords "github.com/switchyard/switchyard/gen/legacy/keywords"
	"github.com/switchyard/switchyard/gen/legacy/keywords/keywordsconnect"
)

// LegacyHandler serves the blog post's /KeywordService/GetKeywords with the
// v1 handler's limit and extraction.
type LegacyHandler struct {
	v1 *Handler
}

var _ keywordsconnect.KeywordServiceHandler = LegacyHandler{}

// NewLegacyHandler serves v1's logic under the tutorial's name.
func NewLegacyHandler(v1 *Handler) LegacyHandler { return LegacyHandler{v1: v1} }

// GetKeywords implements keywordsconnect.KeywordServiceHandler.
func (h LegacyHandler) GetKeywords(_ context.Context, req *connect.Request[legacykeywords.Request]) (*connect.Response[legacykeywords.Response], error) {
	kw, err := h.v1.Keywords(req.Msg.GetText())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&legacykeywords.Response{Keywords: kw}), nil
}
