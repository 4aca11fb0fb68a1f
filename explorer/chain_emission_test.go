package explorer

import (
	"bytes"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/emission"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/testkit"
)

// TestEmissionScheduleMatchesBlocks steps the chain's rule block by block
// (emission.BlockReward on genesis + minted, as chain/exec.go does) and
// checks the closed-form schedule against every height.
func TestEmissionScheduleMatchesBlocks(t *testing.T) {
	cases := []struct {
		name                    string
		base, capacity, genesis uint64
	}{
		{"small reward", 7, 1000, 0},
		{"reward a tenth of the cap", 100, 1000, 0},
		{"reward above half the cap", 600, 1000, 0},
		{"genesis near the cap", 1, 10, 9},
		{"premine", 3, 1 << 14, 5000},
		{"genesis at the cap", 5, 100, 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			phases := emissionSchedule(c.base, c.capacity, c.genesis, 64)
			if len(phases) == 0 || phases[0].Height != 0 || phases[0].Issued != c.genesis {
				t.Fatalf("schedule starts %+v, want genesis %d at height 0", phases, c.genesis)
			}
			next := 1
			issued := c.genesis
			for h := uint64(0); ; h++ {
				if got := issuedAt(c.base, c.capacity, c.genesis, h); got != issued {
					t.Fatalf("issuedAt(%d) = %d, stepping the chain's rule gives %d", h, got, issued)
				}
				if next < len(phases) && phases[next].Height == h {
					if phases[next].Issued != issued {
						t.Fatalf("phase %d starts at height %d with %d issued, stepping gives %d", next, h, phases[next].Issued, issued)
					}
					next++
				}
				r := emission.BlockReward(c.base, c.capacity, issued)
				if r == 0 {
					break
				}
				issued += r
				if h > 1<<20 {
					t.Fatal("emission never ends")
				}
			}
			if next != len(phases) {
				t.Fatalf("only %d of %d phases met while stepping: %+v", next, len(phases), phases)
			}
			if last := phases[len(phases)-1]; last.Reward != 0 {
				t.Fatalf("schedule to the end stops with reward %d", last.Reward)
			}
		})
	}
	// The real parameters: the horizon ends after ten halvings, 99.9% out.
	p := chain.DefaultParams(6000)
	ph := emissionSchedule(p.BlockRewardBase, p.SupplyCap, 0, emissionHorizon)
	last := ph[len(ph)-1]
	if last.Halvings != emissionHorizon || last.Issued < p.SupplyCap-p.SupplyCap/1000 {
		t.Fatalf("horizon ends at %+v", last)
	}
	if ph[0].Reward != agr.Unit/2 || ph[1].Issued < p.SupplyCap/2 {
		t.Fatalf("first phases %+v %+v: want 0.5 AGR a block until half the cap", ph[0], ph[1])
	}
}

// TestEmissionScheduleMatchesNode checks the schedule against a running
// chain: genesis + minted at a committed height is what it says.
func TestEmissionScheduleMatchesNode(t *testing.T) {
	_, a := testkit.Key(1)
	ch := testkit.StartChain(t, testkit.NodeOptions{ChainID: "agora-explorer-emission", BlockTime: 50 * time.Millisecond, Genesis: chain.Genesis{
		Params: chain.DefaultParams(100), Devnet: true, Accounts: []chain.GenesisAccount{{Address: a, Balance: 7 * agr.Unit}},
	}})
	ctx := t.Context()
	if err := ch.Client.WaitForHeight(ctx, 5); err != nil {
		t.Fatal(err)
	}
	raw, _, h, err := ch.Client.Query(ctx, tx.QuerySupply, nil, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	var s tx.Supply
	if err := proto.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	p, err := ch.Client.Params(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := issuedAt(p.BlockRewardBase, p.SupplyCap, s.Genesis, uint64(h)); s.Genesis+s.Minted != want {
		t.Fatalf("at height %d the chain has issued %d, the schedule says %d", h, s.Genesis+s.Minted, want)
	}
}

// TestFailedTxPage renders a transaction that failed in its block. A single
// honest node never includes one (CheckTx runs the whole transaction and
// the mempool rechecks after every block), so the result is made up here.
func TestFailedTxPage(t *testing.T) {
	alice, _ := testkit.Key(1)
	_, bob := testkit.Key(2)
	raw, err := tx.Sign(alice, &tx.TxBody{ChainId: "c", Nonce: 3, Fee: 1_000_000, Msgs: []*tx.Msg{tx.Transfer(bob, 50*agr.Unit)}})
	if err != nil {
		t.Fatal(err)
	}
	const log = "message 0: insufficient funds: agora1… has 10, wants 50000000000"
	v := decodeTx(raw, 7, 0, txOutcome{Code: tx.CodeInsufficientFunds, Log: log, Events: []abci.Event{
		{Type: "tx", Attributes: []abci.EventAttribute{{Key: "signer", Value: testkit.Addr(alice).String()}, {Key: "fee", Value: "1000000"}}},
	}})
	if v.OK() || v.CodeName != "insufficient_funds" || v.Signer != testkit.Addr(alice).String() || v.Fee != 1_000_000 {
		t.Fatalf("decoded %+v", v)
	}
	if len(v.Msgs) != 1 || v.Msgs[0].Type != "transfer" {
		t.Fatalf("messages %+v", v.Msgs)
	}
	c, err := client.New("http://127.0.0.1:1") // never called: only templates run
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Chain: c})
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range []struct {
		name string
		data any
	}{{"tx", &txPage{txView: v}}, {"block", &blockView{Height: 7, Tip: 9, NumTxs: 1, Txs: []txView{v}}}} {
		var b bytes.Buffer
		if err := e.pages[page.name].ExecuteTemplate(&b, "layout", view{Data: page.data}); err != nil {
			t.Fatalf("%s page: %v", page.name, err)
		}
		html := b.String()
		for _, want := range []string{"insufficient_funds", "insufficient funds: agora1… has 10", "badge fail", bob.String(), "50 AGR", "0.001 AGR"} {
			if !strings.Contains(html, want) {
				t.Errorf("%s page lacks %q", page.name, want)
			}
		}
	}
}
