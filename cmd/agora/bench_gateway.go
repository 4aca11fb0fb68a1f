package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/miner"
)

type gatewayBenchPath struct {
	RPS   float64 `json:"requests_per_second"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
}

type gatewayBenchResult struct {
	Mode        string           `json:"mode"`
	Direct      gatewayBenchPath `json:"direct"`
	ViaGateway  gatewayBenchPath `json:"via_gateway"`
	AddedP50ms  float64          `json:"added_p50_ms"`
	AddedP99ms  float64          `json:"added_p99_ms"`
	Payments    bool             `json:"payments_verified"`
	Concurrency int              `json:"concurrency"`
	SecondsEach float64          `json:"seconds_each"`
}

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

func measure(ctx context.Context, url, body string, conc int, d time.Duration) (gatewayBenchPath, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2}}
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", strings.NewReader(body))
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
		return gatewayBenchPath{}, firstErr
	}
	slices.Sort(lat)
	ms := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	return gatewayBenchPath{RPS: float64(len(lat)) / d.Seconds(), P50ms: ms(0.5), P99ms: ms(0.99)}, nil
}

func newBenchGatewayCmd() *cobra.Command {
	var conc int
	var dur time.Duration
	var stream bool
	cmd := &cobra.Command{
		Use:   "gateway [--stream] [--concurrency 4] [--duration 10s]",
		Short: "Requests/s and added latency of gateway → miner (openai backend) → an instant upstream, against the upstream alone",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			upURL, stopUp, err := serveLoopback(http.HandlerFunc(instantUpstream))
			if err != nil {
				return err
			}
			defer stopUp()
			seed := make([]byte, 32)
			seed[0] = 1
			mk := ed25519.NewKeyFromSeed(seed)
			m, err := miner.New(miner.Config{Hotkey: mk, Backend: &miner.Upstream{URL: upURL + "/v1", Model: "instant"},
				MaxConcurrent: conc, MaxQueue: conc * 4})
			if err != nil {
				return err
			}
			mURL, stopM, err := serveLoopback(m.Handler())
			if err != nil {
				return err
			}
			defer stopM()
			seed[0] = 2
			gw := gateway.New(gateway.Config{Key: ed25519.NewKeyFromSeed(seed), Model: "bench",
				HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2}},
				Candidates: func(context.Context) ([]gateway.Candidate, error) {
					return []gateway.Candidate{{Hotkey: address.FromPubKey(mk.Public().(ed25519.PublicKey)), Endpoint: mURL, Score: 1}}, nil
				}})
			gURL, stopG, err := serveLoopback(gw.Handler())
			if err != nil {
				return err
			}
			defer stopG()
			body := `{"model":"bench","messages":[{"role":"user","content":"hi"}],"max_tokens":8}`
			mode := "plain"
			if stream {
				body = strings.Replace(body, `"max_tokens":8`, `"max_tokens":8,"stream":true`, 1)
				mode = "stream"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "measuring the upstream alone, then through the gateway (%s each)…\n", dur)
			direct, err := measure(ctx, upURL+"/v1/chat/completions", body, conc, dur)
			if err != nil {
				return fmt.Errorf("direct: %w", err)
			}
			via, err := measure(ctx, gURL+"/v1/chat/completions", body, conc, dur)
			if err != nil {
				return fmt.Errorf("via gateway: %w", err)
			}
			res := gatewayBenchResult{Mode: mode, Direct: direct, ViaGateway: via, AddedP50ms: via.P50ms - direct.P50ms,
				AddedP99ms: via.P99ms - direct.P99ms, Concurrency: conc, SecondsEach: dur.Seconds()}
			return printResult(cmd, res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s requests, %d concurrent, %.0f s each\ndirect       %7.0f req/s  p50 %.2f ms  p99 %.2f ms\nvia gateway  %7.0f req/s  p50 %.2f ms  p99 %.2f ms\nadded        p50 %.2f ms  p99 %.2f ms (gateway + signed miner hop + receipt checks)\nnote: payments are not verified yet (the 402 voucher flow is not built)\n",
					mode, conc, dur.Seconds(), direct.RPS, direct.P50ms, direct.P99ms, via.RPS, via.P50ms, via.P99ms, res.AddedP50ms, res.AddedP99ms)
				return err
			})
		},
	}
	cmd.Flags().IntVar(&conc, "concurrency", 4, "concurrent clients")
	cmd.Flags().DurationVar(&dur, "duration", 10*time.Second, "how long to measure each path")
	cmd.Flags().BoolVar(&stream, "stream", false, "measure streamed requests")
	return cmd
}
