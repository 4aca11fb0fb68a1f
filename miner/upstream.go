package miner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/agoranet/agora/openai"
	"github.com/agoranet/agora/wire"
)

// Upstream serves from any OpenAI-compatible server (vLLM, llama.cpp server,
// Ollama). Requests are forwarded streaming, so tokens reach the caller as
// the upstream produces them; upstream errors keep their status.
type Upstream struct {
	URL    string // base, e.g. http://127.0.0.1:8000/v1
	Model  string // model name the upstream knows
	ID     string // sha256 of the served weights, if the operator states it
	APIKey string
	Client *http.Client
	// MaxTokens bounds a request's max_tokens (the upstream model's context,
	// as the operator configures it); 0 means openai.MaxTokensCap.
	MaxTokens int
}

// ModelID implements Backend.
func (u *Upstream) ModelID() string { return u.ID }

// MaxTokensLimit implements TokenLimiter.
func (u *Upstream) MaxTokensLimit() int {
	if u.MaxTokens > 0 {
		return u.MaxTokens
	}
	return openai.MaxTokensCap
}

// Complete implements Backend.
func (u *Upstream) Complete(ctx context.Context, req *openai.ChatRequest, chat bool, emit func(Piece) error) (*Result, error) {
	fwd := *req
	fwd.Model = u.Model
	fwd.Stream = true
	body, err := json.Marshal(struct {
		openai.ChatRequest
		StreamOptions map[string]bool `json:"stream_options"`
	}{fwd, map[string]bool{"include_usage": true}})
	if err != nil {
		return nil, err
	}
	path := "/chat/completions"
	if !chat {
		path = "/completions"
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(u.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	if u.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+u.APIKey)
	}
	client := u.Client
	if client == nil {
		client = wire.NewHTTPClient(10 * time.Minute)
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, &HTTPError{Status: 502, Type: "upstream_error", Message: fmt.Sprintf("upstream unreachable: %v", err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, upstreamError(resp)
	}
	res := &Result{FinishReason: "stop"}
	_, _, err = wire.ReadStream(resp.Body, func(e wire.Event) error {
		if string(e.Data) == "[DONE]" {
			return errDone
		}
		var chunk openai.Response
		if err := json.Unmarshal(e.Data, &chunk); err != nil {
			return &HTTPError{Status: 502, Type: "upstream_error", Message: "upstream sent malformed JSON"}
		}
		if chunk.Usage != nil {
			res.PromptTokens, res.CompletionTokens = chunk.Usage.PromptTokens, chunk.Usage.CompletionTokens
		}
		for _, c := range chunk.Choices {
			var text string
			switch {
			case c.Delta != nil:
				text = c.Delta.Content
			case c.Text != nil:
				text = *c.Text
			}
			if c.FinishReason != nil {
				res.FinishReason = *c.FinishReason
			}
			p := Piece{Text: text}
			if c.Logprobs != nil && len(c.Logprobs.Content) > 0 {
				p.Logprob = &c.Logprobs.Content[0]
			}
			if text != "" || p.Logprob != nil {
				if chunk.Usage == nil {
					res.CompletionTokens++
				}
				if err := emit(p); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil && err != errDone {
		if he, ok := err.(*HTTPError); ok {
			return nil, he
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// ReadStream reports a missing receipt at the end of a plain OpenAI
		// stream; only a stream cut before [DONE] is an error.
		if !strings.Contains(err.Error(), "without a receipt") {
			return nil, &HTTPError{Status: 502, Type: "upstream_error", Message: err.Error()}
		}
	}
	return res, nil
}

var errDone = fmt.Errorf("stream done")

// upstreamError maps an upstream failure: 429 and 503 keep their status and
// Retry-After so callers back off; other 4xx stay client errors; 5xx become 502.
func upstreamError(resp *http.Response) *HTTPError {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var shaped struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	text := strings.TrimSpace(string(msg))
	if json.Unmarshal(msg, &shaped) == nil && shaped.Error.Message != "" {
		text = shaped.Error.Message
	}
	he := &HTTPError{Status: resp.StatusCode, Type: "upstream_error", Message: "upstream: " + text, RetryAfter: resp.Header.Get("Retry-After")}
	switch {
	case resp.StatusCode == 429:
		he.Type = "rate_limit_error"
	case resp.StatusCode == 503:
		he.Type = "overloaded_error"
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		he.Type = "invalid_request_error"
	default:
		he.Status = 502
	}
	return he
}
