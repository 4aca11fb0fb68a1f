// Package bank holds accounts: balances, nonces, transfers and fee burning.
// It is chain state logic: it imports chain/state and chain/tx, never the
// application (chain) or any network or service code. Account and supply
// keys come from chain/tx, where clients read them too.
package bank

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/tx"
)

// ErrInsufficientFunds is returned when a debit exceeds a balance.
var ErrInsufficientFunds = errors.New("insufficient funds")

// ErrOverflow is returned when a credit would overflow a balance. It wraps
// agr.ErrOverflow, so callers branch on one sentinel for every overflow.
var ErrOverflow = fmt.Errorf("balance: %w", agr.ErrOverflow)

// ErrInvariant marks state that contradicts itself: a supply total, an
// escrow or a pool asked to give up more than it holds. No transaction can
// cause it on a correct chain, so it is never a refusal: the app stops the
// node with the message rather than write a wrapped value.
var ErrInvariant = errors.New("state invariant violated")

// Take returns have − amount for a record that must always cover amount
// (supply totals, escrow, stake pools); a shortfall is an ErrInvariant.
func Take(what string, have, amount uint64) (uint64, error) {
	if amount > have {
		return 0, fmt.Errorf("%w: %s would go negative: %d − %d", ErrInvariant, what, have, amount)
	}
	return have - amount, nil
}

// Grow returns have + amount, or an error wrapping agr.ErrOverflow naming what.
func Grow(what string, have, amount uint64) (uint64, error) {
	s, err := agr.Add(have, amount)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return s, nil
}

// GetAccount reads addr's account; a never-seen address is a zero account.
func GetAccount(kv state.KVReader, addr address.Address) (*tx.Account, error) {
	raw, err := kv.Get(tx.AccountKey(addr))
	if err != nil {
		return nil, fmt.Errorf("read account %s: %w", addr, err)
	}
	acc := &tx.Account{}
	if raw == nil {
		return acc, nil
	}
	if err := DecodeAccount(raw, acc); err != nil {
		return nil, fmt.Errorf("decode account %s: %w", addr, err)
	}
	return acc, nil
}

// DecodeAccount parses a stored account record.
func DecodeAccount(raw []byte, acc *tx.Account) error {
	return proto.Unmarshal(raw, acc)
}

// SetAccount writes addr's account.
func SetAccount(kv state.KV, addr address.Address, acc *tx.Account) error {
	raw, err := tx.Marshal(acc)
	if err != nil {
		return fmt.Errorf("encode account %s: %w", addr, err)
	}
	return kv.Set(tx.AccountKey(addr), raw)
}

// Debit removes amount from addr's balance.
func Debit(kv state.KV, addr address.Address, amount uint64) error {
	acc, err := GetAccount(kv, addr)
	if err != nil {
		return err
	}
	if acc.Balance < amount {
		return fmt.Errorf("%w: %s has %d, needs %d", ErrInsufficientFunds, addr, acc.Balance, amount)
	}
	acc.Balance -= amount
	return SetAccount(kv, addr, acc)
}

// Credit adds amount to addr's balance.
func Credit(kv state.KV, addr address.Address, amount uint64) error {
	acc, err := GetAccount(kv, addr)
	if err != nil {
		return err
	}
	b, err := agr.Add(acc.Balance, amount)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrOverflow, addr, err)
	}
	acc.Balance = b
	return SetAccount(kv, addr, acc)
}

// Transfer moves amount from one address to another.
func Transfer(kv state.KV, from, to address.Address, amount uint64) error {
	if err := Debit(kv, from, amount); err != nil {
		return err
	}
	return Credit(kv, to, amount)
}

// GetSupply reads the supply record.
func GetSupply(kv state.KVReader) (*tx.Supply, error) {
	s := &tx.Supply{}
	raw, err := kv.Get(tx.SupplyKey())
	if err != nil {
		return nil, fmt.Errorf("read supply: %w", err)
	}
	if raw == nil {
		return nil, errors.New("supply record missing")
	}
	if err := proto.Unmarshal(raw, s); err != nil {
		return nil, fmt.Errorf("decode supply: %w", err)
	}
	return s, nil
}

// SetSupply writes the supply record.
func SetSupply(kv state.KV, s *tx.Supply) error {
	raw, err := tx.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode supply: %w", err)
	}
	return kv.Set(tx.SupplyKey(), raw)
}

// UpdateSupply applies f to the supply record.
func UpdateSupply(kv state.KV, f func(s *tx.Supply) error) error {
	s, err := GetSupply(kv)
	if err != nil {
		return err
	}
	if err := f(s); err != nil {
		return err
	}
	return SetSupply(kv, s)
}

// Reconcile checks the supply invariant given the sum of every account
// balance: balances plus every pool the supply record tracks (stake, locks,
// undistributed emission, escrow, subnet revenue, chain validator bonds and
// unbonding entries, model and dataset royalty pools, offering escrow) equal genesis + minted − burned, to the unit. Slashes
// are part of burned. The sums use checked arithmetic, so a corrupt record
// cannot wrap into agreement.
func Reconcile(s *tx.Supply, balances uint64) error {
	held := balances
	for _, f := range []struct {
		name string
		v    uint64
	}{{"staked", s.Staked}, {"locked", s.Locked}, {"pending_emission", s.PendingEmission}, {"subnet_pending", s.SubnetPending},
		{"escrowed", s.Escrowed}, {"revenue_pending", s.RevenuePending}, {"bonded", s.Bonded}, {"unbonding", s.Unbonding},
		{"royalty_held", s.RoyaltyHeld}, {"offering_escrow", s.OfferingEscrow}} {
		var err error
		if held, err = Grow("supply "+f.name, held, f.v); err != nil {
			return fmt.Errorf("%w: %v", ErrInvariant, err)
		}
	}
	issued, err := Grow("genesis + minted", s.Genesis, s.Minted)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvariant, err)
	}
	if s.Slashed > s.Burned {
		return fmt.Errorf("%w: slashed %d exceeds burned %d", ErrInvariant, s.Slashed, s.Burned)
	}
	want, err := Take("genesis + minted − burned", issued, s.Burned)
	if err != nil {
		return err
	}
	if held != want {
		return fmt.Errorf("%w: balances and pools hold %d, genesis + minted − burned is %d (bonded %d, unbonding %d, slashed %d)",
			ErrInvariant, held, want, s.Bonded, s.Unbonding, s.Slashed)
	}
	return nil
}
