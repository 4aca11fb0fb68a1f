// Package openai holds the OpenAI-compatible request and response shapes
// that miners, validators and the gateway exchange, with validation.
package openai

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Message is a chat turn.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatRequest is a /v1/chat/completions request.
type ChatRequest struct {
	Model       string    `json:"model"`
	Messages    []Message `json:"messages,omitempty"`
	Prompt      string    `json:"prompt,omitempty"` // /v1/completions
	MaxTokens   *int      `json:"max_tokens,omitempty"`
	Temperature *float32  `json:"temperature,omitempty"`
	TopP        *float32  `json:"top_p,omitempty"`
	Seed        *uint64   `json:"seed,omitempty"`
	Stream      bool      `json:"stream,omitempty"`
	Logprobs    any       `json:"logprobs,omitempty"` // bool for chat, int for completions
	TopLogprobs int       `json:"top_logprobs,omitempty"`
}

// Limits on requests a miner accepts.
const (
	MaxMessages  = 256
	MaxTokensCap = 4096
	// DefaultMaxTokens applies when a request gives none.
	DefaultMaxTokens = 256
)

// Validate checks a request the way OpenAI does, with clear messages.
func (r *ChatRequest) Validate(chat bool) error {
	if chat && len(r.Messages) == 0 {
		return errors.New("'messages' must be a non-empty array")
	}
	if !chat && r.Prompt == "" {
		return errors.New("'prompt' is required")
	}
	if len(r.Messages) > MaxMessages {
		return fmt.Errorf("at most %d messages", MaxMessages)
	}
	for i, m := range r.Messages {
		switch m.Role {
		case "system", "user", "assistant", "developer":
		default:
			return fmt.Errorf("messages[%d].role %q is not one of system, user, assistant", i, m.Role)
		}
	}
	if r.MaxTokens != nil && (*r.MaxTokens < 1 || *r.MaxTokens > MaxTokensCap) {
		return fmt.Errorf("'max_tokens' must be between 1 and %d", MaxTokensCap)
	}
	if r.Temperature != nil && (*r.Temperature < 0 || *r.Temperature > 2) {
		return errors.New("'temperature' must be between 0 and 2")
	}
	if r.TopP != nil && (*r.TopP <= 0 || *r.TopP > 1) {
		return errors.New("'top_p' must be in (0, 1]")
	}
	if r.TopLogprobs < 0 || r.TopLogprobs > 20 {
		return errors.New("'top_logprobs' must be between 0 and 20")
	}
	return nil
}

// WantsLogprobs reports whether logprobs were asked for.
func (r *ChatRequest) WantsLogprobs() bool {
	switch v := r.Logprobs.(type) {
	case bool:
		return v
	case float64:
		return v > 0
	}
	return false
}

// TopLogprob is an alternative token.
type TopLogprob struct {
	Token   string  `json:"token"`
	Logprob float32 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// TokenLogprob is one token's logprob entry.
type TokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float32      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []TopLogprob `json:"top_logprobs"`
}

// Logprobs is the choice's logprobs object.
type Logprobs struct {
	Content []TokenLogprob `json:"content"`
}

// Usage counts tokens.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Choice is one completion.
type Choice struct {
	Index        int       `json:"index"`
	Message      *Message  `json:"message,omitempty"`
	Delta        *Message  `json:"delta,omitempty"`
	Text         *string   `json:"text,omitempty"`
	Logprobs     *Logprobs `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

// Response is a chat.completion, chat.completion.chunk or text_completion.
type Response struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []Choice `json:"choices"`
	Usage   *Usage   `json:"usage,omitempty"`
	// Agora extension: the token ids served, so a validator can
	// teacher-force exactly what was generated.
	AgoraTokenIDs       []int `json:"agora_token_ids,omitempty"`
	AgoraPromptTokenIDs []int `json:"agora_prompt_token_ids,omitempty"`
}

// Decode parses a request body strictly enough to give good errors.
func Decode(body []byte) (*ChatRequest, error) {
	var r ChatRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("invalid JSON body: %v", err)
	}
	return &r, nil
}
