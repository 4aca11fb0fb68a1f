package devnet

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agent"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/internal/openaisdk"
	"github.com/agoranet/agora/internal/poll"
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
	g.Params.RoyaltyStreamBlocks = RoyaltyStreamBlocks // as Prepare sets it
	ch := testkit.StartChain(t, testkit.NodeOptions{ChainID: "agora-devnet-test", Genesis: g, BlockTime: 250 * time.Millisecond})
	c := ch.Client
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	ks, err := keys.Open(filepath.Join(home, "keys"), keys.WithScryptN(1<<10))
	if err != nil {
		t.Fatal(err)
	}
	// A K-quantized file (Q4_K_M, as most downloaded GGUFs are) serves,
	// verifies and scores like any other.
	pinned := testkit.LoadQuantizedModel(t, "tiny-k", engine.QuantQ4KM, 1)
	net, err := Start(ctx, Options{Chain: c, Faucet: faucet, Keystore: ks, Password: []byte("pw"), Model: pinned,
		Cheat: testkit.LoadQuantizedModel(t, "tiny-k", engine.QuantQ4KM, 2), Miners: 3, Tempo: 10, Interval: time.Second, GatewayAddr: "127.0.0.1:0", LedgerPath: filepath.Join(home, "gateway-ledger.jsonl")})
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
			// The settled revenue paid the pinned model's royalty.
			checkRoyalties(ctx, t, c, net, faucet, ks, []byte("pw"))
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("honest miners never all earned (paid %d; scores %+v)", honestPaid, net.Validator.Scores())
		case <-time.After(time.Second):
		}
	}
}

