// Package gateway is Agora's front door: an OpenAI-compatible API that routes
// each request to a subnet's miners by validator scores, retries elsewhere
// before the first byte, and returns every answer with the serving miner's
// verified receipt. It never logs prompts or completions.
//
// It is a server: it builds on client, wire, e2e, x402, route and httpserve,
// and must not import the chain application (chain, chain/state) or the
// validator and miner it sits next to; scored miners reach it as
// route.Candidate values.
package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/e2e"
	"github.com/agoranet/agora/gateway/chatui"
	"github.com/agoranet/agora/openai"
	"github.com/agoranet/agora/route"
	"github.com/agoranet/agora/wire"
	"github.com/agoranet/agora/x402"
	"github.com/prometheus/client_golang/prometheus"
)

// FailoverEvent is the SSE event that marks where another miner continues a
// stream the first one failed part-way (see resumption).
const FailoverEvent = "agora-failover"

// Headers the gateway adds or reads.
const (
	HeaderMiner   = "Agora-Miner"          // hotkey that served the answer
	HeaderExclude = "Agora-Exclude-Miners" // comma-separated hotkeys the client refuses
)

// Config configures a gateway.
type Config struct {
	Key        ed25519.PrivateKey // signs wire requests to miners
	Candidates func(ctx context.Context) ([]route.Candidate, error)
	Model      string // the served model name: what /v1/models lists and requests may name (besides ModelAlias)
	HTTP       *http.Client
	MaxBody    int64
	Attempts   int // miners tried before giving up
	Logger     *slog.Logger
	// Payments, when set, makes every completion pay through a channel
	// (HTTP 402 flow). Nil serves for free (devnet).
	Payments *Payments
	// Limits cap each payer's concurrency and request rate.
	Limits Limits
	// MaxTokens bounds the completion tokens one request may ask for, clear
	// or sealed: the served model's context. Zero, or anything above
	// openai.MaxTokensCap, is openai.MaxTokensCap.
	MaxTokens int
	// Metrics are served on GET /metrics (nil: a fresh set of the
	// gateway's own); Gatherers are served there too, such as the
	// metrics of the validator whose scores route this gateway.
	Metrics   *Metrics
	Gatherers []prometheus.Gatherer
	// ChainID, Netuid and ExplorerURL are what GET /v1/agora/info reports
	// (the chat page's defaults); a paid gateway's Payments fill in the
	// first two when they are empty.
	ChainID     string
	Netuid      uint32
	ExplorerURL string
}

// Gateway serves the OpenAI-compatible API.
type Gateway struct {
	cfg        Config
	wire       *wire.Client
	log        *slog.Logger
	limiter    *limiter // per payer: verified channel, or client address when free
	chainReads *limiter // per client address: chain reads before a voucher verifies

	metrics *Metrics

	priceMismatches atomic.Uint64

	servedMu sync.Mutex
	served   map[address.Address]uint64 // completion tokens per miner, verified answers only
}

