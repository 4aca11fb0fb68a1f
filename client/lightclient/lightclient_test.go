package lightclient_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/client/lightclient"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/node"
)

const chainID = "agora-light-test"

// startBondedChain runs a one-node chain whose chain validator has bonded
// 100 AGR (voting power 100), so a newcomer with power 1 changes the set
// without stopping the chain. It returns the node's RPC URL.
func startBondedChain(t *testing.T, operator ed25519.PrivateKey, funded ...ed25519.PrivateKey) string {
	t.Helper()
	home := t.TempDir()
	g := chain.Genesis{Params: chain.DefaultParams(200), Devnet: true,
		Accounts: []chain.GenesisAccount{{Address: testkit.Addr(operator), Balance: 1000 * agr.Unit}}}
	for _, k := range funded {
		g.Accounts = append(g.Accounts, chain.GenesisAccount{Address: testkit.Addr(k), Balance: 1000 * agr.Unit})
	}
	opts := node.InitOptions{ChainID: chainID, Genesis: g, BlockTime: 200 * time.Millisecond, P2PAddr: "tcp://127.0.0.1:0"}
	// The first Init makes the consensus key the gentx must name.
	if err := node.Init(home, opts); err != nil {
		t.Fatal(err)
	}
	cons, err := node.ConsensusPubKey(home)
	if err != nil {
		t.Fatal(err)
	}
	opts.Genesis.Validators = []chain.GenesisValidator{chain.SignGenesisValidator(chainID, operator,
		chain.GenesisValidator{Moniker: "genesis", ConsensusPubKey: cons, Bond: 100 * agr.Unit})}
	opts.Overwrite = true
	if err := node.Init(home, opts); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(home, node.StartOptions{RPCListener: testkit.Listen(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.WaitForHeight(ctx, 2); err != nil {
		t.Fatal(err)
	}
	return n.RPCURL()
}

func newClient(t *testing.T, urls ...string) *client.Client {
	t.Helper()
	c, err := client.New(urls...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// trustRoot is header 1's height and hash, as an operator would copy it
// from a source it trusts.
func trustRoot(t *testing.T, ctx context.Context, c *client.Client) lightclient.Options {
	t.Helper()
	sh, err := c.Commit(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	return lightclient.Options{TrustHeight: 1, TrustHash: sh.Hash()}
}

func TestLightClientFollowsChainValidatorChange(t *testing.T) {
	opKey, _ := testkit.Key(1)
	joiner, _ := testkit.Key(2)
	url := startBondedChain(t, opKey, joiner)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newClient(t, url)
	trust := trustRoot(t, ctx, c)
	before, err := c.ConsensusValidators(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}

	// A second chain validator bonds 1 AGR: the set (and its hash) changes.
	consPub, consPriv, _ := ed25519.GenerateKey(nil)
	proof := tx.SignChainValidatorProof(chainID, testkit.Addr(joiner), consPriv)
	created, err := c.SendAndWait(ctx, joiner, []*tx.Msg{tx.ChainValidatorCreate(consPub, proof, "joiner", agr.Unit)}, client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Updates from block H take effect at H+2.
	changed := created + 2
	if err := c.WaitForHeight(ctx, changed+1); err != nil {
		t.Fatal(err)
	}
	after, err := c.ConsensusValidators(ctx, changed)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() != 2 || bytes.Equal(after.Hash(), before.Hash()) {
		t.Fatalf("validator set did not change: %d validators at %d", after.Size(), changed)
	}

	v, err := lightclient.New(ctx, chainID, c, []*client.Client{newClient(t, url)}, trust)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	hdr, err := v.VerifiedHeader(ctx, changed+1)
	if err != nil {
		t.Fatalf("verify a header after the change from trusted height 1: %v", err)
	}
	if !bytes.Equal(hdr.ValidatorsHash, after.Hash()) {
		t.Fatal("verified header does not carry the new chain validator set")
	}
	// Proven queries now rest on the light client.
	c.SetVerifier(v)
	acc, p, err := c.Account(ctx, testkit.Addr(joiner), true)
	if err != nil || p == nil || acc.Balance >= 1000*agr.Unit {
		t.Fatalf("proven account through the light client: %+v %+v %v", acc, p, err)
	}
}

// rewritingProxy is a real HTTP server in front of a real node that passes
// JSON-RPC through, letting rewrite change the result of any method.
func rewritingProxy(t *testing.T, upstream string, rewrite func(method string, result map[string]any)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var call struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &call)
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if json.Unmarshal(out, &m) == nil {
			if res, ok := m["result"].(map[string]any); ok {
				rewrite(call.Method, res)
				out, _ = json.Marshal(m)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLightClientCatchesLyingNode(t *testing.T) {
	opKey, _ := testkit.Key(1)
	alice, _ := testkit.Key(3)
	url := startBondedChain(t, opKey, alice)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	honest := newClient(t, url)
	trust := trustRoot(t, ctx, honest)
	if err := honest.WaitForHeight(ctx, 4); err != nil {
		t.Fatal(err)
	}

	fakeRoot := strings.Repeat("AB", 32)
	// The liar tells the truth at the trusted height, so the light client
	// starts, and lies about every later one.
	afterTrust := func(h any) bool {
		s, _ := h.(string)
		n, err := strconv.ParseInt(s, 10, 64)
		return err == nil && n > 1
	}
	cases := []struct {
		name    string
		rewrite func(method string, result map[string]any)
	}{
		{"header app hash rewritten", func(method string, res map[string]any) {
			if method != "commit" {
				return
			}
			if sh, ok := res["signed_header"].(map[string]any); ok {
				if h, ok := sh["header"].(map[string]any); ok && afterTrust(h["height"]) {
					h["app_hash"] = fakeRoot
				}
			}
		}},
		{"chain validator set replaced by the liar's own key", func(method string, res map[string]any) {
			if method != "validators" || !afterTrust(res["block_height"]) {
				return
			}
			pub, _, _ := ed25519.GenerateKey(nil)
			vals, _ := res["validators"].([]any)
			for _, v := range vals {
				if vm, ok := v.(map[string]any); ok {
					addr := tx.ConsensusAddress(pub)
					vm["address"] = strings.ToUpper(hex.EncodeToString(addr))
					vm["pub_key"] = map[string]any{"type": "tendermint/PubKeyEd25519", "value": pub}
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			liar := rewritingProxy(t, url, tc.rewrite)
			lc := newClient(t, liar.URL)
			v, err := lightclient.New(ctx, chainID, lc, []*client.Client{newClient(t, url)}, trust)
			if err != nil {
				t.Fatalf("the liar told the truth at the trusted height, yet the light client did not start: %v", err)
			}
			defer v.Close()
			lc.SetVerifier(v)
			_, _, err = lc.Account(ctx, testkit.Addr(alice), true)
			if !errors.Is(err, client.ErrProof) {
				t.Fatalf("a proven answer through a lying primary: want ErrProof, got %v", err)
			}
			t.Logf("refused: %v", err)
		})
	}

	// The trusted hash itself is the root: a client given the wrong one
	// refuses to start rather than follow a chain it cannot vouch for.
	wrong := trust
	wrong.TrustHash = bytes.Repeat([]byte{7}, 32)
	if _, err := lightclient.New(ctx, chainID, honest, []*client.Client{honest}, wrong); err == nil {
		t.Fatal("light client started from a hash the chain never had")
	}
}

func TestClientFailsOverBetweenNodes(t *testing.T) {
	opKey, _ := testkit.Key(1)
	url := startBondedChain(t, opKey)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pass := func(string, map[string]any) {}
	first, second := rewritingProxy(t, url, pass), rewritingProxy(t, url, pass)
	c := newClient(t, first.URL, second.URL)
	if _, err := c.Height(ctx); err != nil {
		t.Fatal(err)
	}
	first.Close()
	h, err := c.Height(ctx)
	if err != nil || h <= 0 {
		t.Fatalf("after the first node died: height %d, %v", h, err)
	}
	// Application answers are final, not a reason to fail over.
	if _, err := c.Tx(ctx, bytes.Repeat([]byte{1}, 32)); err == nil || errors.Is(err, client.ErrNoEndpoint) {
		t.Fatalf("missing tx: want the node's answer, got %v", err)
	}
	second.Close()
	_, err = c.Height(ctx)
	if !errors.Is(err, client.ErrNoEndpoint) || !strings.Contains(err.Error(), first.URL) || !strings.Contains(err.Error(), second.URL) {
		t.Fatalf("every node down: want an error naming each endpoint, got %v", err)
	}
}
