package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/agoranet/agora/agent"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/miner"
	"github.com/agoranet/agora/route"
	"github.com/agoranet/agora/x402"
)

// TestValidatorGatewayCharges is hole 12: `agora validator --gateway` used
// to serve for free. The command's gateway flags (with limits on by
// default) build the one paid-gateway constructor; a request without a
// voucher gets 402, one with a voucher gets 200, and the charge is claimed
// on chain when the gateway closes.
func TestValidatorGatewayCharges(t *testing.T) {
	// The command defines the flags, limits on unless turned off.
	vf := newValidatorCmd().Flags()
	for _, name := range []string{"metrics", "gateway", "gateway-ledger", "gateway-max-concurrent", "gateway-rate", "gateway-burst", "gateway-claim-interval", "gateway-expiry-margin"} {
		if vf.Lookup(name) == nil {
			t.Fatalf("agora validator has no --%s", name)
		}
	}
	if vf.Lookup("gateway-max-concurrent").DefValue == "0" || vf.Lookup("gateway-rate").DefValue == "0" {
		t.Fatal("agora validator --gateway runs without limits by default")
	}

	payer, payerAddr := testkit.Key(1)
	val, valAddr := testkit.Key(2)
	ownerHot, _ := testkit.Key(3)
	home := t.TempDir()
	const chainID = "agora-validator-gateway-test"
	ch := testkit.StartChain(t, testkit.NodeOptions{ChainID: chainID, BlockTime: 100 * time.Millisecond,
		Genesis: chain.Genesis{Params: chain.DefaultParams(100), Devnet: true, Accounts: []chain.GenesisAccount{
			{Address: payerAddr, Balance: 1_000 * agr.Unit}, {Address: valAddr, Balance: 10 * agr.Unit}}}})
	c := ch.Client
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	params := subnet.DefaultSubnetParams()
	params.PricePer_1K = 1000
	ch.Send(t, payer, tx.SubnetRegister("", tx.ProveHotkey(ownerHot, chainID, subnet.NewSubnetNetuid, payerAddr), 0), tx.SubnetSetParams(1, params))
	h, _ := c.Height(ctx)
	res, err := c.SendAndWait(ctx, payer, []*tx.Msg{tx.ChannelOpen(valAddr, 1, agr.Unit, uint64(h)+100_000)}, client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	channel, err := agent.OpenedChannel(ctx, c, payerAddr, res)
	if err != nil {
		t.Fatal(err)
	}

	m := testkit.LoadModel(t, "tiny", 1)
	b, err := miner.NewBuiltin(m)
	if err != nil {
		t.Fatal(err)
	}
	mk, ma := testkit.Key(4)
	mn, err := miner.New(miner.Config{Hotkey: mk, Backend: b, MaxConcurrent: 2, PricePer1K: 1000})
	if err != nil {
		t.Fatal(err)
	}
	msrv := httptest.NewServer(mn.Handler())
	defer msrv.Close()

	// Exactly what `agora validator` does with its flags.
	var gf gatewayFlags
	cmd := &cobra.Command{}
	gf.register(cmd)
	if err := cmd.ParseFlags([]string{"--gateway", "127.0.0.1:0", "--gateway-expiry-margin", "8"}); err != nil {
		t.Fatal(err)
	}
	candidates := func(context.Context) ([]route.Candidate, error) {
		return []route.Candidate{{Hotkey: ma, Endpoint: msrv.URL, Score: 1}}, nil
	}
	// The validator's registry rides on the gateway's /metrics.
	valMetrics := prometheus.NewRegistry()
	probe := prometheus.NewCounter(prometheus.CounterOpts{Name: "agora_validator_challenges_total", Help: "probe"})
	valMetrics.MustRegister(probe)
	probe.Add(7)
	gf.metrics = append(gf.metrics, valMetrics)
	svc, l, err := gf.start(ctx, c, val, 1, candidates, home, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- svc.Serve(l) }()
	defer func() {
		svc.Close(context.Background())
		<-served
	}()
	url := "http://" + l.Addr().String() + "/v1/chat/completions"
	const body = `{"model":"agora-subnet-1","messages":[{"role":"user","content":"hi"}],"max_tokens":4}`
	post := func(payment string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if payment != "" {
			req.Header.Set(x402.HeaderPaymentSignature, payment)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := post("")
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("no voucher: status %d, want 402", resp.StatusCode)
	}
	req, amount, err := x402.ParseRequired(resp.Header.Get(x402.HeaderPaymentRequired), chainID)
	if err != nil || amount == 0 {
		t.Fatalf("quoted %q: %v", req.Amount, err)
	}
	resp = post(gateway.PaymentSignature(*req, tx.SignVoucher(payer, chainID, channel, amount)))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with a voucher: status %d, want 200", resp.StatusCode)
	}
	var sr x402.SettleResponse
	if err := x402.Decode(resp.Header.Get(x402.HeaderPaymentResponse), &sr); err != nil {
		t.Fatal(err)
	}
	charged, err := x402.ParseAmount(sr.Extra.Charged)
	if err != nil || charged == 0 {
		t.Fatalf("charged %q: %v", sr.Extra.Charged, err)
	}
	mresp, err := http.Get("http://" + l.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, line := range []string{"agora_validator_challenges_total 7", "agora_gateway_payment_required_total 1",
		`agora_gateway_requests_total{code="2xx",route="/v1/chat/completions"} 1`,
		"agora_gateway_charged_base_units_total " + strconv.FormatUint(charged, 10)} {
		if !strings.Contains(string(page), "\n"+line+"\n") {
			t.Errorf("the gateway's /metrics lacks %q:\n%s", line, page)
		}
	}
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	onChain, err := c.Channel(ctx, channel, false)
	if err != nil || onChain.Claimed != charged {
		t.Fatalf("claimed %v (%v), charged %d", onChain, err, charged)
	}
}
