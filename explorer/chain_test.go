package explorer_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/explorer"
	"github.com/agoranet/agora/internal/browser"
	"github.com/agoranet/agora/internal/poll"
	"github.com/agoranet/agora/internal/testkit"
)

// The chain half's tests share one kind of network: a single node whose
// genesis funds alice and bob; alice pays carol (a new account) 5 AGR,
// tries to pay bob more than she has (refused), and registers subnet 1.

const cpChainID = "agora-explorer-chain-test"

type cpNet struct {
	ch       *testkit.Chain
	url      string // the explorer
	alice    ed25519.PrivateKey
	bob      ed25519.PrivateKey
	carol    address.Address
	aliceHot address.Address // her hotkey: subnet 1's UID 0
	transfer string          // the transfer's hash, upper hex
	height   int64           // its block
	refused  string          // the refused transaction's hash: never on chain
}

const (
	cpAlice    = 1_000 * agr.Unit
	cpBob      = 500 * agr.Unit
	cpTransfer = 5 * agr.Unit
)

func startCpNet(t testing.TB) *cpNet {
	t.Helper()
	alice, aliceAddr := testkit.Key(1)
	bob, bobAddr := testkit.Key(2)
	aliceHot, _ := testkit.Key(4)
	_, carol := testkit.Key(3)
	ch := testkit.StartChain(t, testkit.NodeOptions{ChainID: cpChainID, BlockTime: 100 * time.Millisecond, Genesis: chain.Genesis{
		Params: chain.DefaultParams(100), Devnet: true,
		Accounts: []chain.GenesisAccount{{Address: aliceAddr, Balance: cpAlice}, {Address: bobAddr, Balance: cpBob}},
	}})
	srv, err := explorer.Start(testkit.Listen(t), explorer.Config{Chain: ch.Client})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	n := &cpNet{ch: ch, url: srv.URL(), alice: alice, bob: bob, carol: carol, aliceHot: testkit.Addr(aliceHot)}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hash, err := ch.Client.SignAndSend(ctx, alice, []*tx.Msg{tx.Transfer(carol, cpTransfer)}, client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ch.Client.WaitTx(ctx, hash)
	if err != nil {
		t.Fatal(err)
	}
	n.transfer, n.height = fmt.Sprintf("%X", hash), res.Height

	// More than bob has: CheckTx runs the whole transaction and refuses it,
	// so it has a hash but never a block.
	hash, err = ch.Client.SignAndSend(ctx, bob, []*tx.Msg{tx.Transfer(aliceAddr, 10*cpBob)}, client.SendOptions{})
	var te *client.TxError
	if !errors.As(err, &te) || te.Code != tx.CodeInsufficientFunds {
		t.Fatalf("overdraft: %v, want a refusal with code %d", err, tx.CodeInsufficientFunds)
	}
	n.refused = fmt.Sprintf("%X", hash)

	ch.RegisterSubnet(t, alice, aliceHot, "chain-test")
	return n
}

// getPage fetches a page (HTML or JSON) without following redirects.
func getPage(t *testing.T, rawURL string) (int, string, http.Header) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// getJSON fetches a JSON twin, checks its status and decodes it into v.
func getJSON(t *testing.T, rawURL string, wantCode int, v any) {
	t.Helper()
	code, body, h := getPage(t, rawURL)
	if code != wantCode {
		t.Fatalf("GET %s: %d, want %d: %s", rawURL, code, wantCode, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: content type %q", rawURL, ct)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v: %s", rawURL, err, body)
	}
}

// cpHome is the part of /api/status the tests read.
type cpHome struct {
	ChainID string `json:"chain_id"`
	Height  int64  `json:"height"`
	Supply  struct {
		Cap, Genesis, Minted, Burned, Issued, Total, Staked, Bonded, Unbonding, Locked, Escrowed uint64
		PendingEmission                                                                          uint64 `json:"pending_emission"`
		SubnetPending                                                                            uint64 `json:"subnet_pending"`
		RevenuePending                                                                           uint64 `json:"revenue_pending"`
		RoyaltyHeld                                                                              uint64 `json:"royalty_held"`
		OfferingEscrow                                                                           uint64 `json:"offering_escrow"`
		Circulating                                                                              uint64
	} `json:"supply"`
	Emission struct {
		BlockRewardBase uint64 `json:"block_reward_base"`
		Schedule        []struct {
			Height, Issued, Reward uint64
		} `json:"schedule"`
	} `json:"emission"`
	ChainValidators struct{ Active, Total int } `json:"chain_validators"`
	Subnets         []struct {
		Netuid uint32
		Name   string
		Owner  string
	} `json:"subnets"`
	RecentBlocks []struct {
		Height int64
		NumTxs int `json:"num_txs"`
	} `json:"recent_blocks"`
}

type cpTx struct {
	Hash     string
	Height   int64
	Signer   string
	Fee      uint64
	Code     uint32
	CodeName string `json:"code_name"`
	Msgs     []map[string]any
	Events   []struct {
		Type       string
		Attributes []struct{ Key, Value string }
	}
}

type cpAccount struct {
	Address string
	Balance uint64
	Nonce   uint64
	Stakes  []struct {
		Netuid uint32
		Hotkey string
		Owned  bool
	}
	Txs []struct {
		Hash     string
		Height   int64
		Sent     bool
		Received bool
		In, Out  uint64
		Types    []string
	}
}

func TestChainPages(t *testing.T) {
	n := startCpNet(t)
	ctx := t.Context()
	alice, bob := testkit.Addr(n.alice).String(), testkit.Addr(n.bob).String()

	t.Run("home", func(t *testing.T) {
		var first cpHome
		getJSON(t, n.url+"/api/status", http.StatusOK, &first)
		if first.ChainID != cpChainID || first.Height < n.height {
			t.Fatalf("status: chain %q height %d, want %q at %d or more", first.ChainID, first.Height, cpChainID, n.height)
		}
		var later cpHome
		wait, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := poll.Until(wait, 100*time.Millisecond, func() bool {
			later = cpHome{}
			getJSON(t, n.url+"/api/status", http.StatusOK, &later)
			return later.Height > first.Height
		}); err != nil {
			t.Fatalf("height stayed at %d: %v", first.Height, err)
		}
		s := later.Supply
		if s.Genesis != cpAlice+cpBob || s.Issued != s.Genesis+s.Minted || s.Total != s.Issued-s.Burned || s.Minted == 0 {
			t.Fatalf("supply does not add up: %+v", s)
		}
		pools := s.Staked + s.Bonded + s.Unbonding + s.Locked + s.Escrowed + s.PendingEmission + s.SubnetPending + s.RevenuePending + s.RoyaltyHeld + s.OfferingEscrow
		if s.Circulating+pools != s.Total {
			t.Fatalf("circulating %d + pools %d != total %d", s.Circulating, pools, s.Total)
		}
		// Every account there is: circulating is their balances. Nothing
		// moves them after setup (emission waits in pools), so the reads agree.
		var balances uint64
		for _, a := range []address.Address{testkit.Addr(n.alice), testkit.Addr(n.bob), n.carol} {
			acc, _, err := n.ch.Client.Account(ctx, a, false)
			if err != nil {
				t.Fatal(err)
			}
			balances += acc.Balance
		}
		if balances != s.Circulating {
			t.Fatalf("accounts hold %d, the page says %d circulate", balances, s.Circulating)
		}
		if s.Burned != 2*1_000_000 || s.Locked == 0 {
			t.Fatalf("burned %d (want two fees), locked %d (want subnet 1's lock)", s.Burned, s.Locked)
		}
		p, err := n.ch.Client.Params(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if s.Cap != p.SupplyCap || later.Emission.BlockRewardBase != p.BlockRewardBase || len(later.Emission.Schedule) < 2 ||
			later.Emission.Schedule[0].Reward != p.BlockRewardBase || later.Emission.Schedule[0].Issued != s.Genesis {
			t.Fatalf("emission %+v, cap %d: want the chain's params (cap %d, base %d)", later.Emission, s.Cap, p.SupplyCap, p.BlockRewardBase)
		}
		if later.ChainValidators.Active != 1 || later.ChainValidators.Total != 1 {
			t.Fatalf("chain validators %+v, want the one bootstrap validator active", later.ChainValidators)
		}
		if len(later.Subnets) != 1 || later.Subnets[0].Name != "chain-test" || later.Subnets[0].Owner != alice {
			t.Fatalf("subnets %+v", later.Subnets)
		}
		if len(later.RecentBlocks) != int(min(10, later.Height)) || later.RecentBlocks[0].Height != later.Height {
			t.Fatalf("recent blocks %+v at height %d", later.RecentBlocks, later.Height)
		}
		code, html, h := getPage(t, n.url+"/")
		if code != http.StatusOK || !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Fatalf("home: %d, CSP %q", code, h.Get("Content-Security-Policy"))
		}
		for _, want := range []string{`id="height" data-live="height"`, "Emission toward the cap", "<svg", "Circulating", "chain-test", "/subnets/1", "/chain-validators"} {
			if !strings.Contains(html, want) {
				t.Errorf("home page lacks %q", want)
			}
		}
	})

	t.Run("block", func(t *testing.T) {
		var b struct {
			Height int64
			NumTxs int `json:"num_txs"`
			Txs    []cpTx
			Events []struct{ Type string }
		}
		getJSON(t, fmt.Sprintf("%s/api/blocks/%d", n.url, n.height), http.StatusOK, &b)
		if b.Height != n.height || b.NumTxs != 1 || len(b.Txs) != 1 {
			t.Fatalf("block %+v", b)
		}
		got := b.Txs[0]
		want := map[string]any{"type": "transfer", "to": n.carol.String(), "amount": float64(cpTransfer)}
		if got.Hash != n.transfer || got.Signer != alice || got.Code != 0 || got.CodeName != "ok" || len(got.Msgs) != 1 || fmt.Sprint(got.Msgs[0]) != fmt.Sprint(want) {
			t.Fatalf("tx %+v, want the transfer %s decoded as %v", got, n.transfer, want)
		}
		if len(b.Events) == 0 || b.Events[0].Type != "emission" {
			t.Fatalf("end-of-block events %+v, want emission first", b.Events)
		}
		code, html, _ := getPage(t, fmt.Sprintf("%s/blocks/%d", n.url, n.height))
		for _, want := range []string{n.transfer, "Transfer", n.carol.String(), "5 AGR", "0.001 AGR", alice, "emission", "minted"} {
			if !strings.Contains(html, want) {
				t.Errorf("block page (%d) lacks %q", code, want)
			}
		}
	})

	t.Run("blocks", func(t *testing.T) {
		var l struct {
			Height int64
			Blocks []struct{ Height int64 }
			Older  int64 `json:"older_before"`
		}
		getJSON(t, n.url+"/api/blocks", http.StatusOK, &l)
		if len(l.Blocks) == 0 || l.Blocks[0].Height < n.height || (l.Blocks[0].Height > 20) != (l.Older > 0) {
			t.Fatalf("blocks %+v", l)
		}
		before := n.height + 1
		getJSON(t, fmt.Sprintf("%s/api/blocks?before=%d", n.url, before), http.StatusOK, &l)
		if len(l.Blocks) != int(before-1) || l.Blocks[0].Height != before-1 || l.Older != 0 {
			t.Fatalf("blocks before %d: %+v", before, l)
		}
	})

	t.Run("tx", func(t *testing.T) {
		for _, hash := range []string{n.transfer, strings.ToLower(n.transfer)} {
			var got cpTx
			getJSON(t, n.url+"/api/txs/"+hash, http.StatusOK, &got)
			if got.Hash != n.transfer || got.Height != n.height || got.Fee != 1_000_000 || len(got.Events) < 2 || got.Events[1].Type != "transfer" {
				t.Fatalf("tx %s: %+v", hash, got)
			}
		}
		_, html, _ := getPage(t, n.url+"/txs/"+n.transfer)
		for _, want := range []string{`id="tx-hash">` + n.transfer, fmt.Sprintf(`href="/blocks/%d"`, n.height), "Transfer", n.carol.String(), "recipient"} {
			if !strings.Contains(html, want) {
				t.Errorf("tx page lacks %q", want)
			}
		}
	})

	t.Run("account", func(t *testing.T) {
		cases := []struct {
			name     string
			addr     string
			sent     bool
			received bool
		}{{"sender", alice, true, false}, {"recipient", n.carol.String(), false, true}}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var a cpAccount
				getJSON(t, n.url+"/api/accounts/"+c.addr, http.StatusOK, &a)
				found := false
				for _, tx := range a.Txs {
					if tx.Hash == n.transfer {
						found = tx.Sent == c.sent && tx.Received == c.received && tx.Height == n.height &&
							(tx.In == cpTransfer) == c.received && (tx.Out == cpTransfer) == c.sent
					}
				}
				if !found {
					t.Fatalf("%s's txs %+v lack the transfer %s as sent=%v received=%v", c.addr, a.Txs, n.transfer, c.sent, c.received)
				}
				_, html, _ := getPage(t, n.url+"/accounts/"+c.addr)
				if !strings.Contains(html, `data-tx="`+n.transfer+`"`) {
					t.Fatalf("account page of %s has no row for the transfer", c.addr)
				}
			})
		}
		var a cpAccount
		getJSON(t, n.url+"/api/accounts/"+alice, http.StatusOK, &a)
		if a.Nonce != 2 || a.Balance != cpAlice-cpTransfer-2*1_000_000-lockOf(t, n) || len(a.Txs) != 2 || a.Txs[0].Types[0] != "subnet_register" {
			t.Fatalf("alice: %+v", a)
		}
		if len(a.Stakes) != 1 || !a.Stakes[0].Owned || a.Stakes[0].Netuid != 1 {
			t.Fatalf("alice's stakes %+v, want her owner hotkey on subnet 1", a.Stakes)
		}
		getJSON(t, n.url+"/api/accounts/"+bob, http.StatusOK, &a)
		if a.Balance != cpBob || a.Nonce != 0 || len(a.Txs) != 0 {
			t.Fatalf("bob, whose only transaction was refused: %+v", a)
		}
	})

	t.Run("chain validators", func(t *testing.T) {
		var l struct {
			Active     int
			Validators []struct {
				Operator, Status string
				Power            uint64
				ConsensusAddress string `json:"consensus_address"`
			}
		}
		getJSON(t, n.url+"/api/chain-validators", http.StatusOK, &l)
		if l.Active != 1 || len(l.Validators) != 1 || l.Validators[0].Status != "active" || l.Validators[0].Power != 1 || len(l.Validators[0].ConsensusAddress) != 40 {
			t.Fatalf("chain validators %+v", l)
		}
		_, html, _ := getPage(t, n.url+"/chain-validators")
		if !strings.Contains(html, "/accounts/"+l.Validators[0].Operator) {
			t.Fatal("chain validator page does not link the operator")
		}
	})

	t.Run("search", func(t *testing.T) {
		cases := []struct {
			q, kind, url string
		}{
			{strconv.FormatInt(n.height, 10), "block", fmt.Sprintf("/blocks/%d", n.height)},
			{" " + strings.ToLower(n.transfer) + " ", "tx", "/txs/" + n.transfer},
			{n.carol.String(), "account", "/accounts/" + n.carol.String()},
			{strings.ToUpper(n.carol.String()), "account", "/accounts/" + n.carol.String()},
			{"subnet 1", "subnet", "/subnets/1"},
			{"s1", "subnet", "/subnets/1"},
		}
		for _, c := range cases {
			code, _, h := getPage(t, n.url+"/search?q="+url.QueryEscape(c.q))
			if code != http.StatusSeeOther || h.Get("Location") != c.url {
				t.Errorf("search %q: %d to %q, want 303 to %q", c.q, code, h.Get("Location"), c.url)
			}
			var r struct{ Kind, URL string }
			getJSON(t, n.url+"/api/search?q="+url.QueryEscape(c.q), http.StatusOK, &r)
			if r.Kind != c.kind || r.URL != c.url {
				t.Errorf("api search %q: %+v, want %s %s", c.q, r, c.kind, c.url)
			}
		}
		code, html, _ := getPage(t, n.url+"/search")
		if code != http.StatusOK || !strings.Contains(html, "You can look up") {
			t.Errorf("empty search: %d", code)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		unknown := strings.Repeat("AB", 32)
		cases := []struct {
			path string
			code int
			msg  string // in the HTML page and the JSON error
		}{
			{"/blocks/abc", 400, "not a block height"},
			{"/blocks/0", 400, "not a block height"},
			{"/blocks/-3", 400, "not a block height"},
			{"/blocks/99999999", 404, "not committed yet"},
			{"/blocks?before=x", 400, "give a block height"},
			{"/txs/zz", 400, "not a transaction hash"},
			{"/txs/" + unknown, 404, "no transaction"},
			{"/txs/" + n.refused, 404, "no transaction"},
			{"/accounts/notanaddress", 400, "not an Agora address"},
			{"/accounts/agora1qqqqqqqq", 400, "not an Agora address"},
			{"/accounts/" + alice + "?before=1", 400, "give a block height"},
			{"/search?q=" + url.QueryEscape("hello world"), 400, "nothing to look up"},
			{"/search?q=" + unknown, 404, "no transaction"},
			{"/search?q=99999999", 404, "not committed yet"},
			{"/search?q=0", 400, "heights start at 1"},
			{"/search?q=agora1nope", 400, "not an Agora address"},
			{"/search?q=" + url.QueryEscape("subnet 99"), 404, "no subnet 99"},
		}
		for _, c := range cases {
			code, html, _ := getPage(t, n.url+c.path)
			if code != c.code || !strings.Contains(html, c.msg) {
				t.Errorf("GET %s: %d, want %d with %q in the page:\n%s", c.path, code, c.code, c.msg, html)
			}
			var e struct {
				Error struct {
					Code    int
					Message string
				}
			}
			getJSON(t, n.url+"/api"+c.path, c.code, &e)
			if e.Error.Code != c.code || !strings.Contains(e.Error.Message, c.msg) {
				t.Errorf("GET /api%s: %+v, want %d %q", c.path, e, c.code, c.msg)
			}
		}
		if code, _, _ := getPage(t, n.url+"/no-such-page"); code != http.StatusNotFound {
			t.Errorf("an unknown path answers %d", code)
		}
	})

	// Bob delegates to alice's hotkey and opens a channel to carol, in one
	// transaction.
	t.Run("stake and channel", func(t *testing.T) {
		const stake, deposit = 10 * agr.Unit, 2 * agr.Unit
		tip, err := n.ch.Client.Height(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h, err := n.ch.Client.SignAndSend(ctx, n.bob, []*tx.Msg{
			tx.StakeAdd(n.aliceHot, 1, stake), tx.ChannelOpen(n.carol, 1, deposit, uint64(tip)+10_000),
		}, client.SendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := n.ch.Client.WaitTx(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		type stakeRow struct {
			Netuid      uint32
			Hotkey      string
			UID         int
			Owned       bool
			Stake       uint64
			HotkeyStake uint64 `json:"hotkey_stake"`
		}
		type channelRow struct {
			ID                 uint64
			Role, Counterparty string
			Netuid             uint32
			Open               bool
			Deposit            uint64
		}
		var a struct {
			Staked   uint64
			Stakes   []stakeRow
			Channels []channelRow
		}
		getJSON(t, n.url+"/api/accounts/"+bob, http.StatusOK, &a)
		wantStake := stakeRow{Netuid: 1, Hotkey: n.aliceHot.String(), UID: 0, Stake: stake, HotkeyStake: stake}
		if a.Staked != stake || len(a.Stakes) != 1 || a.Stakes[0] != wantStake {
			t.Fatalf("bob's stakes %+v (staked %d), want %+v", a.Stakes, a.Staked, wantStake)
		}
		wantCh := channelRow{ID: 1, Role: "payer", Counterparty: n.carol.String(), Netuid: 1, Open: true, Deposit: deposit}
		if len(a.Channels) != 1 || a.Channels[0] != wantCh {
			t.Fatalf("bob's channels %+v, want %+v", a.Channels, wantCh)
		}
		getJSON(t, n.url+"/api/accounts/"+n.carol.String(), http.StatusOK, &a)
		if len(a.Channels) != 1 || a.Channels[0].Role != "payee" || a.Channels[0].Counterparty != bob || len(a.Stakes) != 0 {
			t.Fatalf("carol: channels %+v, stakes %+v", a.Channels, a.Stakes)
		}
		getJSON(t, n.url+"/api/accounts/"+alice, http.StatusOK, &a)
		if len(a.Stakes) != 1 || !a.Stakes[0].Owned || a.Stakes[0].Stake != 0 || a.Stakes[0].HotkeyStake != stake {
			t.Fatalf("alice's stakes %+v: want her hotkey holding bob's %d, none of it hers", a.Stakes, stake)
		}
		_, html, _ := getPage(t, fmt.Sprintf("%s/blocks/%d", n.url, res.Height))
		for _, want := range []string{"Stake add", "Channel open", n.aliceHot.String(), "10 AGR", "2 AGR", `href="/channels/1"`, `href="/subnets/1"`} {
			if !strings.Contains(html, want) {
				t.Errorf("block %d's page lacks %q", res.Height, want)
			}
		}
	})

	// Last: it changes bob's and carol's history. Bob sends transfers in
	// bursts (25, then 10, then 10), each burst in a block or two: pages
	// end inside his history, and one block holds more than a page.
	t.Run("account paging", func(t *testing.T) {
		sent := map[string]bool{}
		nonce, err := n.ch.Client.PendingNonce(ctx, testkit.Addr(n.bob))
		if err != nil {
			t.Fatal(err)
		}
		before := len(cpPages(t, n, bob))
		for _, burst := range []int{25, 10, 10} {
			var last []byte
			for range burst {
				h, err := n.ch.Client.SignAndSend(ctx, n.bob, []*tx.Msg{tx.Transfer(n.carol, agr.Unit)}, client.SendOptions{Nonce: &nonce})
				if err != nil {
					t.Fatal(err)
				}
				sent[fmt.Sprintf("%X", h)], last = true, h
				nonce++
			}
			if _, err := n.ch.Client.WaitTx(ctx, last); err != nil {
				t.Fatal(err)
			}
		}
		count := len(sent)
		got := cpPages(t, n, bob)
		if len(got) != count+before {
			t.Fatalf("bob's pages list %d transactions, he sent %d after %d", len(got), count, before)
		}
		for _, h := range got[:count] {
			if !sent[h] {
				t.Fatalf("bob's newest pages list %s, which is not among his burst", h)
			}
		}
		got = cpPages(t, n, n.carol.String())
		if len(got) != count+1 || got[len(got)-1] != n.transfer { // the channel's payee is not a transfer's recipient
			t.Fatalf("carol's pages list %d transactions ending %s, want %d ending with alice's %s", len(got), got[len(got)-1], count+1, n.transfer)
		}
	})
}

// cpPages walks an account's transaction pages and returns every hash,
// newest first, failing on a duplicate or an order that goes back up.
func cpPages(t *testing.T, n *cpNet, addr string) []string {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	next, last := n.url+"/api/accounts/"+addr, int64(1<<62)
	for range 20 {
		var a struct {
			Txs []struct {
				Hash   string
				Height int64
			}
			Older int64 `json:"older_before"`
		}
		getJSON(t, next, http.StatusOK, &a)
		for _, tx := range a.Txs {
			if seen[tx.Hash] || tx.Height > last {
				t.Fatalf("%s: %s at %d after height %d (seen before: %v)", next, tx.Hash, tx.Height, last, seen[tx.Hash])
			}
			seen[tx.Hash], last = true, tx.Height
			out = append(out, tx.Hash)
		}
		if a.Older == 0 {
			return out
		}
		next = fmt.Sprintf("%s/api/accounts/%s?before=%d", n.url, addr, a.Older)
	}
	t.Fatalf("more than 20 pages of %s", addr)
	return nil
}

// lockOf is what registering subnet 1 cost alice.
func lockOf(t *testing.T, n *cpNet) uint64 {
	t.Helper()
	s, err := n.ch.Client.Subnet(t.Context(), 1, false)
	if err != nil {
		t.Fatal(err)
	}
	return s.Locked
}

// TestChainPagesBrowser loads the overview, a block, a transaction and an
// account in Chromium at desktop and phone size.
func TestChainPagesBrowser(t *testing.T) {
	n := startCpNet(t)
	alice := testkit.Addr(n.alice).String()
	for _, size := range []struct {
		name string
		size browser.Size
		home string
	}{{"desktop", browser.Desktop, "explorer-home"}, {"phone", browser.Phone, "explorer-home-phone"}} {
		t.Run(size.name, func(t *testing.T) {
			b := browser.New(t, size.size)
			b.MustDo(30*time.Second, chromedp.Navigate(n.url+"/"))
			first, err := strconv.ParseInt(b.Text(10*time.Second, "#height"), 10, 64)
			if err != nil || first < n.height {
				t.Fatalf("#height %d (%v), want at least %d", first, err, n.height)
			}
			// live.js keeps it current.
			b.WaitUntil(15*time.Second, fmt.Sprintf(`Number(document.querySelector("#height").textContent) > %d`, first))
			if w := browser.Get(b, 5*time.Second, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > int(size.size.Width)+1 {
				t.Errorf("the overview is %d px wide on a %d px screen", w, size.size.Width)
			}
			b.Screenshot(size.home)

			b.MustDo(30*time.Second, chromedp.Navigate(fmt.Sprintf("%s/blocks/%d", n.url, n.height)))
			if got := b.Text(10*time.Second, "#num-txs"); got != "1" {
				t.Fatalf("block page lists %q transactions", got)
			}
			if size.name == "desktop" {
				b.Screenshot("explorer-block")
			}
			// From the block to its transaction, by the link (clicked after
			// the evaluation returns: the navigation would cut it short).
			b.MustDo(10*time.Second, chromedp.Evaluate[chromedp.Void](`setTimeout(() => document.querySelector('a[href="/txs/`+n.transfer+`"]').click(), 0)`))
			cpAwaitPage(t, b, `location.pathname === "/txs/`+n.transfer+`" && document.querySelector("#tx-hash") !== null`)
			if got := b.Text(10*time.Second, "#tx-hash"); got != n.transfer {
				t.Fatalf("tx page shows %q, want %s", got, n.transfer)
			}
			if size.name == "desktop" {
				b.Screenshot("explorer-tx")
			}
			// The search box finds an account.
			b.MustDo(30*time.Second, chromedp.Navigate(n.url+"/"),
				chromedp.SendKeys(chromedp.CSS(`header input[name="q"]`), alice),
				chromedp.Evaluate[chromedp.Void](`setTimeout(() => document.querySelector("header form").requestSubmit(), 0)`))
			cpAwaitPage(t, b, `location.pathname === "/accounts/`+alice+`"`)
			b.WaitUntil(10*time.Second, `document.querySelector('tr[data-tx="`+n.transfer+`"]') !== null`)
			if size.name == "desktop" {
				b.Screenshot("explorer-account")
			} else {
				b.Screenshot("explorer-account-phone")
			}
			b.NoProblems()
		})
	}
}

// cpAwaitPage waits for a page a click or a form led to: b.WaitUntil's
// poll ends with an error when the navigation replaces the page it runs in,
// so it is retried until the new page answers true.
func cpAwaitPage(t *testing.T, b *browser.Browser, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var last error
	if err := poll.Until(ctx, 100*time.Millisecond, func() bool {
		last = b.Do(5*time.Second, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(3*time.Second)))
		return last == nil
	}); err != nil {
		t.Fatalf("waiting for %s: %v (last: %v)", expr, err, last)
	}
}
