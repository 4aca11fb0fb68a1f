package gateway

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/miner"
	"github.com/agoranet/agora/node"
	"github.com/agoranet/agora/wire"
)

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type payWorld struct {
	c                      *client.Client
	chainID                string
	payer, gw, other       ed25519.PrivateKey
	gwAddr                 address.Address
	srv                    *httptest.Server
	ledgerPath             string
	ledger                 *Ledger
	good, wrongPayee, soon uint64 // channel ids
}

func addr(k ed25519.PrivateKey) address.Address {
	return address.FromPubKey(k.Public().(ed25519.PublicKey))
}

func newPayWorld(t *testing.T) *payWorld {
	payer, _ := key(10)
	gw, _ := key(11)
	other, _ := key(12)
	ownerHot, _ := key(13)
	home := t.TempDir()
	rpc := freePort(t)
	g := chain.Genesis{Params: chain.DefaultParams(200), Devnet: true, Accounts: []chain.GenesisAccount{
		{Address: addr(payer), Balance: 1_000 * agr.Unit}, {Address: addr(gw), Balance: 10 * agr.Unit}}}
	if err := node.Init(home, node.InitOptions{ChainID: "agora-pay-test", Genesis: g, BlockTime: 200 * time.Millisecond,
		RPCAddr: fmt.Sprintf("tcp://127.0.0.1:%d", rpc), P2PAddr: fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))}); err != nil {
		t.Fatal(err)
	}
	nd, err := node.Start(home, node.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Stop() })
	ctx := context.Background()
	if err := nd.WaitForHeight(ctx, 1); err != nil {
		t.Fatal(err)
	}
	c, _ := client.New(nd.RPCURL())
	w := &payWorld{c: c, chainID: "agora-pay-test", payer: payer, gw: gw, other: other, gwAddr: addr(gw)}
	send := func(k ed25519.PrivateKey, msgs ...*tx.Msg) {
		t.Helper()
		if _, err := c.SendAndWait(ctx, k, msgs, client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	send(payer, &tx.Msg{Sum: &tx.Msg_SubnetRegister{SubnetRegister: &tx.MsgSubnetRegister{OwnerHotkey: tx.ProveHotkey(ownerHot, w.chainID, subnet.NewSubnetNetuid, addr(payer))}}})
	h, _ := c.Height(ctx)
	open := func(payee address.Address, deposit, expiry uint64) *tx.Msg {
		return &tx.Msg{Sum: &tx.Msg_ChannelOpen{ChannelOpen: &tx.MsgChannelOpen{Payee: payee[:], Netuid: 1, Deposit: deposit, ExpiryHeight: expiry}}}
	}
	send(payer, open(w.gwAddr, agr.Unit, uint64(h)+10_000), open(addr(other), agr.Unit, uint64(h)+10_000), open(w.gwAddr, agr.Unit, uint64(h)+25))
	w.good, w.wrongPayee, w.soon = 1, 2, 3

	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := engine.Generate(p, engine.Shapes["tiny"], engine.QuantQ8, 1); err != nil {
		t.Fatal(err)
	}
	m, _ := engine.Load(p)
	t.Cleanup(func() { m.Close() })
	b, _ := miner.NewBuiltin(m)
	mk, ma := key(1)
	mn, _ := miner.New(miner.Config{Hotkey: mk, Backend: b, MaxConcurrent: 2, PricePer1K: 1000})
	msrv := httptest.NewServer(mn.Handler())
	t.Cleanup(msrv.Close)

	w.ledgerPath = filepath.Join(t.TempDir(), "ledger.jsonl")
	if w.ledger, err = OpenLedger(w.ledgerPath); err != nil {
		t.Fatal(err)
	}
	gwy := New(Config{Key: gw, Model: "agora-test", Candidates: func(context.Context) ([]Candidate, error) {
		return []Candidate{{Hotkey: ma, Endpoint: msrv.URL, Score: 1}}, nil
	}, Payments: &Payments{Chain: c, ChainID: w.chainID, Payee: w.gwAddr, Netuid: 1, PricePer1K: 1000, Ledger: w.ledger, ExpiryMargin: 5}})
	w.srv = httptest.NewServer(gwy.Handler())
	t.Cleanup(w.srv.Close)
	return w
}

func (w *payWorld) voucher(k ed25519.PrivateKey, ch, cum uint64) string {
	v := tx.SignVoucher(k, w.chainID, ch, cum)
	return encodeHeader(PaymentVoucher{ChannelID: ch, Cumulative: cum, Signature: hex.EncodeToString(v.Signature)})
}

func (w *payWorld) post(t *testing.T, body, payment string) *http.Response {
	req, _ := http.NewRequest(http.MethodPost, w.srv.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if payment != "" {
		req.Header.Set(HeaderPaymentSignature, payment)
	}
	resp, err := w.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func decodeB64JSON(t *testing.T, h string, v any) {
	raw, err := base64.StdEncoding.DecodeString(h)
	if err != nil || json.Unmarshal(raw, v) != nil {
		t.Fatalf("header %q does not decode", h)
	}
}

func TestPaymentFlow(t *testing.T) {
	w := newPayWorld(t)
	body := `{"model":"agora-test","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"temperature":0}`

	// No payment: 402 with the requirements.
	resp := w.post(t, body, "")
	resp.Body.Close()
	var reqs Requirements
	decodeB64JSON(t, resp.Header.Get(HeaderPaymentRequired), &reqs)
	if resp.StatusCode != 402 || reqs.Payee != w.gwAddr.String() || reqs.MaxCharge == 0 || reqs.ChainID != w.chainID {
		t.Fatalf("402: %d %+v", resp.StatusCode, reqs)
	}
	// Paid: served, charged the receipt's price (≤ the maximum).
	resp = w.post(t, body, w.voucher(w.payer, w.good, reqs.MaxCharge))
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var pr PaymentResponse
	decodeB64JSON(t, resp.Header.Get(HeaderPaymentResponse), &pr)
	rc, _ := wire.ParseReceiptHeader(resp.Header.Get(wire.HeaderReceipt))
	if resp.StatusCode != 200 || pr.Charged != rc.Price || pr.Charged > reqs.MaxCharge || pr.Owed != pr.Charged {
		t.Fatalf("paid request: %d %+v receipt price %d", resp.StatusCode, pr, rc.Price)
	}
	owed := pr.Owed

	// Bad vouchers: 402 with a reason, and nothing charged.
	forged := w.voucher(w.payer, w.good, 2*reqs.MaxCharge+owed)
	forged = strings.Replace(forged, forged[20:24], "AAAA", 1)
	for name, pay := range map[string]string{
		"replay":        w.voucher(w.payer, w.good, reqs.MaxCharge),
		"overspend":     w.voucher(w.payer, w.good, agr.Unit+1),
		"wrong payee":   w.voucher(w.payer, w.wrongPayee, 10*reqs.MaxCharge),
		"unknown":       w.voucher(w.payer, 99, 10*reqs.MaxCharge),
		"not the payer": w.voucher(w.other, w.good, 10*reqs.MaxCharge),
		"forged":        forged,
		"too little":    w.voucher(w.payer, w.good, owed+reqs.MaxCharge-1),
	} {
		resp := w.post(t, body, pay)
		var e wire.ErrorBody
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 402 || e.Error.Message == "" {
			t.Errorf("%s: status %d %+v", name, resp.StatusCode, e)
		}
	}
	if w.ledger.Owed(w.good) != owed {
		t.Fatalf("bad vouchers changed what is owed: %d → %d", owed, w.ledger.Owed(w.good))
	}

	// A paid stream ends with its payment response.
	stream := strings.Replace(body, `"max_tokens":4`, `"max_tokens":4,"stream":true`, 1)
	resp = w.post(t, stream, w.voucher(w.payer, w.good, owed+reqs.MaxCharge+100)) // the longer body may cost a little more
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(raw), "event: "+PaymentEvent) {
		t.Fatalf("paid stream: %d %s", resp.StatusCode, raw)
	}
	owed = w.ledger.Owed(w.good)

	// An expired channel is refused.
	soon, err := w.c.Channel(context.Background(), w.soon, false)
	if err != nil {
		t.Fatal(err)
	}
	for {
		h, _ := w.c.Height(context.Background())
		if uint64(h)+5 >= soon.ExpiryHeight {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	resp = w.post(t, body, w.voucher(w.payer, w.soon, 10*reqs.MaxCharge))
	resp.Body.Close()
	if resp.StatusCode != 402 {
		t.Fatalf("expired channel: status %d", resp.StatusCode)
	}

	var restarted *Ledger
	// Crash safety: a gateway restarted from its ledger file (never closed)
	// claims everything owed, exactly, and claiming again changes nothing.
	restarted, err = OpenLedger(w.ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	if restarted.Owed(w.good) != owed {
		t.Fatalf("restarted ledger owes %d, want %d", restarted.Owed(w.good), owed)
	}
	ctx := context.Background()
	if err := ClaimOnce(ctx, w.c, w.gw, restarted); err != nil {
		t.Fatal(err)
	}
	if err := ClaimOnce(ctx, w.c, w.gw, restarted); err != nil {
		t.Fatal(err)
	}
	ch, err := w.c.Channel(ctx, w.good, true)
	if err != nil || ch.Claimed != owed {
		t.Fatalf("claimed on chain %v, owed %d (%v)", ch, owed, err)
	}
}

func TestSessionKeyPays(t *testing.T) {
	w := newPayWorld(t)
	ctx := context.Background()
	body := `{"model":"agora-test","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"temperature":0}`
	resp := w.post(t, body, "")
	resp.Body.Close()
	var reqs Requirements
	decodeB64JSON(t, resp.Header.Get(HeaderPaymentRequired), &reqs)

	h, _ := w.c.Height(ctx)
	seed := make([]byte, 32)
	seed[0] = 77
	session := ed25519.NewKeyFromSeed(seed)
	token := func(capAmount, expiry uint64, netuids []uint32) string {
		d := tx.Delegate(w.payer, w.chainID, w.good, session.Public().(ed25519.PublicKey), capAmount, expiry, netuids)
		tok, err := NewSessionToken(seed, d)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	withBearer := func(tok string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, w.srv.URL+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := w.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	// A cap of three maximum charges pays for about three requests, then stops.
	good := token(3*reqs.MaxCharge, uint64(h)+1000, []uint32{1})
	served := 0
	for range 6 {
		resp := withBearer(good)
		if resp.StatusCode == 200 {
			served++
			continue
		}
		if resp.StatusCode != 402 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		break
	}
	if served < 2 || served > 6 {
		t.Fatalf("session key with a cap of 3 maximum charges served %d requests", served)
	}
	if owed := w.ledger.Owed(w.good); owed > 3*reqs.MaxCharge {
		t.Fatalf("owed %d beyond the session cap %d", owed, 3*reqs.MaxCharge)
	}
	for name, tok := range map[string]string{
		"expired":       token(agr.Unit, uint64(h), nil),
		"other subnet":  token(agr.Unit, uint64(h)+1000, []uint32{7}),
		"not a session": "sk-openai-style-key",
	} {
		if resp := withBearer(tok); resp.StatusCode != 402 {
			t.Errorf("%s: status %d, want 402", name, resp.StatusCode)
		}
	}
	// Vouchers the gateway signed with the session key settle on chain.
	if err := ClaimOnce(ctx, w.c, w.gw, w.ledger); err != nil {
		t.Fatal(err)
	}
	ch, err := w.c.Channel(ctx, w.good, false)
	if err != nil || ch.Claimed != w.ledger.Owed(w.good) || ch.Claimed == 0 {
		t.Fatalf("claimed %v, owed %d (%v)", ch, w.ledger.Owed(w.good), err)
	}
}
