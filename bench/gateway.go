package bench

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/miner"
	"github.com/agoranet/agora/route"
	"github.com/agoranet/agora/x402"
)

// GatewayConfig shapes a gateway benchmark.
type GatewayConfig struct {
	Concurrency int           // concurrent clients
	Duration    time.Duration // how long to measure each path
	Stream      bool          // measure streamed requests
	Free        bool          // serve without payments, to see what the voucher check and ledger cost
	Progress    io.Writer     // progress lines; nil discards them
}

// GatewayPath is one measured path's throughput and latency.
type GatewayPath struct {
	RPS   float64 `json:"requests_per_second"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
}

// GatewayResult compares the upstream alone with the path through the
// gateway and a miner in front of it.
type GatewayResult struct {
	Mode        string      `json:"mode"`
	Direct      GatewayPath `json:"direct"`
	ViaGateway  GatewayPath `json:"via_gateway"`
	AddedP50ms  float64     `json:"added_p50_ms"`
	AddedP99ms  float64     `json:"added_p99_ms"`
	Payments    bool        `json:"payments_verified"`
	Concurrency int         `json:"concurrency"`
	SecondsEach float64     `json:"seconds_each"`
}

// staticChannels stands in for the chain's channel table. The gateway caches
// channel reads (Payments.CacheTTL), so the chain is off the per-request
// path either way; what every request pays for is the voucher signature
// check and the fsynced ledger record.
type staticChannels map[uint64]*tx.Channel

func (b staticChannels) Channel(_ context.Context, id uint64, _ bool) (*tx.Channel, error) {
	if ch, ok := b[id]; ok {
		return ch, nil
	}
	return nil, client.ErrNoChannel
}

func (staticChannels) Height(context.Context) (int64, error) { return 1, nil }

// instantUpstream answers like an OpenAI server with a fixed short completion.
func instantUpstream(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if strings.Contains(string(body), `"stream":true`) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, t := range []string{"Hello", " there", "!"} {
			fmt.Fprintf(w, "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", t)
		}
		io.WriteString(w, "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8}}\n\ndata: [DONE]\n\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}`)
}

func serveLoopback(h http.Handler) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	return "http://" + l.Addr().String(), func() { srv.Close() }, nil
}

// measure drives url with conc clients for d. pay, when set, gives each
// request's PAYMENT-SIGNATURE; it runs before the clock starts, since
// signing the voucher is the client's work, not the gateway's.
func measure(ctx context.Context, url, body string, conc int, d time.Duration, pay func(worker int) string) (GatewayPath, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2}}
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for worker := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
				if err != nil {
					return
				}
				req.Header.Set("Content-Type", "application/json")
				if pay != nil {
					req.Header.Set(x402.HeaderPaymentSignature, pay(worker))
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return GatewayPath{}, firstErr
	}
	if len(lat) == 0 {
		return GatewayPath{}, errors.New("no request completed")
	}
	slices.Sort(lat)
	return GatewayPath{RPS: float64(len(lat)) / d.Seconds(), P50ms: percentileMillis(lat, 0.5), P99ms: percentileMillis(lat, 0.99)}, nil
}

