// Package channel holds payment channels: a payer escrows a deposit for a
// payee (a gateway hotkey) on a subnet, pays off-chain with cumulative
// vouchers, and the payee settles the highest one on chain. Settled amounts
// become the subnet's revenue, split at its next epoch like emission.
//
// It is chain state logic: it imports chain/bank, chain/subnet and chain/tx,
// never the application (chain) or any network or service code.
package channel

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
)

// prefixCounter keys the last channel id handed out; channel records
// themselves live under tx.ChannelKey, in the same 0x20 range.
const prefixCounter = 0x20

// Get reads a channel.
func Get(kv interface{ Get([]byte) ([]byte, error) }, id uint64) (*tx.Channel, error) {
	raw, err := kv.Get(tx.ChannelKey(id))
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("channel %d: %w", id, subnet.ErrNotFound)
	}
	c := &tx.Channel{}
	if err := proto.Unmarshal(raw, c); err != nil {
		return nil, fmt.Errorf("decode channel %d: %w", id, err)
	}
	return c, nil
}

func put(c *subnet.Ctx, ch *tx.Channel) error {
	raw, err := tx.Marshal(ch)
	if err != nil {
		return err
	}
	return c.KV.Set(tx.ChannelKey(ch.Id), raw)
}

func addr(b []byte) address.Address {
	a, _ := address.FromBytes(b)
	return a
}

// Open escrows the deposit and returns the new channel's id.
func Open(c *subnet.Ctx, payer address.Address, payerKey ed25519.PublicKey, m *tx.MsgChannelOpen) (uint64, error) {
	if _, err := subnet.GetSubnet(c.KV, m.Netuid); err != nil {
		return 0, err
	}
	if m.ExpiryHeight <= c.Height {
		return 0, fmt.Errorf("%w: expiry %d is not after the current height %d", subnet.ErrInvalid, m.ExpiryHeight, c.Height)
	}
	if err := bank.Debit(c.KV, payer, m.Deposit); err != nil {
		return 0, err
	}
	raw, err := c.KV.Get([]byte{prefixCounter})
	if err != nil {
		return 0, err
	}
	id := uint64(1)
	if len(raw) == 8 {
		if id, err = bank.Grow("channel counter", binary.BigEndian.Uint64(raw), 1); err != nil {
			return 0, err
		}
	}
	if err := c.KV.Set([]byte{prefixCounter}, binary.BigEndian.AppendUint64(nil, id)); err != nil {
		return 0, err
	}
	ch := &tx.Channel{Id: id, Payer: payer[:], PayerPubKey: payerKey, Payee: m.Payee, Netuid: m.Netuid,
		Deposit: m.Deposit, ExpiryHeight: m.ExpiryHeight, OpenedAt: c.Height}
	if err := put(c, ch); err != nil {
		return 0, err
	}
	return id, bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
		s.Escrowed, err = bank.Grow("supply escrowed", s.Escrowed, m.Deposit)
		return err
	})
}

// Topup adds to the deposit and optionally extends the expiry (payer only).
func Topup(c *subnet.Ctx, payer address.Address, m *tx.MsgChannelTopup) error {
	ch, err := Get(c.KV, m.ChannelId)
	if err != nil {
		return err
	}
	if addr(ch.Payer) != payer {
		return fmt.Errorf("%w: only the payer tops up channel %d", subnet.ErrUnauthorized, ch.Id)
	}
	if m.ExpiryHeight != 0 && m.ExpiryHeight < ch.ExpiryHeight {
		return fmt.Errorf("%w: a channel's expiry only moves later", subnet.ErrInvalid)
	}
	deposit, err := bank.Grow(fmt.Sprintf("channel %d deposit", ch.Id), ch.Deposit, m.Amount)
	if err != nil {
		return err
	}
	if err := bank.Debit(c.KV, payer, m.Amount); err != nil {
		return err
	}
	ch.Deposit = deposit
	ch.ExpiryHeight = max(ch.ExpiryHeight, m.ExpiryHeight)
	if err := put(c, ch); err != nil {
		return err
	}
	return bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
		s.Escrowed, err = bank.Grow("supply escrowed", s.Escrowed, m.Amount)
		return err
	})
}