// New makes a gateway.
func New(cfg Config) *Gateway {
	if cfg.HTTP == nil {
		cfg.HTTP = wire.NewHTTPClient(10 * time.Minute)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxTokens <= 0 || cfg.MaxTokens > openai.MaxTokensCap {
		cfg.MaxTokens = openai.MaxTokensCap
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	return &Gateway{cfg: cfg, wire: wire.NewClient(cfg.Key, cfg.HTTP), log: cfg.Logger, metrics: cfg.Metrics,
		limiter: newLimiter(cfg.Limits), chainReads: newLimiter(cfg.Limits.chainReadLimits())}
}

// PriceMismatches counts verified receipts whose price disagreed with the
// gateway's own price of the tokens it could check (see billReceipt): a
// miner that counts or prices differently, or lies.
func (g *Gateway) PriceMismatches() uint64 { return g.priceMismatches.Load() }

// Metrics are the gateway's Prometheus metrics, served on GET /metrics.
func (g *Gateway) Metrics() *Metrics { return g.metrics }

// Handler routes the API, and GET /metrics, counting every request.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", g.metrics.Handler(g.cfg.Gatherers...))
	mux.HandleFunc("GET /v1/models", g.models)
	mux.HandleFunc("GET /v1/agora/miners", g.miners)
	mux.HandleFunc("GET /v1/agora/info", g.info)
	mux.Handle("GET /chat", chatui.Handler())
	mux.Handle("GET /chat/", chatui.Handler())
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { g.complete(w, r, true) })
	mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) { g.complete(w, r, false) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteError(w, http.StatusNotFound, "invalid_request_error", fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
	return g.metrics.instrument(mux)
}

// ModelAlias is the model name that means "whatever this gateway's subnet
// serves". Agora's own clients (the agent SDK, agora chat) send it, so they
// work against any subnet without first reading GET /v1/models.
const ModelAlias = "agora"

// serves reports whether a request naming model is for this gateway: the
// subnet's model under its served name (Config.Model) or ModelAlias. Any
// other name is refused rather than answered by a model the client did not
// ask for.
func (g *Gateway) serves(model string) bool {
	return model == ModelAlias || (g.cfg.Model != "" && model == g.cfg.Model)
}

// modelNotFound answers like OpenAI does for a model it does not have: 404,
// type invalid_request_error, param "model", code model_not_found, so
// OpenAI clients raise their usual not-found error.
func (g *Gateway) modelNotFound(w http.ResponseWriter, model string) {
	msg := fmt.Sprintf("model %q is not served here; ask for %q", model, ModelAlias)
	if g.cfg.Model != "" {
		msg = fmt.Sprintf("model %q is not served here; this gateway serves %q (or ask for %q)", model, g.cfg.Model, ModelAlias)
	}
	var body struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Param   string `json:"param"`
			Code    string `json:"code"`
		} `json:"error"`
	}
	body.Error.Message = msg
	body.Error.Type, body.Error.Param, body.Error.Code = "invalid_request_error", "model", "model_not_found"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_ = json.NewEncoder(w).Encode(body)
}

// countServed adds a verified answer's completion tokens to its miner's
// total, bounded as billing bounds them (by max_tokens and, where the
// gateway saw them, the tokens it relayed).
func (g *Gateway) countServed(c route.Candidate, rc *wire.Receipt, a attempt, relayed int) {
	n := min(rc.CompletionTokens, a.maxTokens)
	if relayed >= 0 {
		n = min(n, relayed)
	}
	g.servedMu.Lock()
	defer g.servedMu.Unlock()
	if g.served == nil {
		g.served = map[address.Address]uint64{}
	}
	g.served[c.Hotkey] += uint64(n) // a count, not money: a uint64 of tokens does not wrap in practice
}

// tokensServed is the completion tokens miner has served through this
// gateway with a verified receipt, since it started.
func (g *Gateway) tokensServed(miner address.Address) uint64 {
	g.servedMu.Lock()
	defer g.servedMu.Unlock()
	return g.served[miner]
}

func (g *Gateway) models(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": []map[string]any{
		{"id": g.cfg.Model, "object": "model", "created": 0, "owned_by": "agora"},
	}})
}

// MinerInfo is one routable miner as GET /v1/agora/miners lists it. A
// client sealing a request end to end picks one here and reads its X25519
// key from the chain, not from the gateway.
type MinerInfo struct {
	UID    int     `json:"uid"`
	Hotkey string  `json:"hotkey"`
	Score  float64 `json:"score"`
	// Checks and FailedChecks are the validator's challenges of the miner
	// that verified and that did not; TokensServed the completion tokens it
	// served through this gateway with a verified receipt. They are what the
	// explorer shows on a miner's page as seen by this validator.
	Checks       int    `json:"checks"`
	FailedChecks int    `json:"failed_checks"`
	TokensServed uint64 `json:"tokens_served"`
}

func (g *Gateway) miners(w http.ResponseWriter, r *http.Request) {
	cands, err := g.cfg.Candidates(r.Context())
	if err != nil {
		wire.WriteError(w, http.StatusServiceUnavailable, "overloaded_error", "no miners known yet")
		return
	}
	out := []MinerInfo{}
	for _, c := range cands {
		if c.Endpoint != "" && c.Score > 0 {
			out = append(out, MinerInfo{UID: c.UID, Hotkey: c.Hotkey.String(), Score: c.Score,
				Checks: c.Checks, FailedChecks: c.FailedChecks, TokensServed: g.tokensServed(c.Hotkey)})
		}
	}
	slices.SortFunc(out, func(a, b MinerInfo) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		return a.UID - b.UID
	})
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": out})
}