// Gateway serves an instant OpenAI-compatible upstream, a miner (openai
// backend) in front of it and a gateway routing to that miner, all on
// loopback, then measures the upstream alone and the path through the
// gateway for cfg.Duration each. Unless cfg.Free, every request through the
// gateway pays with a fresh voucher on its client's own channel.
func Gateway(ctx context.Context, cfg GatewayConfig) (*GatewayResult, error) {
	conc, dur, free := cfg.Concurrency, cfg.Duration, cfg.Free
	if conc < 1 || dur <= 0 {
		return nil, errors.New("bench: concurrency and duration must be positive")
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	upURL, stopUp, err := serveLoopback(http.HandlerFunc(instantUpstream))
	if err != nil {
		return nil, err
	}
	defer stopUp()
	seed := make([]byte, 32)
	seed[0] = 1
	mk := ed25519.NewKeyFromSeed(seed)
	m, err := miner.New(miner.Config{Hotkey: mk, Backend: &miner.Upstream{URL: upURL + "/v1", Model: "instant"},
		MaxConcurrent: conc, MaxQueue: conc * 4})
	if err != nil {
		return nil, err
	}
	mURL, stopM, err := serveLoopback(m.Handler())
	if err != nil {
		return nil, err
	}
	defer stopM()
	seed[0] = 2
	gwKey := ed25519.NewKeyFromSeed(seed)
	gwAddr := address.FromPubKey(gwKey.Public().(ed25519.PublicKey))
	ledgerDir, err := os.MkdirTemp("", "agora-bench-gateway-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(ledgerDir)
	ledger, err := gateway.OpenLedger(filepath.Join(ledgerDir, "ledger.jsonl"))
	if err != nil {
		return nil, err
	}
	defer ledger.Close()
	chans := staticChannels{}
	payers := make([]ed25519.PrivateKey, conc)
	signed := make([]uint64, conc)
	for i := range payers {
		seed[0], seed[1] = 3, byte(i)
		payers[i] = ed25519.NewKeyFromSeed(seed)
		chans[uint64(i+1)] = &tx.Channel{Id: uint64(i + 1), PayerPubKey: payers[i].Public().(ed25519.PublicKey), Payee: gwAddr[:],
			Netuid: 1, Deposit: 1 << 62, ExpiryHeight: 1 << 40}
	}
	const chainID, pricePer1K = "agora-bench", 1000
	payments := &gateway.Payments{Chain: chans, ChainID: chainID, Payee: gwAddr,
		Netuid: 1, PricePer1K: pricePer1K, Ledger: ledger, ExpiryMargin: 10, CacheTTL: time.Second}
	if free {
		payments = nil
	}
	gw := gateway.New(gateway.Config{Key: gwKey, Model: "bench", Payments: payments,
		HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2}},
		Candidates: func(context.Context) ([]route.Candidate, error) {
			return []route.Candidate{{Hotkey: address.FromPubKey(mk.Public().(ed25519.PublicKey)), Endpoint: mURL, Score: 1}}, nil
		}})
	gURL, stopG, err := serveLoopback(gw.Handler())
	if err != nil {
		return nil, err
	}
	defer stopG()
	body := `{"model":"bench","messages":[{"role":"user","content":"hi"}],"max_tokens":8}`
	mode := "plain"
	if cfg.Stream {
		body = strings.Replace(body, `"max_tokens":8`, `"max_tokens":8,"stream":true`, 1)
		mode = "stream"
	}
	// Each client pays from its own channel: every voucher raises the
	// cumulative amount by the request's maximum charge, so it always
	// covers what is owed plus this request.
	maxCharge, err := x402.MaxCharge(pricePer1K, len(body), 8)
	if err != nil {
		return nil, err
	}
	accepts := x402.Requirements{Scheme: x402.SchemeChannel, Network: x402.Network(chainID), Amount: x402.Amount(maxCharge),
		Asset: x402.Asset, PayTo: gwAddr.String()}
	pay := func(worker int) string {
		signed[worker] += maxCharge
		return gateway.PaymentSignature(accepts, tx.SignVoucher(payers[worker], chainID, uint64(worker+1), signed[worker]))
	}
	fmt.Fprintf(progress, "measuring the upstream alone, then through the gateway (%s each)…\n", dur)
	direct, err := measure(ctx, upURL+"/v1/chat/completions", body, conc, dur, nil)
	if err != nil {
		return nil, fmt.Errorf("direct: %w", err)
	}
	if free {
		pay = nil
	}
	via, err := measure(ctx, gURL+"/v1/chat/completions", body, conc, dur, pay)
	if err != nil {
		return nil, fmt.Errorf("via gateway: %w", err)
	}
	return &GatewayResult{Mode: mode, Direct: direct, ViaGateway: via, AddedP50ms: via.P50ms - direct.P50ms,
		AddedP99ms: via.P99ms - direct.P99ms, Payments: !free, Concurrency: conc, SecondsEach: dur.Seconds()}, nil
}
