package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/emission"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
)

// Genesis is the app_state of a CometBFT genesis file.
type Genesis struct {
	Params   GenesisParams    `json:"params"`
	Accounts []GenesisAccount `json:"accounts,omitempty"`
	// Validators are the chain validators CometBFT starts with, each signed
	// by its operator (see GenesisValidator). The CometBFT genesis document
	// lists none: InitChain returns these.
	Validators []GenesisValidator `json:"validators,omitempty"`
	// Devnet permits genesis balances. A public genesis has no premine: its
	// supply starts at zero and grows only by emission.
	Devnet bool `json:"devnet,omitempty"`
}

// GenesisParams are the chain parameters in human-editable form.
type GenesisParams struct {
	FeeTransfer       uint64 `json:"fee_transfer"`
	BlockRewardBase   uint64 `json:"block_reward_base"`
	SupplyCap         uint64 `json:"supply_cap"`
	TargetBlockTimeMs uint64 `json:"target_block_time_ms"`
	MaxMsgsPerTx      uint64 `json:"max_msgs_per_tx"`
	MaxMemoBytes      uint64 `json:"max_memo_bytes"`
	FeeDefault        uint64 `json:"fee_default"`
	MaxSubnets        uint32 `json:"max_subnets"`
	SubnetLockFloor   uint64 `json:"subnet_lock_floor"`
	// SubnetLockInterval is how many blocks the doubled lock cost takes to decay back.
	SubnetLockInterval uint64           `json:"subnet_lock_interval"`
	SubnetImmunity     uint64           `json:"subnet_immunity"`
	OwnerCutBps        uint32           `json:"owner_cut_bps"`
	MaxTakeBps         uint32           `json:"max_take_bps"`
	TakeRateLimit      uint64           `json:"take_rate_limit"`
	DefaultSubnet      *tx.SubnetParams `json:"default_subnet,omitempty"`
}

// GenesisAccount is a starting balance (devnet only).
type GenesisAccount struct {
	Address address.Address `json:"address"`
	Balance uint64          `json:"balance"`
}

// DefaultParams are the parameters for a chain with the given block time.
func DefaultParams(targetBlockTimeMs uint64) GenesisParams {
	return GenesisParams{
		FeeTransfer:       1_000_000, // 0.001 AGR
		BlockRewardBase:   emission.BaseReward(targetBlockTimeMs),
		SupplyCap:         emission.Cap,
		TargetBlockTimeMs: targetBlockTimeMs,
		MaxMsgsPerTx:      64,
		MaxMemoBytes:      256,
		FeeDefault:        1_000_000,
		MaxSubnets:        32,
		SubnetLockFloor:   100 * agr.Unit,
		// About four days of blocks at the target block time.
		SubnetLockInterval: 4 * 86_400_000 / targetBlockTimeMs,
		SubnetImmunity:     7 * 86_400_000 / targetBlockTimeMs,
		OwnerCutBps:        1800,
		MaxTakeBps:         1800,
		TakeRateLimit:      86_400_000 / targetBlockTimeMs,
		DefaultSubnet:      subnet.DefaultSubnetParams(),
	}
}

func (p GenesisParams) proto() *tx.Params {
	return &tx.Params{
		FeeTransfer:        p.FeeTransfer,
		BlockRewardBase:    p.BlockRewardBase,
		SupplyCap:          p.SupplyCap,
		TargetBlockTimeMs:  p.TargetBlockTimeMs,
		MaxMsgsPerTx:       p.MaxMsgsPerTx,
		MaxMemoBytes:       p.MaxMemoBytes,
		FeeDefault:         p.FeeDefault,
		MaxSubnets:         p.MaxSubnets,
		SubnetLockFloor:    p.SubnetLockFloor,
		SubnetLockInterval: p.SubnetLockInterval,
		SubnetImmunity:     p.SubnetImmunity,
		OwnerCutBps:        p.OwnerCutBps,
		MaxTakeBps:         p.MaxTakeBps,
		TakeRateLimit:      p.TakeRateLimit,
		DefaultSubnet:      p.DefaultSubnet,
	}
}

// Validate checks the genesis for consistency.
func (g *Genesis) Validate() error {
	p := g.Params
	if p.SupplyCap == 0 || p.SupplyCap > emission.Cap {
		return fmt.Errorf("supply_cap %d must be in 1..%d", p.SupplyCap, emission.Cap)
	}
	if p.TargetBlockTimeMs == 0 {
		return errors.New("target_block_time_ms must be positive")
	}
	if p.MaxMsgsPerTx == 0 {
		return errors.New("max_msgs_per_tx must be positive")
	}
	if p.OwnerCutBps > 10_000 || p.MaxTakeBps > 10_000 {
		return errors.New("owner_cut_bps and max_take_bps are at most 10000")
	}
	if p.TargetBlockTimeMs > 86_400_000 {
		return fmt.Errorf("target_block_time_ms %d above a day", p.TargetBlockTimeMs)
	}
	// Fees and prices above all money would only ever be unpayable; bounding
	// them keeps every fee sum far from 64 bits.
	for _, f := range []struct {
		name string
		v    uint64
	}{{"fee_transfer", p.FeeTransfer}, {"fee_default", p.FeeDefault}, {"subnet_lock_floor", p.SubnetLockFloor}, {"block_reward_base", p.BlockRewardBase}} {
		if f.v > emission.Cap {
			return fmt.Errorf("%s %d above the supply cap %d", f.name, f.v, emission.Cap)
		}
	}
	// Block counts bounded like a subnet's, so height + period never wraps.
	for _, f := range []struct {
		name string
		v    uint64
	}{{"subnet_lock_interval", p.SubnetLockInterval}, {"subnet_immunity", p.SubnetImmunity}, {"take_rate_limit", p.TakeRateLimit}} {
		if f.v > subnet.MaxPeriod {
			return fmt.Errorf("%s %d above %d blocks", f.name, f.v, uint64(subnet.MaxPeriod))
		}
	}
	if p.MaxMsgsPerTx > tx.MaxTxBytes || p.MaxMemoBytes > tx.MaxTxBytes {
		return fmt.Errorf("max_msgs_per_tx and max_memo_bytes are at most %d (a transaction's size)", tx.MaxTxBytes)
	}
	if p.DefaultSubnet != nil {
		if err := subnet.ValidateParams(p.DefaultSubnet); err != nil {
			return fmt.Errorf("default_subnet: %w", err)
		}
	}
	if len(g.Accounts) > 0 && !g.Devnet {
		return errors.New("genesis balances are only allowed on a devnet (no premine on a public chain)")
	}
	seen := make(map[address.Address]bool, len(g.Accounts))
	var total uint64
	for _, a := range g.Accounts {
		if seen[a.Address] {
			return fmt.Errorf("genesis account %s listed twice", a.Address)
		}
		seen[a.Address] = true
		if a.Balance > math.MaxUint64-total {
			return errors.New("genesis balances overflow")
		}
		total += a.Balance
	}
	if total > p.SupplyCap {
		return fmt.Errorf("genesis balances %d exceed the supply cap %d", total, p.SupplyCap)
	}
	return nil
}

// ParseGenesis decodes and validates app_state bytes, rejecting unknown fields.
func ParseGenesis(raw []byte) (*Genesis, error) {
	var g Genesis
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return nil, fmt.Errorf("parse app genesis: %w", err)
	}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("invalid app genesis: %w", err)
	}
	return &g, nil
}