// Claim settles amount (0: the whole voucher) under a voucher (payee only).
// Claims are monotonic and idempotent: a total at or below what is already
// claimed changes nothing; one above the voucher or the deposit is refused.
// A voucher signed by a session key is claimable only while its delegation
// lives (the claim must land before block expiry_height) and only on a
// channel of one of its subnets: the payer's limits bind on chain, not just
// in the gateway that accepted the voucher. It returns the amount newly settled.
func Claim(c *subnet.Ctx, payee address.Address, v *tx.Voucher, amount uint64) (uint64, error) {
	ch, err := Get(c.KV, v.ChannelId)
	if err != nil {
		return 0, err
	}
	if addr(ch.Payee) != payee {
		return 0, fmt.Errorf("%w: only the payee claims channel %d", subnet.ErrUnauthorized, ch.Id)
	}
	if !v.Verify(c.ChainID, ch.PayerPubKey) {
		return 0, fmt.Errorf("%w: voucher signature does not verify", subnet.ErrUnauthorized)
	}
	if d := v.Delegation; d != nil {
		if c.Height >= d.ExpiryHeight {
			return 0, fmt.Errorf("%w: the voucher's session key expired at block %d (now %d)", subnet.ErrUnauthorized, d.ExpiryHeight, c.Height)
		}
		if len(d.Netuids) > 0 && !slices.Contains(d.Netuids, ch.Netuid) {
			return 0, fmt.Errorf("%w: the voucher's session key may not pay on subnet %d (allowed %v)", subnet.ErrUnauthorized, ch.Netuid, d.Netuids)
		}
	}
	if v.Cumulative > ch.Deposit {
		return 0, fmt.Errorf("%w: voucher for %d exceeds the deposit of %d", subnet.ErrInvalid, v.Cumulative, ch.Deposit)
	}
	total := v.Cumulative
	if amount != 0 {
		if amount > v.Cumulative {
			return 0, fmt.Errorf("%w: claim of %d exceeds the voucher's %d", subnet.ErrInvalid, amount, v.Cumulative)
		}
		total = amount
	}
	if total <= ch.Claimed {
		return 0, nil
	}
	delta := total - ch.Claimed // total > Claimed just above
	ch.Claimed = total
	if err := put(c, ch); err != nil {
		return 0, err
	}
	if err := subnet.AddRevenue(c, ch.Netuid, delta); err != nil {
		return 0, err
	}
	return delta, bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
		if s.Escrowed, err = bank.Take("supply escrowed", s.Escrowed, delta); err != nil {
			return err
		}
		s.RevenuePending, err = bank.Grow("supply revenue_pending", s.RevenuePending, delta)
		return err
	})
}

// Close refunds the unclaimed deposit after expiry and removes the channel (payer only).
func Close(c *subnet.Ctx, payer address.Address, id uint64) (uint64, error) {
	ch, err := Get(c.KV, id)
	if err != nil {
		return 0, err
	}
	if addr(ch.Payer) != payer {
		return 0, fmt.Errorf("%w: only the payer closes channel %d", subnet.ErrUnauthorized, id)
	}
	if c.Height <= ch.ExpiryHeight {
		return 0, fmt.Errorf("%w: channel %d can close after block %d", subnet.ErrWindow, id, ch.ExpiryHeight)
	}
	refund, err := bank.Take(fmt.Sprintf("channel %d deposit", id), ch.Deposit, ch.Claimed)
	if err != nil {
		return 0, err
	}
	if err := bank.Credit(c.KV, payer, refund); err != nil {
		return 0, err
	}
	if err := c.KV.Delete(tx.ChannelKey(id)); err != nil {
		return 0, err
	}
	return refund, bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
		s.Escrowed, err = bank.Take("supply escrowed", s.Escrowed, refund)
		return err
	})
}