// order ranks candidates for one request: the client's exclusions removed,
// then a draw weighted by score, so the best miners get most traffic and
// the rest still get some.
func order(cands []route.Candidate, exclude map[address.Address]bool, rng *rand.Rand) []route.Candidate {
	var pool []route.Candidate
	for _, c := range cands {
		if c.Endpoint != "" && c.Score > 0 && !exclude[c.Hotkey] {
			pool = append(pool, c)
		}
	}
	var out []route.Candidate
	for len(pool) > 0 {
		var total float64
		for _, c := range pool {
			total += c.Score
		}
		x := rng.Float64() * total
		i := 0
		for ; i < len(pool)-1; i++ {
			if x -= pool[i].Score; x <= 0 {
				break
			}
		}
		out = append(out, pool[i])
		pool = slices.Delete(pool, i, i+1)
	}
	return out
}

func parseExclude(h string) (map[address.Address]bool, error) {
	out := map[address.Address]bool{}
	for _, s := range strings.Split(h, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		a, err := address.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", HeaderExclude, err)
		}
		out[a] = true
	}
	return out, nil
}

// errRetry marks a failure that another miner may not have.
var errRetry = errors.New("try another miner")

func (g *Gateway) complete(w http.ResponseWriter, r *http.Request, chat bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBody))
	if err != nil {
		wire.WriteError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", fmt.Sprintf("request body over %d bytes", g.cfg.MaxBody))
		return
	}
	req, sealed, err := decodeRequest(body, chat)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	if !g.serves(req.Model) {
		g.modelNotFound(w, req.Model)
		return
	}
	maxTokens, err := g.maxTokens(req)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	exclude, err := parseExclude(r.Header.Get(HeaderExclude))
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	var pay *payState
	if p := g.cfg.Payments; p != nil {
		var release func()
		var ok bool
		if pay, w, release, ok = g.admit(w, r, p, body, maxTokens); !ok {
			return
		}
		defer release()
		// Whatever happens, the reservation is settled, at what the client
		// got: a request no miner answered costs nothing, one the client
		// walked away from costs the tokens it was sent.
		defer func() {
			if _, err := pay.finish(); err != nil && !errors.Is(err, errSettled) {
				g.log.Error("settling a paid request failed", "channel", pay.channel, "err", err.Error())
			}
		}()
	} else {
		release, wait := g.limiter.acquire(clientKey(r))
		if release == nil {
			tooMany(w, wait, "too many requests from this client; slow down")
			return
		}
		defer release()
	}
	cands, err := g.cfg.Candidates(r.Context())
	if err != nil {
		wire.WriteError(w, http.StatusServiceUnavailable, "overloaded_error", "no miners known yet")
		return
	}
	ranked := order(cands, exclude, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1)))
	if sealed != nil {
		// Only the miner it is sealed to can read it.
		ranked = slices.DeleteFunc(ranked, func(c route.Candidate) bool { return c.Hotkey != sealed.Miner() })
		if len(ranked) == 0 {
			w.Header().Set("Retry-After", "5")
			wire.WriteError(w, http.StatusServiceUnavailable, "overloaded_error",
				fmt.Sprintf("miner %s, which the request is sealed to, is not routable here; seal it to one from GET /v1/agora/miners", sealed.Sealed.Miner))
			return
		}
	}
	if len(ranked) == 0 {
		w.Header().Set("Retry-After", "5")
		wire.WriteError(w, http.StatusServiceUnavailable, "overloaded_error", "no scored miner is available for this request")
		return
	}
	path := "/v1/chat/completions"
	if !chat {
		path = "/v1/completions"
	}
	var last *http.Response
	var lastBody []byte
	// resume is set once a stream has failed part-way and is being continued
	// on another miner: the client already has the status and some events.
	var resume *resumption
	if sealed == nil && !chat && req.Stream {
		resume = &resumption{req: *req}
		resume.req.MaxTokens = &maxTokens
	}
	for i, c := range ranked {
		if i == g.cfg.Attempts {
			break
		}
		if r.Context().Err() != nil {
			return // the client left: nobody to answer
		}
		a := attempt{body: body, maxTokens: maxTokens, sealed: sealed != nil}
		if resume != nil && resume.started {
			var ok bool
			if a.body, a.maxTokens, ok = resume.next(); !ok {
				break // nothing left to generate, or nothing to send
			}
		}
		err := g.try(w, r.Context(), c, path, a, req.Stream, pay, resume)
		if err == nil {
			return
		}
		var busy *busyError
		if errors.As(err, &busy) {
			last, lastBody = busy.resp, busy.body
		}
		if !errors.Is(err, errRetry) {
			return // the response was already written
		}
		// Only the reason is logged: never the request or the answer.
		g.log.Info("miner failed, trying another", "miner", c.Hotkey.String(), "reason", err.Error())
	}
	if resume != nil && resume.started {
		streamError(w, "every miner failed during the stream; the answer is incomplete")
		g.endStream(w, pay)
		return
	}
	if last != nil {
		// Every miner was busy: pass the last one's status and Retry-After on.
		if ra := last.Header.Get("Retry-After"); ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(last.StatusCode)
		w.Write(lastBody)
		return
	}
	wire.WriteError(w, http.StatusBadGateway, "upstream_error", "no miner could answer; try again")
}

