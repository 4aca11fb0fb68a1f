package chain

import (
	"testing"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/channel"
	"github.com/agoranet/agora/chain/tx"
)

func openMsg(payee testKey, deposit, expiry uint64) *tx.Msg {
	return &tx.Msg{Sum: &tx.Msg_ChannelOpen{ChannelOpen: &tx.MsgChannelOpen{Payee: payee.addr[:], Netuid: 1, Deposit: deposit, ExpiryHeight: expiry}}}
}

func claimMsg(v *tx.Voucher) *tx.Msg {
	return &tx.Msg{Sum: &tx.Msg_ChannelClaim{ChannelClaim: &tx.MsgChannelClaim{Voucher: v}}}
}

func TestPaymentChannelLifecycle(t *testing.T) {
	c := newCast()
	payer, gateway := newKey(50), newKey(51)
	w := newWorld(t, fastSubnet(), c.owner, c.valCold, c.minerCold, c.valHot, payer, gateway)
	w.openSubnet(c, 1_000_000_000)

	const deposit = 1_000_000
	before := w.balance(payer)
	w.mustSend(payer, openMsg(gateway, deposit, uint64(w.height)+20))
	if got := before - w.balance(payer); got != deposit+fee {
		t.Fatalf("payer paid %d, want deposit+fee %d", got, deposit+fee)
	}
	ch, err := channel.Get(w.store.Committed(), 1)
	if err != nil || ch.Deposit != deposit || ch.Claimed != 0 {
		t.Fatalf("channel %+v %v", ch, err)
	}
	settled := func() uint64 { ch, _ := channel.Get(w.store.Committed(), 1); return ch.Claimed }
	v := func(amount uint64) *tx.Voucher { return tx.SignVoucher(payer.priv, testChain, 1, amount) }

	w.mustSend(gateway, claimMsg(v(100_000)))
	if settled() != 100_000 {
		t.Fatalf("claimed %d after the first voucher", settled())
	}
	// Idempotent and monotonic: the same or a lower voucher changes nothing.
	w.mustSend(gateway, claimMsg(v(100_000)))
	w.mustSend(gateway, claimMsg(v(50_000)))
	if settled() != 100_000 {
		t.Fatalf("claimed %d after replays", settled())
	}
	// A voucher authorizing 300,000 settles only the 250,000 actually earned.
	w.mustSend(gateway, &tx.Msg{Sum: &tx.Msg_ChannelClaim{ChannelClaim: &tx.MsgChannelClaim{Voucher: v(300_000), Amount: 250_000}}})
	if settled() != 250_000 {
		t.Fatalf("claimed %d, want 250000", settled())
	}
	if r := w.send(gateway, &tx.Msg{Sum: &tx.Msg_ChannelClaim{ChannelClaim: &tx.MsgChannelClaim{Voucher: v(260_000), Amount: 270_000}}}); r.Code != tx.CodeInvalid {
		t.Fatalf("claim above its voucher: code %d (%s)", r.Code, r.Log)
	}
	forged := v(400_000)
	forged.Signature[0] ^= 1
	other := tx.SignVoucher(payer.priv, "another-chain", 1, 400_000)
	cases := []struct {
		name string
		who  testKey
		v    *tx.Voucher
		code uint32
	}{
		{"over the deposit", gateway, v(deposit + 1), tx.CodeInvalid},
		{"forged signature", gateway, forged, tx.CodeUnauthorized},
		{"voucher for another chain", gateway, other, tx.CodeUnauthorized},
		{"not the payee", payer, v(400_000), tx.CodeUnauthorized},
		{"unknown channel", gateway, tx.SignVoucher(payer.priv, testChain, 9, 1), tx.CodeNotFound},
	}
	for _, tc := range cases {
		if r := w.send(tc.who, claimMsg(tc.v)); r.Code != tc.code {
			t.Errorf("%s: code %d (%s), want %d", tc.name, r.Code, r.Log, tc.code)
		}
	}
	// Top-up raises the deposit; closing waits for expiry.
	w.mustSend(payer, &tx.Msg{Sum: &tx.Msg_ChannelTopup{ChannelTopup: &tx.MsgChannelTopup{ChannelId: 1, Amount: 500_000}}})
	if ch, _ := channel.Get(w.store.Committed(), 1); ch.Deposit != deposit+500_000 {
		t.Fatalf("deposit after top-up %d", ch.Deposit)
	}
	closeMsg := &tx.Msg{Sum: &tx.Msg_ChannelClose{ChannelClose: &tx.MsgChannelClose{ChannelId: 1}}}
	if r := w.send(payer, closeMsg); r.Code != tx.CodeWindow {
		t.Fatalf("close before expiry: code %d (%s)", r.Code, r.Log)
	}
	if r := w.send(gateway, closeMsg); r.Code != tx.CodeUnauthorized {
		t.Fatalf("payee closing: code %d", r.Code)
	}
	w.steps(25)
	before = w.balance(payer)
	w.mustSend(payer, closeMsg)
	if got := w.balance(payer) + fee - before; got != deposit+500_000-250_000 {
		t.Fatalf("refund %d, want %d", got, deposit+500_000-250_000)
	}
	if r := w.send(gateway, claimMsg(v(300_000))); r.Code != tx.CodeNotFound {
		t.Fatalf("claim after close: code %d", r.Code)
	}
	if s, _ := bank.GetSupply(w.store.Committed()); s.Escrowed != 0 {
		t.Fatalf("escrow %d after the only channel closed", s.Escrowed)
	}
}

// TestRevenueSplitLikeEmission: settled payments reach the owner (18%) at
// once at the next epoch, and the rest goes to miners and validators by Yuma.
func TestRevenueSplitLikeEmission(t *testing.T) {
	c := newCast()
	payer, gateway := newKey(50), newKey(51)
	w := newWorld(t, fastSubnet(), c.owner, c.valCold, c.minerCold, c.valHot, payer, gateway)
	w.openSubnet(c, 1_000_000_000)
	w.mustSend(c.valHot, setWeightsMsg(1, []uint32{2}, []uint32{65535}))
	w.steps(12)
	w.mustSend(payer, openMsg(gateway, 10_000_000_000, uint64(w.height)+100))
	w.mustSend(gateway, claimMsg(tx.SignVoucher(payer.priv, testChain, 1, 10_000_000_000)))
	sub := w.metagraph(1).Subnet
	if sub.PendingRevenue != 10_000_000_000 || sub.TotalRevenue != 10_000_000_000 {
		t.Fatalf("subnet revenue %d/%d", sub.PendingRevenue, sub.TotalRevenue)
	}
	minerBefore := w.balance(c.minerCold)
	w.steps(11) // through the next epoch
	sub = w.metagraph(1).Subnet
	if sub.PendingRevenue != 0 {
		t.Fatalf("revenue %d still pending after the epoch", sub.PendingRevenue)
	}
	// The miner's share of this epoch includes about 41% of the revenue.
	if gain := w.balance(c.minerCold) - minerBefore; gain < 4_000_000_000 {
		t.Fatalf("miner gained %d, want at least 41%% of the 10 AGR revenue", gain)
	}
}