// checkRoyalties waits until the paid traffic's royalty has reached the
// devnet model's holders and dataset contributors in the proportions they
// hold, then claims the shareholder's part and checks it was paid exactly.
func checkRoyalties(ctx context.Context, t *testing.T, c *client.Client, net *Network, faucet ed25519.PrivateKey, ks *keys.Keystore, pw []byte) {
	t.Helper()
	if len(net.ModelShareholders) != 2 || len(net.Contributors) != 2 || len(net.DatasetRoot) != 32 {
		t.Fatalf("network names holders %v, contributors %v, dataset %x", net.ModelShareholders, net.Contributors, net.DatasetRoot)
	}
	owner, holder := net.ModelShareholders[0], net.ModelShareholders[1]
	var sh, own, c1, c2 uint64
	var last string
	err := poll.Until(ctx, 250*time.Millisecond, func() bool {
		s, err := c.ModelPosition(ctx, net.ModelID, holder, false)
		if err != nil {
			last = err.Error()
			return false
		}
		o, err := c.ModelPosition(ctx, net.ModelID, owner, false)
		if err != nil {
			last = err.Error()
			return false
		}
		// The owner's claimable at the shareholder's height: only a
		// holder's own transactions change its holding, so the shareholder's
		// pool and the owner's holding make one consistent reading.
		sh = s.Claimable
		if own, err = tx.Claimable(s.Pool, o.Holding, uint64(s.Height)); err != nil {
			t.Fatal(err)
		}
		d1, err := c.DatasetPosition(ctx, net.DatasetRoot, net.Contributors[0], false)
		if err != nil {
			last = err.Error()
			return false
		}
		d2, err := c.DatasetPosition(ctx, net.DatasetRoot, net.Contributors[1], false)
		if err != nil {
			last = err.Error()
			return false
		}
		c1 = d1.Claimable
		if c2, err = tx.Claimable(d1.Pool, d2.Holding, uint64(d1.Height)); err != nil {
			t.Fatal(err)
		}
		last = fmt.Sprintf("model earned %d, shareholder %d, owner %d, contributors %d %d", s.Pool.Earned, sh, own, c1, c2)
		return s.Pool.Earned > 0 && sh > 0 && own > 0 && c1 > 0 && c2 > 0
	})
	if err != nil {
		t.Fatalf("royalty never reached every holder: %s: %v", last, err)
	}
	// Shares 750k : 250k, both from index 0 (the transfer preceded any
	// revenue): ⌊750k·i⌋ lies between 3⌊250k·i⌋ and 3⌊250k·i⌋+2.
	if own < 3*sh || own > 3*sh+2 {
		t.Fatalf("owner claimable %d, shareholder %d: not 3:1 (shares %d:%d)", own, sh, ModelShares-ModelTransferShares, ModelTransferShares)
	}
	if c1 != c2 {
		t.Fatalf("contributors of equal weight can claim %d and %d", c1, c2)
	}
	t.Logf("royalty: %s", last)

	// The shareholder claims: its balance grows by exactly what it could
	// claim at the claim's height, less the fee, and nothing is left then.
	key, err := ks.Unlock("shareholder", pw)
	if err != nil {
		t.Fatal(err)
	}
	params, err := c.Params(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []*tx.Msg{tx.ModelClaim(net.ModelID)}
	fee := tx.RequiredFee(params, msgs)
	before, _, err := c.Account(ctx, holder, false)
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.SendAndWait(ctx, key, msgs, client.SendOptions{Fee: fee})
	if err != nil {
		t.Fatalf("shareholder claim: %v", err)
	}
	if err := c.WaitForHeight(ctx, h); err != nil {
		t.Fatal(err)
	}
	pool, hold := modelRecords(ctx, t, c, net.ModelID, holder, h-1)
	want, err := tx.Claimable(pool, hold, uint64(h))
	if err != nil || want == 0 {
		t.Fatalf("claimable at the claim's height %d: %d, %v", h, want, err)
	}
	after, _, err := c.Account(ctx, holder, false)
	if err != nil {
		t.Fatal(err)
	}
	if after.Balance+fee-before.Balance != want {
		t.Fatalf("claim paid %d (balance %d → %d, fee %d), claimable was %d",
			after.Balance+fee-before.Balance, before.Balance, after.Balance, fee, want)
	}
	pool, hold = modelRecords(ctx, t, c, net.ModelID, holder, h)
	if left, err := tx.Claimable(pool, hold, uint64(h)); err != nil || left != 0 || hold.Claimed != want {
		t.Fatalf("after the claim at %d: claimable %d (%v), claimed %d, want 0 and %d", h, left, err, hold.Claimed, want)
	}
	t.Logf("the shareholder claimed %d at height %d", want, h)

	// A restart of this home finds everything registered and sends nothing.
	again, err := publish(ctx, Options{Chain: c, Faucet: faucet, Keystore: ks, Password: pw},
		func(ed25519.PrivateKey, ...*tx.Msg) error { t.Error("a restart re-registered the model"); return nil }, net.ModelID)
	if err != nil || string(again.root) != string(net.DatasetRoot) || again.holders[1] != holder || again.contributors[1] != net.Contributors[1] {
		t.Fatalf("restart: %+v, %v; want the first run's dataset %x and holders", again, err, net.DatasetRoot)
	}
}

// modelRecords reads a model's pool and holder's holding as of height.
func modelRecords(ctx context.Context, t *testing.T, c *client.Client, modelID string, holder address.Address, height int64) (*tx.SharePool, *tx.ShareHolding) {
	t.Helper()
	m, hold := &tx.Model{}, &tx.ShareHolding{}
	for _, r := range []struct {
		path string
		m    proto.Message
	}{{tx.QueryModel + modelID, m}, {tx.QueryModelShares + modelID + "/" + holder.String(), hold}} {
		raw, _, _, err := c.Query(ctx, r.path, nil, height, false)
		if err != nil {
			t.Fatalf("query %s at %d: %v", r.path, height, err)
		}
		if err := proto.Unmarshal(raw, r.m); err != nil {
			t.Fatalf("decode %s at %d: %v", r.path, height, err)
		}
	}
	if m.Pool == nil {
		t.Fatalf("model %s at %d has no pool", modelID, height)
	}
	return m.Pool, hold
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
