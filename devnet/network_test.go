package devnet

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agent"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/internal/openaisdk"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/keys"
)

// TestHonestMinersEarnCheaterDoesNot runs the whole loop: chain, subnet with
// commit-reveal, three honest miners, a cheater serving another model under
// the pinned model's id, and a validator.
func TestHonestMinersEarnCheaterDoesNot(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network for about a minute")
	}
	home := t.TempDir()
	faucet, faucetAddr := testkit.Key(42)
	g := chain.Genesis{Params: chain.DefaultParams(250), Devnet: true,
		Accounts: []chain.GenesisAccount{{Address: faucetAddr, Balance: 1_000_000 * agr.Unit}}}
	ch := testkit.StartChain(t, testkit.NodeOptions{ChainID: "agora-devnet-test", Genesis: g, BlockTime: 250 * time.Millisecond})
	c := ch.Client
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	ks, err := keys.Open(filepath.Join(home, "keys"), keys.WithScryptN(1<<10))
	if err != nil {
		t.Fatal(err)
	}
	pinned := testkit.LoadModel(t, "tiny", 1)
	net, err := Start(ctx, Options{Chain: c, Faucet: faucet, Keystore: ks, Password: []byte("pw"), Model: pinned,
		Cheat: testkit.LoadModel(t, "tiny", 2), Miners: 3, Tempo: 10, Interval: time.Second, GatewayAddr: "127.0.0.1:0", LedgerPath: filepath.Join(home, "gateway-ledger.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	uidOf := map[string]int{}
	for {
		mg, err := c.Metagraph(ctx, Netuid, 0)
		if err != nil {
			t.Fatal(err)
		}
		for uid, n := range mg.Neurons {
			a, _ := address.FromBytes(n.Hotkey)
			for _, p := range net.Participants {
				if p.Hotkey == a {
					uidOf[p.Name] = uid
				}
			}
		}
		honestPaid := 0
		for _, name := range []string{"miner1", "miner2", "miner3"} {
			if n := mg.Neurons[uidOf[name]]; n.Incentive > 0 && n.Emission > 0 {
				honestPaid++
			}
		}
		cheater := mg.Neurons[uidOf["cheater"]]
		if cheater.Incentive != 0 {
			t.Fatalf("the cheater earned incentive %d", cheater.Incentive)
		}
		if honestPaid == 3 && net.Validator.WeightsSubmitted() >= 2 {
			// Users reach the network through the validator's gateway, and
			// are never served by the cheater.
			for range 5 {
				req, _ := http.NewRequest(http.MethodPost, net.GatewayURL+"/chat/completions",
					strings.NewReader(`{"model":"agora-devnet","messages":[{"role":"user","content":"hi"}],"max_tokens":4}`))
				req.Header.Set("Authorization", "Bearer "+net.SessionToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				served, _ := address.Parse(resp.Header.Get(gateway.HeaderMiner))
				if resp.StatusCode != 200 || served == addressOf(net, "cheater") {
					t.Fatalf("gateway: status %d, served by %s", resp.StatusCode, resp.Header.Get(gateway.HeaderMiner))
				}
			}
			// The agent path: open a channel to the gateway, then pay per request.
			a := agent.New(net.GatewayURL, faucet, "agora-devnet-test", 0, 0)
			a.Chain = c
			reqs, err := a.Requirements(ctx, []byte(`{"model":"agora","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"stream":true}`))
			if err != nil {
				t.Fatal(err)
			}
			payee, _ := address.Parse(reqs.PayTo)
			h, _ := c.Height(ctx)
			at, err := c.SendAndWait(ctx, faucet, []*tx.Msg{tx.ChannelOpen(payee, reqs.Extra.Netuid, agr.Unit, uint64(h)+100_000)}, client.SendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if a.Channel, err = agent.OpenedChannel(ctx, c, address.FromPubKey(faucet.Public().(ed25519.PublicKey)), at); err != nil {
				t.Fatal(err)
			}
			var streamed int
			for i := range 2 {
				if _, err := a.Chat(ctx, "hello", 4, func(string) { streamed++ }); err != nil {
					t.Fatalf("agent chat %d: %v", i, err)
				}
			}
			if a.Owed == 0 || a.Signed < a.Owed || streamed == 0 {
				t.Fatalf("agent paid owed=%d signed=%d streamed=%d", a.Owed, a.Signed, streamed)
			}
			// Sealed end to end to a miner whose X25519 key is on chain.
			if a.Sealed, err = agent.PickMiner(ctx, net.GatewayURL, c, Netuid); err != nil {
				t.Fatal(err)
			}
			owed := a.Owed
			if text, err := a.Chat(ctx, "hello, privately", 4, nil); err != nil || text == "" || a.Owed <= owed {
				t.Fatalf("sealed chat: %q %v (owed %d → %d)", text, err, owed, a.Owed)
			}
			a.Sealed = nil
			// An unmodified OpenAI client pays through its API key: the
			// devnet's session-key token.
			if !testing.Short() {
				script := []byte(`import OpenAI from 'openai';
const client = new OpenAI();
const r = await client.chat.completions.create({ model: 'agora-devnet', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
let chunks = 0;
for await (const c of await client.chat.completions.create({ model: 'agora-devnet', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, stream: true })) chunks++;
console.log(JSON.stringify({ tokens: r.usage.completion_tokens, chunks }));`)
				var sdk struct{ Tokens, Chunks int }
				out := openaisdk.Run(t, script, "OPENAI_BASE_URL="+net.GatewayURL, "OPENAI_API_KEY="+net.SessionToken)
				if err := json.Unmarshal(out, &sdk); err != nil || sdk.Tokens == 0 || sdk.Chunks == 0 {
					t.Fatalf("paid SDK run: %s %v", out, err)
				}
			}
			// One scrape of the gateway shows its own traffic and the
			// validator's checks, the cheater's failures among them.
			metrics := scrape(t, strings.TrimSuffix(net.GatewayURL, "/v1")+"/metrics")
			for _, want := range []string{`agora_gateway_requests_total{code="2xx",route="/v1/chat/completions"}`, "agora_validator_challenges_total", `agora_validator_verification_failures_total{reason="verification"}`} {
				if !strings.Contains(metrics, want) {
					t.Fatalf("devnet gateway /metrics lacks %s", want)
				}
			}
			for _, s := range net.Validator.Scores() {
				if s.UID == uidOf["cheater"] && (s.EMA != 0 || s.Failed == 0) {
					t.Fatalf("cheater score %+v", s)
				}
			}
			// Traffic has stopped: closing the gateway claims what it
			// charged, and the chain holds exactly what its
			// PAYMENT-RESPONSEs told the agent it owed (hole 14).
			if err := net.Gateway.Close(ctx); err != nil {
				t.Fatal(err)
			}
			ch, err := c.Channel(ctx, a.Channel, false)
			if err != nil || ch.Claimed != a.Owed {
				t.Fatalf("agent channel: claimed %v (%v), the gateway reported owing %d", ch, err, a.Owed)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("honest miners never all earned (paid %d; scores %+v)", honestPaid, net.Validator.Scores())
		case <-time.After(time.Second):
		}
	}
}

func addressOf(n *Network, name string) address.Address {
	for _, p := range n.Participants {
		if p.Name == name {
			return p.Hotkey
		}
	}
	return address.Address{}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v", url, resp.StatusCode, err)
	}
	return string(body)
}