// maxTokens is the completion tokens a request may generate: its
// max_tokens (clear, or the sealed envelope's), bounded by the model's
// context, so that its maximum price is bounded too.
func (g *Gateway) maxTokens(req *openai.ChatRequest) (int, error) {
	if req.MaxTokens == nil {
		return min(openai.DefaultMaxTokens, g.cfg.MaxTokens), nil
	}
	if n := *req.MaxTokens; n < 1 || n > g.cfg.MaxTokens {
		return 0, fmt.Errorf("'max_tokens' must be between 1 and %d, this model's limit", g.cfg.MaxTokens)
	}
	return *req.MaxTokens, nil
}

// admit takes payment for a request before any miner sees it. The order
// matters: the voucher is verified first (any chain read it needs is paid
// for from the client address's budget, since the sender is still
// anonymous), then the verified payer's limits apply, and only then is the
// voucher recorded, so a request refused by a limit leaves nothing behind.
// It returns the request's payment, the writer to answer through (which
// holds the answer back until the voucher is on disk) and the limiter's
// release, or false once it has answered.
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request, p *Payments, body []byte, maxTokens int) (*payState, http.ResponseWriter, func(), bool) {
	maxCharge, err := x402.MaxCharge(p.PricePer1K, len(body), maxTokens)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "invalid_request_error",
			fmt.Sprintf("this request's maximum price does not fit in an amount (%v); lower max_tokens or send less", err))
		return nil, nil, nil, false
	}
	auth, err := p.verify(r.Context(), r, g.chainReads.gate(clientKey(r)))
	if le := (*limitedError)(nil); errors.As(err, &le) {
		tooMany(w, le.wait, "too many payments this gateway could not verify from this client; slow down")
		return nil, nil, nil, false
	}
	if err != nil {
		p.paymentRequired(w, r, maxCharge, err)
		return nil, nil, nil, false
	}
	release, wait := g.limiter.acquire(channelKey(auth.channel))
	if release == nil {
		tooMany(w, wait, "too many requests on this channel; slow down")
		return nil, nil, nil, false
	}
	durable, err := auth.accept(maxCharge)
	if err != nil {
		release()
		p.paymentRequired(w, r, maxCharge, err)
		return nil, nil, nil, false
	}
	pay := &payState{p: p, channel: auth.channel, payer: auth.payer, provisional: maxCharge, metrics: g.metrics}
	// The voucher's fsync runs while the miner works; nothing reaches the
	// client until it is done.
	return pay, &durableWriter{ResponseWriter: w, wait: durable}, release, true
}

// tooMany answers 429 with when to retry.
func tooMany(w http.ResponseWriter, wait time.Duration, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	wire.WriteError(w, http.StatusTooManyRequests, "rate_limit_error", msg)
}

