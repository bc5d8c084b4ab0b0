package keywords

import (
	"context"
	"fmt"

	"connectrpc.com/connect"

	keywordsv1 "github.com/switchyard/switchyard/gen/keywords/v1"
	"github.com/switchyard/switchyard/gen/keywords/v1/keywordsv1connect"
)

// DefaultMaxTextBytes bounds the text of one GetKeywords call.
const DefaultMaxTextBytes = 1 << 20

// Handler serves keywords.v1.KeywordsService.
type Handler struct {
	maxTextBytes int
}

var _ keywordsv1connect.KeywordsServiceHandler = (*Handler)(nil)

// NewHandler returns a handler that accepts texts of up to maxTextBytes
// bytes (DefaultMaxTextBytes when maxTextBytes <= 0).
func NewHandler(maxTextBytes int) *Handler {
	if maxTextBytes <= 0 {
		maxTextBytes = DefaultMaxTextBytes
	}
	return &Handler{maxTextBytes: maxTextBytes}
}

// Keywords checks text against the size limit and extracts its keywords.
func (h *Handler) Keywords(text string) ([]string, error) {
	if len(text) > h.maxTextBytes {
		return nil, connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("text is %d bytes, the limit is %d: send it in smaller parts", len(text), h.maxTextBytes))
	}
	return Extract(text), nil
}

// GetKeywords implements keywordsv1connect.KeywordsServiceHandler.
func (h *Handler) GetKeywords(_ context.Context, req *connect.Request[keywordsv1.GetKeywordsRequest]) (*connect.Response[keywordsv1.GetKeywordsResponse], error) {
	kw, err := h.Keywords(req.Msg.GetText())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&keywordsv1.GetKeywordsResponse{Keywords: kw}), nil
}
