package subnet

import (
	"fmt"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/tx"
)

// Stake uses share-pool accounting: a hotkey's pool on a subnet holds stake
// and shares; a delegator owns shares. Rewards raise the pool's stake, so every
// share is worth more and delegators earn pro rata without touching each
// delegation. Rounding always favours the pool (deposits round shares down,
// withdrawals round burned shares up), so the pool can always pay what its
// shares claim, and the last shareholder out takes the remainder: nothing is
// stranded and Σ pools = supply.staked exactly.

// StakeValue is what shares of pool are worth now.
func StakeValue(p *tx.StakePool, shares uint64) uint64 {
	if p.Shares == 0 {
		return 0
	}
	if shares == p.Shares {
		return p.Stake
	}
	return mulDiv(shares, p.Stake, p.Shares)
}

// AddStake moves amount from the coldkey's balance into the hotkey's pool.
func AddStake(c *Ctx, coldkey address.Address, m *tx.MsgStakeAdd) error {
	hotkey := addrOf(m.Hotkey)
	if _, err := UIDOf(c.KV, m.Netuid, hotkey); err != nil {
		return fmt.Errorf("stake to %s: %w", hotkey, err)
	}
	pool, err := GetPool(c.KV, m.Netuid, hotkey)
	if err != nil {
		return err
	}
	var shares uint64
	if pool.Shares == 0 {
		// An empty pool starts at one share per base unit. A pool never holds
		// shares without stake: a withdrawal by anyone but the sole holder
		// leaves stake behind (its value is rounded down), and the sole holder
		// leaving burns every share.
		shares = m.Amount
	} else {
		shares = mulDiv(m.Amount, pool.Shares, pool.Stake)
	}
	if shares == 0 {
		return fmt.Errorf("%w: %d is too small to buy a share", ErrInvalid, m.Amount)
	}
	held, err := GetShares(c.KV, m.Netuid, hotkey, coldkey)
	if err != nil {
		return err
	}
	// Every sum is checked before anything moves, so an overflow refuses
	// the message with nothing half-applied.
	if pool.Stake, err = bank.Grow("pool stake", pool.Stake, m.Amount); err != nil {
		return err
	}
	if pool.Shares, err = bank.Grow("pool shares", pool.Shares, shares); err != nil {
		return err
	}
	if held, err = bank.Grow("delegator shares", held, shares); err != nil {
		return err
	}
	if err := bank.Debit(c.KV, coldkey, m.Amount); err != nil {
		return err
	}
	if err := put(c.KV, poolKey(m.Netuid, hotkey), pool); err != nil {
		return err
	}
	if err := setShares(c.KV, m.Netuid, hotkey, coldkey, held); err != nil {
		return err
	}
	return bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
		s.Staked, err = bank.Grow("supply staked", s.Staked, m.Amount)
		return err
	})
}

// RemoveStake returns amount of the coldkey's stake in the hotkey's pool to its balance.
func RemoveStake(c *Ctx, coldkey address.Address, m *tx.MsgStakeRemove) error {
	hotkey := addrOf(m.Hotkey)
	pool, err := GetPool(c.KV, m.Netuid, hotkey)
	if err != nil {
		return err
	}
	held, err := GetShares(c.KV, m.Netuid, hotkey, coldkey)
	if err != nil {
		return err
	}
	value := StakeValue(pool, held)
	if m.Amount > value {
		return fmt.Errorf("%w: %s has %d staked to %s on subnet %d, asked for %d", bank.ErrInsufficientFunds, coldkey, value, hotkey, m.Netuid, m.Amount)
	}
	burn := mulDivCeil(m.Amount, pool.Shares, pool.Stake)
	amount := m.Amount
	if burn >= held {
		burn = held
		if held == pool.Shares {
			amount = pool.Stake // the last shareholder takes the rounding remainder
		}
	}
	if pool.Stake, err = bank.Take("pool stake", pool.Stake, amount); err != nil {
		return err
	}
	if pool.Shares, err = bank.Take("pool shares", pool.Shares, burn); err != nil {
		return err
	}
	if err := put(c.KV, poolKey(m.Netuid, hotkey), pool); err != nil {
		return err
	}
	if err := setShares(c.KV, m.Netuid, hotkey, coldkey, held-burn); err != nil { // burn ≤ held above
		return err
	}
	if err := bank.Credit(c.KV, coldkey, amount); err != nil {
		return err
	}
	return bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
		s.Staked, err = bank.Take("supply staked", s.Staked, amount)
		return err
	})
}

// SetTake changes a hotkey's validator take (signed by its coldkey). Lowering
// is always allowed; raising waits take_rate_limit blocks since the last change.
func SetTake(c *Ctx, coldkey address.Address, m *tx.MsgSetTake) error {
	hotkey := addrOf(m.Hotkey)
	h, ok, err := getHotkey(c.KV, hotkey)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("hotkey %s: %w", hotkey, ErrNotFound)
	}
	if addrOf(h.Owner) != coldkey {
		return fmt.Errorf("%w: %s does not own hotkey %s", ErrUnauthorized, coldkey, hotkey)
	}
	if m.TakeBps > c.Params.MaxTakeBps {
		return fmt.Errorf("%w: take %d bps above the maximum %d", ErrInvalid, m.TakeBps, c.Params.MaxTakeBps)
	}
	if m.TakeBps > h.TakeBps && before(c.Height, h.TakeChangedAt, c.Params.TakeRateLimit) {
		return fmt.Errorf("%w: take can rise again at block %d", ErrRateLimited, agr.SaturatingAdd(h.TakeChangedAt, c.Params.TakeRateLimit))
	}
	h.TakeBps, h.TakeChangedAt = m.TakeBps, c.Height
	return put(c.KV, hotkeyKey(hotkey), h)
}

// PayValidator splits a validator's dividend: the take to the hotkey's
// owner, the rest into its pool for its delegators (owner included, by shares).
// It returns how much went into stake.
func PayValidator(c *Ctx, netuid uint32, hotkey address.Address, amount uint64) (staked uint64, err error) {
	h, ok, err := getHotkey(c.KV, hotkey)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("hotkey %s has no owner record", hotkey)
	}
	owner := addrOf(h.Owner)
	take := mulDiv(amount, uint64(h.TakeBps), 10_000)
	pool, err := GetPool(c.KV, netuid, hotkey)
	if err != nil {
		return 0, err
	}
	rest := amount - take // take ≤ amount: TakeBps ≤ 10,000
	if pool.Shares == 0 || pool.Stake == 0 {
		// Nobody to share with: it all goes to the owner.
		return 0, bank.Credit(c.KV, owner, amount)
	}
	if pool.Stake, err = bank.Grow("pool stake", pool.Stake, rest); err != nil {
		return 0, err
	}
	if err := bank.Credit(c.KV, owner, take); err != nil {
		return 0, err
	}
	return rest, put(c.KV, poolKey(netuid, hotkey), pool)
}