// decodeRequest reads a completion request. A request sealed end to end
// (see package e2e) is not readable here: only its clear envelope is, which
// is all routing and pricing need.
func decodeRequest(body []byte, chat bool) (*openai.ChatRequest, *e2e.Envelope, error) {
	env, err := e2e.Detect(body)
	if err != nil {
		return nil, nil, err
	}
	if env != nil {
		return &openai.ChatRequest{Model: env.Model, MaxTokens: &env.MaxTokens, Stream: env.Stream}, env, nil
	}
	req, err := openai.Decode(body)
	if err == nil {
		err = req.Validate(chat)
	}
	return req, nil, err
}

type busyError struct {
	resp *http.Response
	body []byte
}

func (b *busyError) Error() string { return "miner busy: " + b.resp.Status }
func (b *busyError) Unwrap() error { return errRetry }

// attempt is one miner's try at a request.
type attempt struct {
	body      []byte
	maxTokens int  // the completion tokens it may generate (and be billed for)
	sealed    bool // its answer is opaque to the gateway
}

// try sends the request to one miner. It returns an error wrapping errRetry
// when nothing has been written to the client yet.
func (g *Gateway) try(w http.ResponseWriter, ctx context.Context, c route.Candidate, path string, a attempt, stream bool, pay *payState, resume *resumption) error {
	resp, err := g.wire.Post(ctx, strings.TrimRight(c.Endpoint, "/")+path, c.Hotkey, a.body)
	if err != nil {
		return fmt.Errorf("%w: %w", errRetry, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return &busyError{resp: resp, body: b}
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusRequestEntityTooLarge || resp.StatusCode == http.StatusUnprocessableEntity:
		// The request itself is at fault: every miner would say the same.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(HeaderMiner, c.Hotkey.String())
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, io.LimitReader(resp.Body, 64<<10))
		return nil
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%w: miner answered %s", errRetry, resp.Status)
	}
	if !stream {
		out, rc, err := wire.ReadPlain(resp, c.Hotkey, a.body, 16<<20)
		if err != nil {
			return fmt.Errorf("%w: %w", errRetry, err)
		}
		if d, ok := w.(*durableWriter); ok && !d.ready() {
			return nil // answered 503: the voucher is not on disk, so nothing is served or charged
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(HeaderMiner, c.Hotkey.String())
		w.Header().Set(wire.HeaderReceipt, rc.EncodeHeader())
		relayed := plainTokens(out, a.sealed) // decodes the whole answer: once
		g.countServed(c, rc, a, relayed)
		if pay != nil {
			g.billReceipt(pay, c, rc, a, relayed)
			if pr, err := pay.finish(); err == nil {
				w.Header().Set(x402.HeaderPaymentResponse, x402.Encode(pr))
			} else {
				g.log.Error("settling a paid request failed", "channel", pay.channel, "err", err.Error())
			}
		}
		w.Write(out)
		return nil
	}
	return g.relay(w, resp, c, a, pay, resume)
}

// relay streams a miner's events to the client as they arrive, then checks
// the receipt. Once bytes have reached the client a failure cannot be retried
// transparently, so it ends the stream with an OpenAI-shaped error event.
//
// Whatever ends the stream, the payer is billed for this attempt: at the
// gateway's price of the receipt's tokens if the receipt verifies, else for
// the tokens the client was sent (see meter), so walking away mid-stream is
// not free. A miner whose stream never verified earns nothing from it; the
// payer still pays for what it received.
func (g *Gateway) relay(w http.ResponseWriter, resp *http.Response, c route.Candidate, a attempt, pay *payState, resume *resumption) error {
	flusher, _ := w.(http.Flusher)
	started := resume != nil && resume.started
	if started {
		// Tell the client where the continuation starts: the receipt at the
		// end covers only what follows this event.
		fmt.Fprintf(w, "event: %s\ndata: {\"miner\":%q}\n\n", FailoverEvent, c.Hotkey.String())
	}
	start := func() {
		if started {
			return
		}
		started = true
		if resume != nil {
			resume.started = true
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set(HeaderMiner, c.Hotkey.String())
		w.WriteHeader(http.StatusOK)
	}
	m := meter{sealed: a.sealed, max: a.maxTokens}
	billed := false
	defer func() {
		if !billed {
			pay.bill(uint64(m.delivered()))
		}
	}()
	rc, sum, err := wire.ReadStream(resp.Body, func(e wire.Event) error {
		start()
		var b bytes.Buffer
		if e.Name != "" {
			fmt.Fprintf(&b, "event: %s\n", e.Name)
		}
		fmt.Fprintf(&b, "data: %s\n\n", e.Data)
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
		// Counted only once written: the client pays for what it was sent.
		resume.record(e.Data, m.add(e.Data))
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	})
	if err == nil {
		err = rc.Verify(c.Hotkey, a.body, sum)
	}
	if err != nil {
		if !started || resume != nil {
			// Not started: retry cleanly. Resumable: the next miner
			// continues from the text already sent.
			return fmt.Errorf("%w: %w", errRetry, err)
		}
		streamError(w, "the miner failed during the stream: "+err.Error())
		pay.bill(uint64(m.delivered()))
		billed = true // now, so the payment event below includes it
		g.endStream(w, pay)
		return nil
	}
	billed = true
	start()
	wire.WriteReceiptEvent(w, rc)
	g.countServed(c, rc, a, m.delivered())
	if pay != nil {
		g.billReceipt(pay, c, rc, a, m.delivered())
	}
	g.endStream(w, pay)
	if flusher != nil {
		flusher.Flush()
	}
	return nil
}

// endStream settles a paid stream and ends it with the payment event.
func (g *Gateway) endStream(w http.ResponseWriter, pay *payState) {
	if pay == nil {
		return
	}
	pr, err := pay.finish()
	if err != nil {
		g.log.Error("settling a paid request failed", "channel", pay.channel, "err", err.Error())
		return
	}
	raw, _ := json.Marshal(pr)
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", x402.PaymentEvent, raw)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// billReceipt bills a verified attempt at the gateway's own price, never the
// miner's: the receipt's token counts, bounded by what the gateway can check
// (prompt tokens by the request's bytes — no vocabulary has a token under a
// byte — and completion tokens by the attempt's max_tokens and, where it
// saw them, the tokens it relayed; relayed < 0 means it could not see
// them). A receipt whose price disagrees is flagged, with its numbers only.
func (g *Gateway) billReceipt(pay *payState, c route.Candidate, rc *wire.Receipt, a attempt, relayed int) {
	prompt := min(rc.PromptTokens, len(a.body))
	completion := min(rc.CompletionTokens, a.maxTokens)
	if relayed >= 0 {
		completion = min(completion, relayed)
	}
	// Both are non-negative ints: their sum fits in uint64.
	tokens := uint64(prompt) + uint64(completion)
	price, err := agr.Price(pay.p.PricePer1K, tokens)
	if err != nil || price != rc.Price {
		g.priceMismatches.Add(1)
		g.log.Warn("a miner's receipt disagrees with the gateway's price; charging the gateway's",
			"miner", c.Hotkey.String(), "receipt_price", rc.Price, "gateway_price", price,
			"receipt_prompt_tokens", rc.PromptTokens, "receipt_completion_tokens", rc.CompletionTokens,
			"billed_prompt_tokens", prompt, "billed_completion_tokens", completion)
	}
	pay.bill(tokens)
}

// plainTokens is how many completion tokens a plain answer shows (its
// agora_token_ids), or -1 when the gateway cannot tell (sealed, or a
// backend that reports no ids).
func plainTokens(body []byte, sealed bool) int {
	if sealed {
		return -1
	}
	var out openai.Response
	if json.Unmarshal(body, &out) != nil || len(out.AgoraTokenIDs) == 0 {
		return -1
	}
	return len(out.AgoraTokenIDs)
}

// meter counts the completion tokens a stream has delivered, from what the
// gateway can see. A clear event carries its token ids (agora_token_ids);
// one without ids that carries text is one token (OpenAI-style upstreams
// stream a token per chunk, and a multi-token chunk is billed as one, to
// the payer's benefit). A sealed event is opaque, but a miner sends one per
// token plus a closing one before [DONE], so each sealed event counts one
// except the last before [DONE]; a client that leaves right after that
// closing event pays for at most one token too many. The count never
// exceeds the attempt's max_tokens.
type meter struct {
	sealed  bool
	max     int
	tokens  int
	pending bool // sealed: the latest event, not yet known not to be the closing one
}

// add counts one delivered event and returns the tokens it carried.
func (m *meter) add(data []byte) int {
	if string(data) == "[DONE]" {
		m.pending = false
		return 0
	}
	if m.sealed {
		if m.pending {
			m.tokens = min(m.tokens+1, m.max)
		}
		m.pending = true
		return 0
	}
	var chunk openai.Response
	if json.Unmarshal(data, &chunk) != nil {
		return 0
	}
	n := chunkTokens(&chunk)
	m.tokens = min(m.tokens+n, m.max)
	return n
}

// delivered is the tokens the client has been sent.
func (m *meter) delivered() int {
	n := m.tokens
	if m.pending {
		n++
	}
	return min(n, m.max)
}

// chunkTokens is the completion tokens one clear stream chunk carries. The
// miner's closing chunk (finish_reason set, no ids) carries none, even when
// it flushes the bytes of a character split across tokens.
func chunkTokens(c *openai.Response) int {
	if len(c.AgoraTokenIDs) > 0 {
		return len(c.AgoraTokenIDs)
	}
	for _, ch := range c.Choices {
		if ch.FinishReason != nil {
			continue
		}
		if (ch.Text != nil && *ch.Text != "") || (ch.Delta != nil && ch.Delta.Content != "") || ch.Logprobs != nil {
			return 1
		}
	}
	return 0
}

// durableWriter holds back a paid response until the voucher paying for it
// is on disk. If it cannot be made durable the client gets an error instead
// of the answer, so nothing is served that the gateway could not claim.
type durableWriter struct {
	http.ResponseWriter
	wait   Durable
	waited bool
	failed bool
}

func (d *durableWriter) ready() bool {
	if !d.waited {
		d.waited = true
		if err := d.wait(); err != nil {
			d.failed = true
			clear(d.ResponseWriter.Header())
			wire.WriteError(d.ResponseWriter, http.StatusServiceUnavailable, "server_error", "the gateway could not record the payment; try again later")
		}
	}
	return !d.failed
}

func (d *durableWriter) WriteHeader(code int) {
	if d.ready() {
		d.ResponseWriter.WriteHeader(code)
	}
}

func (d *durableWriter) Write(b []byte) (int, error) {
	if !d.ready() {
		return 0, errors.New("payment not recorded")
	}
	return d.ResponseWriter.Write(b)
}

func (d *durableWriter) Flush() {
	if f, ok := d.ResponseWriter.(http.Flusher); ok && d.ready() {
		f.Flush()
	}
}

// streamError ends a stream whose status is already sent with an
// OpenAI-shaped error event.
func streamError(w http.ResponseWriter, msg string) {
	raw, _ := json.Marshal(map[string]any{"error": map[string]string{"type": "upstream_error", "message": msg}})
	fmt.Fprintf(w, "data: %s\n\n", raw)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// resumption continues a streamed /v1/completions request on another miner
// after one fails part-way: the prompt grows by the text the client already
// has and max_tokens shrinks by the tokens it was sent, so the client sees
// one uninterrupted completion. (Chat streams cannot be continued this way
// portably; they end with an error event instead.)
type resumption struct {
	req     openai.ChatRequest
	started bool // the client has the status line and some events
	sent    strings.Builder
	tokens  int
}

// record notes what an event gave the client: its text and its tokens.
func (r *resumption) record(data []byte, tokens int) {
	if r == nil {
		return
	}
	var chunk openai.Response
	if json.Unmarshal(data, &chunk) != nil {
		return
	}
	for _, c := range chunk.Choices {
		if c.Text != nil {
			r.sent.WriteString(*c.Text)
		}
	}
	r.tokens += tokens
}

// next is the continuation request and its max_tokens; false if nothing is
// left to generate.
func (r *resumption) next() ([]byte, int, bool) {
	maxTokens := openai.DefaultMaxTokens
	if r.req.MaxTokens != nil {
		maxTokens = *r.req.MaxTokens
	}
	left := maxTokens - r.tokens
	if left <= 0 {
		return nil, 0, false
	}
	cont := r.req
	cont.Prompt += r.sent.String()
	cont.MaxTokens = &left
	r.req, r.sent, r.tokens = cont, strings.Builder{}, 0
	body, err := json.Marshal(&cont)
	return body, left, err == nil
}
