package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
)

// scrape fetches and parses a Prometheus text endpoint.
func scrape(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var p expfmt.TextParser
	return p.TextToMetricFamilies(resp.Body)
}

// metricValue is the value of the sample of family name whose labels
// include all of labels; ok is false when there is none.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for k, want := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == want {
					found = true
				}
			}
			if !found {
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
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// TestNodeMetrics runs a node with metrics on a handed listener, sends a
// transfer and checks that one endpoint serves both CometBFT's metrics and
// the application's, counting what the chain did.
func TestNodeMetrics(t *testing.T) {
	alicePriv, alice := testKey(1)
	_, bob := testKey(2)
	home, rpc := initTestHome(t, alice)
	ml := listen(t)
	metricsURL := "http://" + ml.Addr().String() + "/metrics"
	n, err := Start(home, StartOptions{RPCListener: rpc, MetricsListener: ml})
	if err != nil {
		t.Fatal(err)
	}
	if n.MetricsURL() != metricsURL {
		t.Fatalf("MetricsURL %q, want %q", n.MetricsURL(), metricsURL)
	}
	defer func() {
		if n != nil {
			n.Stop()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// While it runs, no other node in the process may turn metrics on.
	_, other := testKey(3)
	home2, rpc2 := initTestHome(t, other)
	if n2, err := Start(home2, StartOptions{RPCListener: rpc2, MetricsListener: listen(t)}); !errors.Is(err, errMetricsInUse) {
		if err == nil {
			n2.Stop()
		}
		t.Fatalf("second node with metrics: err = %v, want errMetricsInUse", err)
	}

	if err := n.WaitForHeight(ctx, 2); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(rpcURL(rpc))
	if err != nil {
		t.Fatal(err)
	}
	hash, err := c.SignAndSend(ctx, alicePriv, []*tx.Msg{tx.Transfer(bob, 1_000)}, client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.WaitTx(ctx, hash)
	if err != nil {
		t.Fatal(err)
	}
	if res.Height < 3 {
		t.Fatalf("tx at height %d, want >= 3", res.Height)
	}
	params := chain.DefaultParams(200)

	// The tx is indexed after its block commits, so the counters are in;
	// poll only so a slow scrape does not flake.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var problems []string
	for {
		fams, err := scrape(ctx, metricsURL)
		if err != nil {
			t.Fatal(err)
		}
		problems = problems[:0]
		check := func(name string, labels map[string]string, ok func(float64) bool, want string) {
			v, found := metricValue(fams, name, labels)
			if !found || !ok(v) {
				problems = append(problems, fmt.Sprintf("%s%v = %v (present %v), want %s", name, labels, v, found, want))
			}
		}
		eq := func(w float64) func(float64) bool { return func(v float64) bool { return v == w } }
		atLeast := func(w float64) func(float64) bool { return func(v float64) bool { return v >= w } }
		check("agora_chain_txs_total", map[string]string{"msg": "transfer", "code": "ok"}, eq(1), "1")
		check("agora_chain_height", nil, atLeast(3), ">= 3")
		check("agora_chain_block_seconds", nil, atLeast(3), ">= 3 observations")
		check("agora_chain_end_block_seconds", map[string]string{"epoch": "false"}, atLeast(3), ">= 3 observations")
		check("agora_chain_supply_base_units", map[string]string{"kind": "burned"}, eq(float64(params.FeeTransfer)), "the transfer fee")
		check("agora_chain_supply_base_units", map[string]string{"kind": "genesis"}, eq(1_000_000_000_000), "the genesis balance")
		check("agora_chain_supply_base_units", map[string]string{"kind": "minted"}, atLeast(1), "> 0")
		check("cometbft_consensus_height", map[string]string{"chain_id": "agora-test"}, atLeast(3), ">= 3")
		check("cometbft_mempool_size", nil, atLeast(0), "present")
		if len(problems) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("metrics never matched: %v", problems)
		case <-tick.C:
		}
	}

	// Stopped, the node frees the process's metrics and closes the endpoint.
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := scrape(ctx, metricsURL); err == nil {
		t.Fatal("metrics endpoint still serving after Stop")
	}
	// Then another node of the chain in the same process may turn metrics
	// on and gets CometBFT's metrics (registered once per process).
	rpc3, ml3 := listen(t), listen(t)
	if n, err = Start(home2, StartOptions{RPCListener: rpc3, MetricsListener: ml3}); err != nil {
		t.Fatalf("second node with metrics after the first stopped: %v", err)
	}
	if err := n.WaitForHeight(ctx, 1); err != nil {
		t.Fatal(err)
	}
	fams, err := scrape(ctx, "http://"+ml3.Addr().String()+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := metricValue(fams, "cometbft_consensus_height", nil); !ok {
		t.Fatal("no cometbft_consensus_height after restart")
	}
}
