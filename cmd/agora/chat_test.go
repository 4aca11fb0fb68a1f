package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/devnet"
	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/keys"
)

// gatewayTap is a real HTTP server in front of a gateway that records
// every request, headers and body, exactly as the gateway receives it.
type gatewayTap struct {
	mu   sync.Mutex
	seen [][]byte
}

func (tp *gatewayTap) start(t *testing.T, upstream string) string {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = ""
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var rec bytes.Buffer
		rec.WriteString(r.Method + " " + r.URL.String() + "\n")
		r.Header.Write(&rec)
		rec.Write(body)
		tp.mu.Lock()
		tp.seen = append(tp.seen, rec.Bytes())
		tp.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// Hole 6: `agora chat --e2e` against a real devnet gateway, through a tap:
// no request the gateway receives carries the prompt, and the sealed
// answer still arrives and is paid for.
func TestChatE2ESendsNoClearPrompt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a small network")
	}
	const canary = "CANARY-5be1 what I ask only the miner"
	const pw = "chat-test-pw"
	home := t.TempDir()
	t.Setenv("AGORA_PASSWORD", pw)
	t.Setenv("AGORA_HOME", "")
	faucet, faucetAddr := testkit.Key(42)
	nd := testkit.StartNode(t, testkit.NodeOptions{ChainID: "agora-chat-test", BlockTime: 250 * time.Millisecond, Genesis: chain.Genesis{
		Params: chain.DefaultParams(250), Devnet: true, Accounts: []chain.GenesisAccount{{Address: faucetAddr, Balance: 1_000_000 * agr.Unit}}}})
	c, err := client.New(nd.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ks, err := keys.Open(filepath.Join(home, "keys"), keys.WithScryptN(1<<10))
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.Load(testkit.Model(t, "tiny", 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	net, err := devnet.Start(ctx, devnet.Options{Chain: c, Faucet: faucet, Keystore: ks, Password: []byte(pw), Model: m,
		Miners: 1, Tempo: 10, Interval: time.Second, GatewayAddr: "127.0.0.1:0", LedgerPath: filepath.Join(home, "ledger.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()

	// The payer: a key of its own in --home's keystore, funded by the faucet.
	if _, _, err := ks.Create("payer", keys.Coldkey, []byte(pw)); err != nil {
		t.Fatal(err)
	}
	info, err := ks.Get("payer")
	if err != nil {
		t.Fatal(err)
	}
	payer := address.FromPubKey(info.PublicKey())
	if _, err := c.SendAndWait(ctx, faucet, []*tx.Msg{tx.Transfer(payer, 10*agr.Unit)}, client.SendOptions{}); err != nil {
		t.Fatal(err)
	}

	// chat refuses a payee without a validator permit, so wait for the
	// first epoch to give the validator one, and for a routable miner.
	var validator address.Address
	for _, p := range net.Participants {
		if p.Role == "validator" {
			validator = p.Hotkey
		}
	}
	for {
		if ready(ctx, c, net.GatewayURL, validator) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the validator never got a permit with a routable, sealable miner")
		case <-time.After(250 * time.Millisecond):
		}
	}

	var tap gatewayTap
	tapURL := tap.start(t, net.GatewayURL)
	out, code := runCLI(t, ctx, "chat", "--e2e", "--from", "payer", "--gateway", tapURL, "--node", nd.RPCURL(),
		"--home", home, "--deposit", "1agr", "--max-tokens", "4", canary)
	if code != exitOK || strings.TrimSpace(out) == "" {
		t.Fatalf("agora chat --e2e: exit %d, output %q", code, out)
	}
	tap.mu.Lock()
	defer tap.mu.Unlock()
	var paid bool
	for _, rec := range tap.seen {
		if bytes.Contains(rec, []byte("CANARY")) || bytes.Contains(rec, []byte("only the miner")) {
			t.Fatalf("the gateway saw the prompt:\n%s", rec)
		}
		paid = paid || bytes.Contains(rec, []byte("Payment-Signature"))
	}
	if len(tap.seen) < 3 || !paid {
		t.Fatalf("tap saw %d requests (paid: %v); want discovery, miners, probe and the paid request", len(tap.seen), paid)
	}
}

// ready says whether validator holds a permit and the gateway lists a miner
// that has published its X25519 key.
func ready(ctx context.Context, c *client.Client, gatewayURL string, validator address.Address) bool {
	mg, err := c.Metagraph(ctx, devnet.Netuid, 0)
	if err != nil {
		return false
	}
	var permit, sealable bool
	for _, n := range mg.Neurons {
		hot, _ := address.FromBytes(n.Hotkey)
		permit = permit || (hot == validator && n.ValidatorPermit)
		sealable = sealable || len(n.X25519PubKey) == 32
	}
	if !permit || !sealable {
		return false
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, gatewayURL+"/agora/miners", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&list) == nil && len(list.Data) > 0
}
