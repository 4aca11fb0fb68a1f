package miner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agoranet/agora/openai"
	"github.com/agoranet/agora/wire"
)

// Upstream serves from any OpenAI-compatible server (vLLM, llama.cpp server,
// Ollama). Requests are forwarded streaming, so tokens reach the caller as
// the upstream produces them; upstream errors keep their status.
//
// Chat requests ask the upstream for logprobs with token ids (vLLM's
// return_tokens_as_token_ids gives "token_id:123" tokens; llama.cpp server
// puts an "id" in each logprobs entry), so the answer and its receipt carry
// the exact ids served and validators teacher-force those, not a
// retokenization of the text. Logprobs the caller did not ask for are
// dropped before they reach it.
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
	if chat {
		fwd.Logprobs = true // the token ids ride on the logprobs
	}
	body, err := json.Marshal(struct {
		openai.ChatRequest
		StreamOptions map[string]bool `json:"stream_options"`
		TokenIDs      bool            `json:"return_tokens_as_token_ids"`
	}{fwd, map[string]bool{"include_usage": true}, true})
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
		var withIDs idChunk
		json.Unmarshal(e.Data, &withIDs) // shaped like chunk, which parsed
		if chunk.Usage != nil {
			res.PromptTokens, res.CompletionTokens = chunk.Usage.PromptTokens, chunk.Usage.CompletionTokens
		}
		for ci, c := range chunk.Choices {
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
				p.TokenIDs = withIDs.tokenIDs(ci)
				if req.WantsLogprobs() {
					lp := plainTokens(c.Logprobs.Content[0], text, len(c.Logprobs.Content) == 1)
					p.Logprob = &lp
				}
			}
			res.TokenIDs = append(res.TokenIDs, p.TokenIDs...)
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

// idChunk is the part of a streamed chunk that carries token ids.
type idChunk struct {
	Choices []struct {
		Logprobs *struct {
			Content []struct {
				ID    *int   `json:"id"` // llama.cpp server
				Token string `json:"token"`
			} `json:"content"`
		} `json:"logprobs"`
	} `json:"choices"`
}

// tokenIDs are the ids of choice i's tokens, or nil unless every token has one.
func (c *idChunk) tokenIDs(i int) []int {
	if i >= len(c.Choices) || c.Choices[i].Logprobs == nil {
		return nil
	}
	var ids []int
	for _, t := range c.Choices[i].Logprobs.Content {
		switch id, err := tokenIDOf(t.Token); {
		case t.ID != nil:
			ids = append(ids, *t.ID)
		case err == nil:
			ids = append(ids, id)
		default:
			return nil
		}
	}
	return ids
}

// tokenIDOf parses vLLM's return_tokens_as_token_ids form, "token_id:123".
func tokenIDOf(s string) (int, error) {
	rest, ok := strings.CutPrefix(s, "token_id:")
	if !ok {
		return 0, fmt.Errorf("token %q carries no id", s)
	}
	return strconv.Atoi(rest)
}

// plainTokens gives lp's tokens back their text where the upstream wrote
// ids instead: from their bytes, or the chunk's text when it is this one
// token. Callers asked for OpenAI logprobs, which name tokens by text.
func plainTokens(lp openai.TokenLogprob, text string, only bool) openai.TokenLogprob {
	name := func(tok string, b []int, fallback string) string {
		if _, err := tokenIDOf(tok); err != nil {
			return tok
		}
		if len(b) > 0 {
			raw := make([]byte, len(b))
			for i, x := range b {
				raw[i] = byte(x)
			}
			return string(raw)
		}
		return fallback
	}
	out := lp
	out.Token = name(lp.Token, lp.Bytes, text)
	if !only {
		out.Token = name(lp.Token, lp.Bytes, "")
	}
	out.TopLogprobs = make([]openai.TopLogprob, len(lp.TopLogprobs))
	for i, a := range lp.TopLogprobs {
		a.Token = name(a.Token, a.Bytes, "")
		out.TopLogprobs[i] = a
	}
	return out
}

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
