package validator

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/miner"
)

func serveMiner(t *testing.T, k byte, m *engine.Model) string {
	t.Helper()
	b, err := miner.NewBuiltin(m)
	if err != nil {
		t.Fatal(err)
	}
	hk, _ := testkit.Key(k)
	mn, err := miner.New(miner.Config{Hotkey: hk, Backend: b, MaxConcurrent: 2, PricePer1K: 1000})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mn.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestValidatorMetrics runs a real round against an honest miner, one
// serving another model and one that is down, on a real chain, and scrapes
// the validator's /metrics: three challenges, one failure of each kind but
// bad receipts, and a score per UID.
func TestValidatorMetrics(t *testing.T) {
	owner, ownerAddr := testkit.Key(1)
	ownerHot, _ := testkit.Key(2)
	val, valAddr := testkit.Key(3)
	accounts := []chain.GenesisAccount{{Address: ownerAddr, Balance: 1_000 * agr.Unit}, {Address: valAddr, Balance: 10 * agr.Unit}}
	for k := byte(10); k < 13; k++ {
		accounts = append(accounts, chain.GenesisAccount{Address: testkit.Addr(mustKey(k)), Balance: 10 * agr.Unit})
	}
	const chainID = "agora-validator-metrics-test"
	ch := testkit.StartChain(t, testkit.NodeOptions{ChainID: chainID, BlockTime: 100 * time.Millisecond,
		Genesis: chain.Genesis{Params: chain.DefaultParams(100), Devnet: true, Accounts: accounts}})
	ch.RegisterSubnet(t, owner, ownerHot, "")

	pinned, other := testkit.LoadModel(t, "tiny", 1), testkit.LoadModel(t, "tiny", 2)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	endpoints := map[byte]string{10: serveMiner(t, 10, pinned), 11: serveMiner(t, 11, other), 12: downURL}
	for k := byte(10); k < 13; k++ {
		hk := mustKey(k)
		ch.Send(t, owner, tx.NeuronRegister(1, tx.ProveHotkey(hk, chainID, 1, ownerAddr), 0))
		ch.Send(t, hk, tx.NeuronServe(1, endpoints[k], nil, ""))
	}

	v, err := New(Config{Hotkey: val, Netuid: 1, Model: pinned, Chain: ch.Client, Seed: 1, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := v.Round(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(v.MetricsHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels ...string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("no %s", name)
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
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	if got := value("agora_validator_challenges_total"); got != 3 {
		t.Errorf("challenges %v, want 3", got)
	}
	for reason, want := range map[string]float64{ReasonVerification: 1, ReasonUnreachable: 1, ReasonBadReceipt: 0} {
		if got := value("agora_validator_verification_failures_total", "reason", reason); got != want {
			t.Errorf("failures{%s} %v, want %v", reason, got, want)
		}
	}
	scores := fams["agora_validator_score"]
	if scores == nil || len(scores.Metric) != 3 || scores.GetType() != dto.MetricType_GAUGE {
		t.Fatalf("scores: %v", scores)
	}
	for _, s := range v.Scores() {
		got := value("agora_validator_score", "uid", strconv.Itoa(s.UID))
		if got != s.EMA {
			t.Errorf("uid %d: score %v on /metrics, %v in the validator", s.UID, got, s.EMA)
		}
		if honest := s.Hotkey == testkit.Addr(mustKey(10)).String(); honest != (got > 0) {
			t.Errorf("uid %d (honest %v): score %v", s.UID, honest, got)
		}
	}
}

func mustKey(seed byte) ed25519.PrivateKey {
	k, _ := testkit.Key(seed)
	return k
}
