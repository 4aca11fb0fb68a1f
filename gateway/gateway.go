// Package gateway is Agora's front door: an OpenAI-compatible API that routes
// each request to a subnet's miners by validator scores, retries elsewhere
// before the first byte, and returns every answer with the serving miner's
// verified receipt. It never logs prompts or completions.
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
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/e2e"
	"github.com/agoranet/agora/openai"
	"github.com/agoranet/agora/wire"
)

// Candidate is a miner the gateway may route to.
type Candidate struct {
	UID      int
	Hotkey   address.Address
	Endpoint string
	Score    float64
}

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
	Candidates func(ctx context.Context) ([]Candidate, error)
	Model      string // the model name /v1/models lists
	HTTP       *http.Client
	MaxBody    int64
	Attempts   int // miners tried before giving up
	Logger     *slog.Logger
	// Payments, when set, makes every completion pay through a channel
	// (HTTP 402 flow). Nil serves for free (devnet).
	Payments *Payments
	// Limits cap each payer's concurrency and request rate.
	Limits Limits
}

// Gateway serves the OpenAI-compatible API.
type Gateway struct {
	cfg     Config
	wire    *wire.Client
	log     *slog.Logger
	limiter *limiter
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
	return &Gateway{cfg: cfg, wire: wire.NewClient(cfg.Key, cfg.HTTP), log: cfg.Logger, limiter: newLimiter(cfg.Limits)}
}

