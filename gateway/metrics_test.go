package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/x402"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// scrape GETs a /metrics page and parses it.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// metricValue is the counter, gauge or histogram count of the family's
// series with exactly these labels; ok is false when there is none.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		if len(m.Label)*2 != len(labels) {
			continue
		}
		for i, lp := range m.Label {
			if lp.GetName() != labels[2*i] || lp.GetValue() != labels[2*i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func wantMetric(t *testing.T, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := metricValue(fams, name, labels...)
	if !ok || got != want {
		t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, want)
	}
}

// TestServiceMetrics drives a paid gateway service on a real chain and a
// real miner, and checks every gateway metric family on its /metrics: the
// requests by route and class, their latency, the 402, the charge and the
// claim of it.
func TestServiceMetrics(t *testing.T) {
	w := newServiceWorld(t, &Limits{Concurrent: 4, PerSecond: 100, Burst: 100})
	metricsURL := strings.TrimSuffix(w.url, "/v1/chat/completions") + "/metrics"
	const body = `{"model":"agora-test","messages":[{"role":"user","content":"hi"}],"max_tokens":6}`

	resp := w.paidPost(t, body) // a 402 quote first, then the paid request
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("paid request: %d %s", resp.StatusCode, out)
	}
	charged := w.settled(t, resp.Header.Get(x402.HeaderPaymentResponse), x402.Decode)
	if charged == 0 {
		t.Fatal("nothing charged")
	}
	nf, err := http.Get(strings.TrimSuffix(w.url, "/v1/chat/completions") + "/v1/nothing-here")
	if err != nil {
		t.Fatal(err)
	}
	nf.Body.Close()

	fams := scrape(t, metricsURL)
	wantMetric(t, fams, 1, "agora_gateway_requests_total", "code", "2xx", "route", "/v1/chat/completions")
	wantMetric(t, fams, 1, "agora_gateway_requests_total", "code", "4xx", "route", "/v1/chat/completions")
	wantMetric(t, fams, 1, "agora_gateway_requests_total", "code", "4xx", "route", "other")
	wantMetric(t, fams, 2, "agora_gateway_request_seconds", "route", "/v1/chat/completions")
	wantMetric(t, fams, 1, "agora_gateway_payment_required_total")
	wantMetric(t, fams, float64(charged), "agora_gateway_charged_base_units_total")
	wantMetric(t, fams, 0, "agora_gateway_claims_total", "result", "claimed")
	wantMetric(t, fams, 0, "agora_gateway_claimed_base_units_total")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := w.svc.Claimer().Once(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := w.claimed(t, w.channel); got != charged {
		t.Fatalf("claimed %d on chain, charged %d", got, charged)
	}
	fams = scrape(t, metricsURL)
	wantMetric(t, fams, 1, "agora_gateway_claims_total", "result", "claimed")
	wantMetric(t, fams, 0, "agora_gateway_claims_total", "result", "refused")
	wantMetric(t, fams, float64(charged), "agora_gateway_claimed_base_units_total")
	// The previous scrape is counted too, under its own route.
	wantMetric(t, fams, 1, "agora_gateway_requests_total", "code", "2xx", "route", "/metrics")
}

// TestClaimMetricsCountRefusals: a claim the chain refuses is counted as
// refused and adds nothing to the claimed units; a claim on top of an
// earlier one adds only what is new.
func TestClaimMetricsCountRefusals(t *testing.T) {
	w := newClaimWorld(t)
	good := w.open(t, 1, agr.Unit, 100_000)[0]
	forged := w.open(t, 1, agr.Unit, 100_000)[0]
	l, _ := openLedger(t)
	w.charge(t, l, good, 500, 300)
	if err := accept(l, &tx.Voucher{ChannelId: forged, Cumulative: 500, Signature: make([]byte, 64)}, 500); err != nil {
		t.Fatal(err)
	}
	l.Settle(forged, 500, 300)
	m := NewMetrics()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := NewClaimer(ctx, ClaimConfig{Chain: w.c, Key: w.gw, Ledger: l, ExpiryMargin: 8, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Once(ctx, true); !errors.Is(err, ErrClaimFailed) {
		t.Fatalf("a refused claim is not reported: %v", err)
	}
	w.charge(t, l, good, 1000, 100)
	if _, err := cl.Once(ctx, true); err != nil {
		t.Fatal(err)
	}
	srv := newMetricsServer(t, m)
	fams := scrape(t, srv)
	wantMetric(t, fams, 2, "agora_gateway_claims_total", "result", "claimed")
	wantMetric(t, fams, 1, "agora_gateway_claims_total", "result", "refused")
	wantMetric(t, fams, 400, "agora_gateway_claimed_base_units_total")
}

// newMetricsServer serves a gateway whose metrics are m, and returns its
// /metrics URL.
func newMetricsServer(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(New(Config{Metrics: m}).Handler())
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}
