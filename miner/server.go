package miner

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/e2e"
	"github.com/agoranet/agora/httpserve"
	"github.com/agoranet/agora/openai"
	"github.com/agoranet/agora/wire"
)

// Config configures a miner server.
type Config struct {
	Hotkey  ed25519.PrivateKey
	Backend Backend
	// Allow says who may send requests (see ChainAllow: validators with a
	// permit on the subnet). Nil allows every correctly signed sender.
	Allow wire.Allow
	// PinnedModel is the subnet's model id; a backend serving another model
	// is refused at construction.
	PinnedModel   string
	PricePer1K    uint64
	MaxConcurrent int
	MaxQueue      int
	MaxBody       int64
	Logger        *slog.Logger
}

// Miner answers signed completion requests.
type Miner struct {
	cfg      Config
	self     address.Address
	verifier *wire.Verifier
	slots    chan struct{}
	waiting  atomic.Int64
	log      *slog.Logger
	metrics  metrics
	e2eKey   *e2e.PrivateKey
	// envelopes remembers the sealed requests already answered, so a
	// gateway cannot replay one to get a second answer.
	envelopes *wire.ReplayCache
	now       func() time.Time
}

// Envelope replay cache bounds: an envelope is remembered for as long as its
// creation time keeps it acceptable, with room shared out per signer.
const (
	EnvelopeCacheTotal     = 1 << 18
	EnvelopeCachePerSigner = 1 << 15
)

// ErrReplayedEnvelope refuses a sealed request the miner has already taken.
var ErrReplayedEnvelope = errors.New("this sealed request was already answered; seal a new one")

// TokenLimiter is implemented by backends that know how many tokens their
// model can produce for one request (its context length, or an operator's
// bound); max_tokens above it is refused.
type TokenLimiter interface {
	MaxTokensLimit() int
}

type metrics struct {
	requests, rejected, overloaded, failed atomic.Int64
	promptTokens, completionTokens         atomic.Int64
	inFlight                               atomic.Int64
}

// ErrWrongModel is returned when the backend does not serve the subnet's pinned model.
var ErrWrongModel = errors.New("backend serves a model other than the subnet's pinned model")

// New makes a miner.
func New(cfg Config) (*Miner, error) {
	if cfg.Backend == nil || cfg.Hotkey == nil {
		return nil, errors.New("miner needs a backend and a hotkey")
	}
	if cfg.PinnedModel != "" && cfg.Backend.ModelID() != cfg.PinnedModel {
		return nil, fmt.Errorf("%w: serving %q, subnet pins %q", ErrWrongModel, cfg.Backend.ModelID(), cfg.PinnedModel)
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 1
	}
	if cfg.MaxQueue < 0 {
		cfg.MaxQueue = 0
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	self := address.FromPubKey(cfg.Hotkey.Public().(ed25519.PublicKey))
	key, err := e2e.DeriveKey(cfg.Hotkey)
	if err != nil {
		return nil, err
	}
	return &Miner{cfg: cfg, self: self, verifier: wire.NewVerifier(self, cfg.Allow, cfg.MaxBody),
		slots: make(chan struct{}, cfg.MaxConcurrent), log: cfg.Logger, e2eKey: key,
		envelopes: wire.NewReplayCache(2*e2e.MaxAge, EnvelopeCachePerSigner, EnvelopeCacheTotal), now: time.Now}, nil
}

// maxTokens is the largest max_tokens the miner accepts.
func (m *Miner) maxTokens() int {
	limit := openai.MaxTokensCap
	if tl, ok := m.cfg.Backend.(TokenLimiter); ok {
		if n := tl.MaxTokensLimit(); n > 0 && n < limit {
			limit = n
		}
	}
	return limit
}

// Address is the miner's hotkey address.
func (m *Miner) Address() address.Address { return m.self }

// E2EPublicKey is the X25519 key clients seal requests to; publish it with
// neuron serve.
func (m *Miner) E2EPublicKey() []byte { return m.e2eKey.PublicKey() }

// Handler routes the miner's endpoints. Completions are signed; health and
// metrics are not (they reveal nothing about requests).
func (m *Miner) Handler() http.Handler {
	mux := http.NewServeMux()
	signed := http.NewServeMux()
	signed.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { m.complete(w, r, true) })
	signed.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) { m.complete(w, r, false) })
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.metrics.requests.Add(1)
		signed.ServeHTTP(w, r)
	})
	mux.Handle("/v1/", m.verifier.Middleware(m.log, counted))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"status": "ok", "hotkey": m.self.String(), "model_id": m.cfg.Backend.ModelID()})
	})
	mux.HandleFunc("GET /metrics", m.writeMetrics)
	return mux
}