// Handler routes the API.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", g.models)
	mux.HandleFunc("GET /v1/agora/miners", g.miners)
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { g.complete(w, r, true) })
	mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) { g.complete(w, r, false) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteError(w, http.StatusNotFound, "invalid_request_error", fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
	return mux
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
			out = append(out, MinerInfo{UID: c.UID, Hotkey: c.Hotkey.String(), Score: c.Score})
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
func order(cands []Candidate, exclude map[address.Address]bool, rng *rand.Rand) []Candidate {
	var pool []Candidate
	for _, c := range cands {
		if c.Endpoint != "" && c.Score > 0 && !exclude[c.Hotkey] {
			pool = append(pool, c)
		}
	}
	var out []Candidate
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
	exclude, err := parseExclude(r.Header.Get(HeaderExclude))
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	var pay *payState
	var channelID uint64
	if p := g.cfg.Payments; p != nil {
		// Identify the payer cheaply first, so limits apply before any work
		// on the voucher.
		if v, err := ParsePaymentSignature(r.Header.Get(HeaderPaymentSignature)); err == nil {
			channelID = v.ChannelId
		}
	}
	release, wait := g.limiter.acquire(payerKey(r, channelID))
	if release == nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		wire.WriteError(w, http.StatusTooManyRequests, "rate_limit_error", "too many requests from this payer; slow down")
		return
	}
	defer release()
	if p := g.cfg.Payments; p != nil {
		maxCharge := p.maxCharge(body, req)
		ch, durable, err := p.authorize(r.Context(), r, maxCharge)
		if err != nil {
			p.paymentRequired(w, maxCharge, err)
			return
		}
		pay = &payState{p: p, channel: ch, provisional: maxCharge}
		// The voucher's fsync runs while the miner works; nothing reaches
		// the client until it is done.
		w = &durableWriter{ResponseWriter: w, wait: durable}
		// Whatever happens, the provisional charge is settled; a request no
		// miner answered costs nothing.
		defer pay.finish(0)
	}
	cands, err := g.cfg.Candidates(r.Context())
	if err != nil {
		wire.WriteError(w, http.StatusServiceUnavailable, "overloaded_error", "no miners known yet")
		return
	}
	ranked := order(cands, exclude, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1)))
	if sealed != nil {
		// Only the miner it is sealed to can read it.
		ranked = slices.DeleteFunc(ranked, func(c Candidate) bool { return c.Hotkey != sealed.Miner() })
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
	}
	for i, c := range ranked {
		if i == g.cfg.Attempts {
			break
		}
		sendBody := body
		if resume != nil && resume.started {
			var ok bool
			if sendBody, ok = resume.next(); !ok {
				break // nothing left to generate, or nothing to send
			}
		}
		err := g.try(w, r.Context(), c, path, sendBody, req.Stream, pay, resume)
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

// try sends the request to one miner. It returns an error wrapping errRetry
// when nothing has been written to the client yet.
func (g *Gateway) try(w http.ResponseWriter, ctx context.Context, c Candidate, path string, body []byte, stream bool, pay *payState, resume *resumption) error {
	resp, err := g.wire.Post(ctx, strings.TrimRight(c.Endpoint, "/")+path, c.Hotkey, body)
	if err != nil {
		return fmt.Errorf("%w: %v", errRetry, err)
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
		out, rc, err := wire.ReadPlain(resp, c.Hotkey, body, 16<<20)
		if err != nil {
			return fmt.Errorf("%w: %v", errRetry, err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(HeaderMiner, c.Hotkey.String())
		w.Header().Set(wire.HeaderReceipt, rc.EncodeHeader())
		if pr, ok := pay.finish(rc.Price); ok {
			w.Header().Set(HeaderPaymentResponse, encodeHeader(pr))
		}
		w.Write(out)
		return nil
	}
	return g.relay(w, resp, c, body, pay, resume)
}

// relay streams a miner's events to the client as they arrive, then checks
// the receipt. Once bytes have reached the client a failure cannot be retried
// transparently, so it ends the stream with an OpenAI-shaped error event.
func (g *Gateway) relay(w http.ResponseWriter, resp *http.Response, c Candidate, body []byte, pay *payState, resume *resumption) error {
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
	rc, sum, err := wire.ReadStream(resp.Body, func(e wire.Event) error {
		start()
		resume.record(e.Data)
		var b bytes.Buffer
		if e.Name != "" {
			fmt.Fprintf(&b, "event: %s\n", e.Name)
		}
		fmt.Fprintf(&b, "data: %s\n\n", e.Data)
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	})
	if err == nil {
		err = rc.Verify(c.Hotkey, body, sum)
	}
	if err != nil {
		if !started || resume != nil {
			// Not started: retry cleanly. Resumable: the next miner
			// continues from the text already sent.
			return fmt.Errorf("%w: %v", errRetry, err)
		}
		streamError(w, "the miner failed during the stream: "+err.Error())
		return nil
	}
	start()
	wire.WriteReceiptEvent(w, rc)
	if pr, ok := pay.finish(rc.Price); ok {
		raw, _ := json.Marshal(pr)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", PaymentEvent, raw)
	}
	if flusher != nil {
		flusher.Flush()
	}
	return nil
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

// record notes what an event gave the client.
func (r *resumption) record(data []byte) {
	if r == nil {
		return
	}
	var chunk openai.Response
	if json.Unmarshal(data, &chunk) != nil {
		return
	}
	for _, c := range chunk.Choices {
		if c.Text != nil && *c.Text != "" {
			r.sent.WriteString(*c.Text)
			r.tokens += max(1, len(chunk.AgoraTokenIDs))
		}
	}
}

// next is the continuation request; false if nothing is left to generate.
func (r *resumption) next() ([]byte, bool) {
	maxTokens := openai.DefaultMaxTokens
	if r.req.MaxTokens != nil {
		maxTokens = *r.req.MaxTokens
	}
	left := maxTokens - r.tokens
	if left <= 0 {
		return nil, false
	}
	cont := r.req
	cont.Prompt += r.sent.String()
	cont.MaxTokens = &left
	r.req, r.sent, r.tokens = cont, strings.Builder{}, 0
	body, err := json.Marshal(&cont)
	return body, err == nil
}

// payState tracks one paid request's provisional charge until it is settled.
type payState struct {
	p           *Payments
	channel     uint64
	provisional uint64
	settled     bool
}

// finish settles the charge at the receipt's price (never above the
// provisional maximum) once; it reports what to tell the client.
func (ps *payState) finish(price uint64) (PaymentResponse, bool) {
	if ps == nil || ps.settled {
		return PaymentResponse{}, false
	}
	ps.settled = true
	charged := min(price, ps.provisional)
	owed, err := ps.p.Ledger.Settle(ps.channel, ps.provisional, charged)
	if err != nil {
		return PaymentResponse{}, false
	}
	return PaymentResponse{ChannelID: ps.channel, Charged: charged, Owed: owed}, true
}
