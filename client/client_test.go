package client_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/node"
)

const testChainID = "agora-client-test"

// startNode runs an in-process node with the shared test helper. Alice and
// Bob are funded differently so their accounts are told apart by value.
func startNode(t *testing.T, alice, bob address.Address) (*node.Node, string) {
	t.Helper()
	n := testkit.StartNode(t, testkit.NodeOptions{ChainID: testChainID, Genesis: chain.Genesis{
		Params: chain.DefaultParams(200), Devnet: true, Accounts: []chain.GenesisAccount{
			{Address: alice, Balance: 7_000_000_000}, {Address: bob, Balance: 9_000_000_000}}}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Height 2: the state of block 1 is committed to by header 2.
	if err := n.WaitForHeight(ctx, 2); err != nil {
		t.Fatal(err)
	}
	return n, n.RPCURL()
}

// rpcCall is a JSON-RPC request as CometBFT's HTTP client sends it.
type rpcCall struct {
	JSONRPC string         `json:"jsonrpc"`
	ID      any            `json:"id"`
	Method  string         `json:"method"`
	Params  map[string]any `json:"params"`
}

// lyingNode is a real HTTP server in front of a real node that speaks its
// JSON-RPC, passing everything through except abci_query, whose request
// and answer it may rewrite: the node's proofs stay genuine, only what they
// are proofs of changes.
func lyingNode(t *testing.T, upstream string, rewriteReq func(params map[string]any), rewriteResp func(response map[string]any)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var call rpcCall
		query := json.Unmarshal(body, &call) == nil && call.Method == "abci_query"
		if query && rewriteReq != nil {
			rewriteReq(call.Params)
			body, _ = json.Marshal(call)
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if query && rewriteResp != nil {
			var m map[string]any
			if err := json.Unmarshal(out, &m); err == nil {
				if res, ok := m["result"].(map[string]any); ok {
					if qr, ok := res["response"].(map[string]any); ok {
						rewriteResp(qr)
						out, _ = json.Marshal(m)
					}
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestProvenQuery(t *testing.T) {
	_, alice := testkit.Key(1)
	_, bob := testkit.Key(2)
	_, url := startNode(t, alice, bob)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	honest, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	acc, p, err := honest.Account(ctx, alice, true)
	if err != nil || acc.Balance != 7_000_000_000 || p == nil || p.Height <= 0 || len(p.AppHash) == 0 {
		t.Fatalf("honest proven account: %+v %+v %v", acc, p, err)
	}
	// Absence is proven too: there is no subnet 1 yet.
	if _, err := honest.Subnet(ctx, 1, true); !errors.Is(err, client.ErrNoSubnet) {
		t.Fatalf("proven absent subnet: %v, want ErrNoSubnet", err)
	}

	aliceQ, bobQ := tx.QueryAccount+alice.String(), tx.QueryAccount+bob.String()
	for _, tc := range []struct {
		name string
		req  func(map[string]any)
		resp func(map[string]any)
	}{
		{
			// Asked for Alice, the node answers Bob's account with Bob's valid proof.
			name: "another key's value and proof",
			req: func(p map[string]any) {
				if p["path"] == aliceQ {
					p["path"] = bobQ
				}
			},
		},
		{
			name: "tampered value",
			resp: func(r map[string]any) {
				v, _ := r["value"].(string)
				raw, err := base64.StdEncoding.DecodeString(v)
				if err != nil || len(raw) == 0 {
					return
				}
				raw[len(raw)-1] ^= 1
				r["value"] = base64.StdEncoding.EncodeToString(raw)
			},
		},
		{
			name: "key rewritten in the answer",
			resp: func(r map[string]any) {
				r["key"] = base64.StdEncoding.EncodeToString([]byte("not the key"))
			},
		},
		{
			name: "proof stripped",
			resp: func(r map[string]any) { delete(r, "proofOps") },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.New(lyingNode(t, url, tc.req, tc.resp))
			if err != nil {
				t.Fatal(err)
			}
			acc, _, err := c.Account(ctx, alice, true)
			if err == nil {
				t.Fatalf("lying node accepted: balance %d", acc.Balance)
			}
			if !errors.Is(err, client.ErrProof) {
				t.Fatalf("err = %v, want ErrProof", err)
			}
		})
	}

	// A node that answers an older height than the one asked for.
	t.Run("another height", func(t *testing.T) {
		h, err := honest.Height(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(lyingNode(t, url, func(p map[string]any) { p["height"] = "1" }, nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := c.Query(ctx, aliceQ, nil, h, true); !errors.Is(err, client.ErrProof) {
			t.Fatalf("answer for height 1 to a question for %d: %v, want ErrProof", h, err)
		}
	})
}

// ChainID is read and cached by concurrent callers (the race detector
// checks the cache).
func TestChainIDConcurrent(t *testing.T) {
	_, alice := testkit.Key(1)
	_, bob := testkit.Key(2)
	_, url := startNode(t, alice, bob)
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			id, err := c.ChainID(ctx)
			if err == nil && id != testChainID {
				err = errors.New("chain id " + id)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestTxSearchAndBlockchain: a transfer is found by its signer and its
// recipient through the node's tx index, newest first, and block headers
// come back as a range.
func TestTxSearchAndBlockchain(t *testing.T) {
	alicePriv, alice := testkit.Key(1)
	_, bob := testkit.Key(2)
	_, url := startNode(t, alice, bob)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	var hashes [][]byte
	for range 2 {
		h, err := c.SignAndSend(ctx, alicePriv, []*tx.Msg{tx.Transfer(bob, 1_000)}, client.SendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitTx(ctx, h); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	for _, q := range []string{"tx.signer='" + alice.String() + "'", "transfer.recipient='" + bob.String() + "'"} {
		res, err := c.TxSearch(ctx, q, 1, 10, true)
		if err != nil {
			t.Fatal(err)
		}
		if res.TotalCount != 2 || len(res.Txs) != 2 || !bytes.Equal(res.Txs[0].Hash, hashes[1]) || !bytes.Equal(res.Txs[1].Hash, hashes[0]) {
			t.Fatalf("%s: %d results (total %d), want the two transfers newest first", q, len(res.Txs), res.TotalCount)
		}
	}
	if res, err := c.TxSearch(ctx, "tx.signer='"+bob.String()+"'", 1, 10, true); err != nil || res.TotalCount != 0 {
		t.Fatalf("bob signed nothing: %+v %v", res, err)
	}
	info, err := c.Blockchain(ctx, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.BlockMetas) != 2 || info.BlockMetas[0].Header.Height != 2 || info.BlockMetas[1].Header.Height != 1 || info.LastHeight < 2 {
		t.Fatalf("blockchain 1..2: %d metas, last %d", len(info.BlockMetas), info.LastHeight)
	}
}