// acquire takes a slot, waiting in a bounded queue; false means overloaded.
func (m *Miner) acquire(ctx context.Context) bool {
	select {
	case m.slots <- struct{}{}:
		return true
	default:
	}
	if m.waiting.Add(1) > int64(m.cfg.MaxQueue) {
		m.waiting.Add(-1)
		return false
	}
	defer m.waiting.Add(-1)
	select {
	case m.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// call is one request being served.
type call struct {
	req  *openai.ChatRequest
	chat bool
	// body is the request body as received, which the receipt covers.
	body []byte
	// reply seals the answer of an end-to-end encrypted request; nil: clear.
	reply *e2e.Reply
	// env is the sealed request's envelope; nil: clear.
	env *e2e.Envelope
}

// seal is what goes on the wire for one response message.
func (c *call) seal(raw []byte, final bool) []byte {
	if c.reply == nil {
		return raw
	}
	return c.reply.Seal(raw, final)
}

func (m *Miner) complete(w http.ResponseWriter, r *http.Request, chat bool) {
	body, _ := io.ReadAll(r.Body) // already verified and size-capped by the middleware
	c, err := m.decode(body, chat)
	if err != nil {
		m.metrics.rejected.Add(1)
		wire.WriteError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	if !m.acquire(r.Context()) {
		m.metrics.overloaded.Add(1)
		w.Header().Set("Retry-After", "1")
		wire.WriteError(w, http.StatusServiceUnavailable, "overloaded_error", "the miner is at capacity; retry shortly")
		return
	}
	defer func() { <-m.slots }()
	if c.env != nil {
		// Recorded only once the miner commits to answering, so a busy
		// refusal does not burn the envelope; checked and recorded in one
		// step, so two concurrent replays cannot both pass.
		signer, _ := wire.SignerFrom(r.Context())
		if err := m.envelopes.Add(signer.Address.String(), c.env.ID(), m.now()); err != nil {
			m.metrics.rejected.Add(1)
			if errors.Is(err, wire.ErrReplay) {
				wire.WriteError(w, http.StatusConflict, "invalid_request_error", ErrReplayedEnvelope.Error())
				return
			}
			w.Header().Set("Retry-After", "1")
			wire.WriteError(w, http.StatusServiceUnavailable, "overloaded_error", err.Error())
			return
		}
	}
	m.metrics.inFlight.Add(1)
	defer m.metrics.inFlight.Add(-1)
	if c.req.Stream {
		m.stream(w, r, c)
		return
	}
	m.plain(w, r, c)
}

// decode reads a request, opening it first if it is sealed to this miner.
// A sealed request's clear fields (model, max_tokens, stream) are the ones
// the gateway priced, so they override whatever the sealed request says.
func (m *Miner) decode(body []byte, chat bool) (*call, error) {
	c := &call{chat: chat, body: body}
	inner := body
	env, err := e2e.Detect(body)
	if err != nil {
		return nil, err
	}
	limit := m.maxTokens()
	if env != nil {
		if err := env.CheckFresh(m.now()); err != nil {
			return nil, err
		}
		// The gateway priced env.MaxTokens; refuse a bound the model cannot
		// honour before spending anything on opening it.
		if env.MaxTokens > limit {
			return nil, fmt.Errorf("envelope max_tokens %d is over this model's limit of %d", env.MaxTokens, limit)
		}
		if inner, c.reply, err = m.e2eKey.Open(m.self, env); err != nil {
			return nil, err
		}
		c.env = env
	}
	req, err := openai.Decode(inner)
	if err != nil {
		return nil, err
	}
	if env != nil {
		req.Model, req.Stream = env.Model, env.Stream
		if req.MaxTokens == nil || *req.MaxTokens > env.MaxTokens {
			req.MaxTokens = &env.MaxTokens
		}
	}
	if err := req.Validate(chat); err != nil {
		return nil, err
	}
	if req.MaxTokens != nil && *req.MaxTokens > limit {
		return nil, fmt.Errorf("'max_tokens' %d is over this model's limit of %d", *req.MaxTokens, limit)
	}
	c.req = req
	return c, nil
}

func (m *Miner) fail(w http.ResponseWriter, err error) {
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusServiceUnavailable {
		// A backend at capacity (the builtin's KV budget) is overload, not failure.
		m.metrics.overloaded.Add(1)
	} else {
		m.metrics.failed.Add(1)
	}
	if he != nil {
		if he.RetryAfter != "" {
			w.Header().Set("Retry-After", he.RetryAfter)
		}
		wire.WriteError(w, he.Status, he.Type, he.Message)
		return
	}
	m.log.Warn("completion failed", "err", err.Error())
	wire.WriteError(w, http.StatusInternalServerError, "server_error", "the miner failed to complete the request")
}

// receiptPrice is what a request's tokens cost, checked: a count or price
// large enough to overflow is an error, never a wrapped (small) price.
func (m *Miner) receiptPrice(res *Result) (uint64, error) {
	if res.PromptTokens < 0 || res.CompletionTokens < 0 {
		return 0, fmt.Errorf("negative token count %d + %d", res.PromptTokens, res.CompletionTokens)
	}
	tokens, err := agr.Add(uint64(res.PromptTokens), uint64(res.CompletionTokens))
	if err != nil {
		return 0, err
	}
	return agr.Price(m.cfg.PricePer1K, tokens)
}

func (m *Miner) receipt(reqBody []byte, responseHash string, res *Result, price uint64, start time.Time, ttft time.Duration) *wire.Receipt {
	rc := &wire.Receipt{
		RequestHash: wire.Hash(reqBody), ResponseHash: responseHash, ModelID: m.cfg.Backend.ModelID(),
		PromptTokens: res.PromptTokens, CompletionTokens: res.CompletionTokens,
		TTFTMillis: ttft.Milliseconds(), DurationMillis: time.Since(start).Milliseconds(),
		Price: price,
	}
	wire.SignReceipt(m.cfg.Hotkey, rc)
	m.metrics.promptTokens.Add(int64(res.PromptTokens))
	m.metrics.completionTokens.Add(int64(res.CompletionTokens))
	return rc
}

func completionID() string { return "cmpl-" + wire.NewNonce() }

func (m *Miner) plain(w http.ResponseWriter, r *http.Request, c *call) {
	req, chat := c.req, c.chat
	start := time.Now()
	var ttft time.Duration
	var text []byte
	var lps []openai.TokenLogprob
	res, err := m.cfg.Backend.Complete(r.Context(), req, chat, func(p Piece) error {
		if ttft == 0 {
			ttft = time.Since(start)
		}
		text = append(text, p.Text...)
		if p.Logprob != nil {
			lps = append(lps, *p.Logprob)
		}
		return nil
	})
	if err != nil {
		m.fail(w, err)
		return
	}
	price, err := m.receiptPrice(res)
	if err != nil {
		m.fail(w, fmt.Errorf("price the receipt: %w", err))
		return
	}
	finish := res.FinishReason
	choice := openai.Choice{FinishReason: &finish}
	if req.WantsLogprobs() {
		choice.Logprobs = &openai.Logprobs{Content: lps}
	}
	out := openai.Response{ID: completionID(), Created: time.Now().Unix(), Model: req.Model,
		Usage:         &openai.Usage{PromptTokens: res.PromptTokens, CompletionTokens: res.CompletionTokens, TotalTokens: res.PromptTokens + res.CompletionTokens},
		AgoraTokenIDs: res.TokenIDs, AgoraPromptTokenIDs: res.PromptTokenIDs}
	if chat {
		out.Object = "chat.completion"
		choice.Message = &openai.Message{Role: "assistant", Content: string(text)}
	} else {
		out.Object = "text_completion"
		s := string(text)
		choice.Text = &s
	}
	out.Choices = []openai.Choice{choice}
	raw, _ := json.Marshal(out)
	raw = c.seal(raw, true)
	rc := m.receipt(c.body, wire.Hash(raw), res, price, start, ttft)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(wire.HeaderReceipt, rc.EncodeHeader())
	w.Write(raw)
}

func (m *Miner) stream(w http.ResponseWriter, r *http.Request, c *call) {
	req, chat := c.req, c.chat
	flusher, _ := w.(http.Flusher)
	start := time.Now()
	var ttft time.Duration
	var h wire.StreamHasher
	id, created := completionID(), time.Now().Unix()
	object := "chat.completion.chunk"
	if !chat {
		object = "text_completion"
	}
	started := false
	send := func(v any, final bool) error {
		raw, _ := json.Marshal(v)
		raw = c.seal(raw, final)
		h.Add(raw)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", raw); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	chunk := func(text string, lp *openai.TokenLogprob, finish *string, ids []int) openai.Response {
		c := openai.Choice{FinishReason: finish}
		if chat {
			c.Delta = &openai.Message{Content: text}
			if !started {
				c.Delta.Role = "assistant"
			}
		} else {
			c.Text = &text
		}
		if lp != nil {
			c.Logprobs = &openai.Logprobs{Content: []openai.TokenLogprob{*lp}}
		}
		return openai.Response{ID: id, Object: object, Created: created, Model: req.Model, Choices: []openai.Choice{c}, AgoraTokenIDs: ids}
	}
	// A multi-byte character can be split across tokens; hold its first bytes
	// back until it is complete, or JSON would turn each half into U+FFFD.
	var held []byte
	res, err := m.cfg.Backend.Complete(r.Context(), req, chat, func(p Piece) error {
		if !started {
			ttft = time.Since(start)
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusOK)
		}
		held = append(held, p.Text...)
		cut := completeUTF8(held)
		text := string(held[:cut])
		held = append(held[:0], held[cut:]...)
		err := send(chunk(text, p.Logprob, nil, p.TokenIDs), false)
		started = true
		return err
	})
	if err != nil {
		if !started {
			m.fail(w, err)
			return
		}
		// Headers are gone: end the stream with an error event instead.
		m.metrics.failed.Add(1)
		send(map[string]any{"error": map[string]string{"message": "the miner failed mid-stream", "type": "server_error"}}, true)
		return
	}
	price, err := m.receiptPrice(res)
	if err != nil {
		m.log.Warn("receipt price", "err", err.Error())
		if !started {
			m.fail(w, err)
			return
		}
		m.metrics.failed.Add(1)
		send(map[string]any{"error": map[string]string{"message": "the miner could not price the answer", "type": "server_error"}}, true)
		return
	}
	if !started {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
	}
	finish := res.FinishReason
	final := chunk(string(held), nil, &finish, nil)
	final.Usage = &openai.Usage{PromptTokens: res.PromptTokens, CompletionTokens: res.CompletionTokens, TotalTokens: res.PromptTokens + res.CompletionTokens}
	final.AgoraPromptTokenIDs = res.PromptTokenIDs
	send(final, true)
	io.WriteString(w, "data: [DONE]\n\n")
	h.Add([]byte("[DONE]"))
	wire.WriteReceiptEvent(w, m.receipt(c.body, h.Sum(), res, price, start, ttft))
	if flusher != nil {
		flusher.Flush()
	}
}

func (m *Miner) writeMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for _, c := range []struct {
		name, help, kind string
		v                int64
	}{
		{"agora_miner_requests_total", "Signed requests received.", "counter", m.metrics.requests.Load()},
		{"agora_miner_rejected_total", "Requests refused as invalid.", "counter", m.metrics.rejected.Load()},
		{"agora_miner_overloaded_total", "Requests refused at capacity.", "counter", m.metrics.overloaded.Load()},
		{"agora_miner_failed_total", "Requests the backend failed.", "counter", m.metrics.failed.Load()},
		{"agora_miner_prompt_tokens_total", "Prompt tokens processed.", "counter", m.metrics.promptTokens.Load()},
		{"agora_miner_completion_tokens_total", "Completion tokens served.", "counter", m.metrics.completionTokens.Load()},
		{"agora_miner_in_flight", "Requests being served.", "gauge", m.metrics.inFlight.Load()},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", c.name, c.help, c.name, c.kind, c.name, strconv.FormatInt(c.v, 10))
	}
}

// completeUTF8 is the length of b's prefix that ends on a character boundary:
// it excludes only a trailing sequence that more bytes could still complete.
func completeUTF8(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

// NewHTTPServer is the HTTP server a miner (or gateway) runs behind:
// httpserve's defaults (HTTP/1.1 and h2c, header and per-request body read
// timeouts, idle timeout, header size and connection caps). Writes have no
// timeout, since streams last as long as generation does; the request
// context ends them. Serve it with its own Serve method, which applies the
// connection cap.
func NewHTTPServer(h http.Handler) *httpserve.Server {
	return httpserve.New(h, httpserve.Options{})
}
