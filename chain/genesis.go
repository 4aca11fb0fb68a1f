package chain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/chainval"
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

	// Chain validators (see chain/chainval).
	MaxChainValidators uint32 `json:"max_chain_validators"`
	MinSelfBond        uint64 `json:"min_self_bond"`
	UnbondingBlocks    uint64 `json:"unbonding_blocks"`
	SignedBlocksWindow uint64 `json:"signed_blocks_window"`
	// MaxMissedBlocks: a chain validator that missed more than this many
	// of the last signed_blocks_window blocks is jailed.
	MaxMissedBlocks    uint64 `json:"max_missed_blocks"`
	DowntimeJailBlocks uint64 `json:"downtime_jail_blocks"`
	DowntimeSlashBps   uint32 `json:"downtime_slash_bps"`
	DoubleSignSlashBps uint32 `json:"double_sign_slash_bps"`
	// RoyaltyStreamBlocks is how long a model's or dataset's royalty takes
	// to reach its holders after an epoch credits it (chain/royalty).
	RoyaltyStreamBlocks uint64 `json:"royalty_stream_blocks"`
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
		MaxChainValidators: 100,
		MinSelfBond:        agr.Unit,
		// Two weeks of blocks: evidence older than this can no longer be
		// punished (node.Init sets CometBFT's evidence max age to match).
		UnbondingBlocks:    14 * 86_400_000 / targetBlockTimeMs,
		SignedBlocksWindow: 100,
		MaxMissedBlocks:    50,
		DowntimeJailBlocks: 600_000 / targetBlockTimeMs, // ten minutes
		DowntimeSlashBps:   1,
		DoubleSignSlashBps: 500,
		// An hour of blocks: a holder earns by the time it held, so buying
		// just before an epoch's credit and selling after earns little.
		RoyaltyStreamBlocks: 3_600_000 / targetBlockTimeMs,
	}
}

func (p GenesisParams) proto() *tx.Params {
	return &tx.Params{
		FeeTransfer:         p.FeeTransfer,
		BlockRewardBase:     p.BlockRewardBase,
		SupplyCap:           p.SupplyCap,
		TargetBlockTimeMs:   p.TargetBlockTimeMs,
		MaxMsgsPerTx:        p.MaxMsgsPerTx,
		MaxMemoBytes:        p.MaxMemoBytes,
		FeeDefault:          p.FeeDefault,
		MaxSubnets:          p.MaxSubnets,
		SubnetLockFloor:     p.SubnetLockFloor,
		SubnetLockInterval:  p.SubnetLockInterval,
		SubnetImmunity:      p.SubnetImmunity,
		OwnerCutBps:         p.OwnerCutBps,
		MaxTakeBps:          p.MaxTakeBps,
		TakeRateLimit:       p.TakeRateLimit,
		DefaultSubnet:       p.DefaultSubnet,
		MaxChainValidators:  p.MaxChainValidators,
		MinSelfBond:         p.MinSelfBond,
		UnbondingBlocks:     p.UnbondingBlocks,
		SignedBlocksWindow:  p.SignedBlocksWindow,
		MaxMissedBlocks:     p.MaxMissedBlocks,
		DowntimeJailBlocks:  p.DowntimeJailBlocks,
		DowntimeSlashBps:    p.DowntimeSlashBps,
		DoubleSignSlashBps:  p.DoubleSignSlashBps,
		RoyaltyStreamBlocks: p.RoyaltyStreamBlocks,
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
	}{{"subnet_lock_interval", p.SubnetLockInterval}, {"subnet_immunity", p.SubnetImmunity}, {"take_rate_limit", p.TakeRateLimit},
		{"unbonding_blocks", p.UnbondingBlocks}, {"downtime_jail_blocks", p.DowntimeJailBlocks}, {"royalty_stream_blocks", p.RoyaltyStreamBlocks}} {
		if f.v > subnet.MaxPeriod {
			return fmt.Errorf("%s %d above %d blocks", f.name, f.v, uint64(subnet.MaxPeriod))
		}
	}
	if err := p.validateChainValidators(); err != nil {
		return err
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
	return g.validateValidators()
}

func (p GenesisParams) validateChainValidators() error {
	switch {
	case p.MaxChainValidators == 0 || p.MaxChainValidators > chainval.MaxActiveSet:
		return fmt.Errorf("max_chain_validators %d must be in 1..%d", p.MaxChainValidators, chainval.MaxActiveSet)
	case p.UnbondingBlocks == 0:
		return errors.New("unbonding_blocks must be positive")
	case p.SignedBlocksWindow == 0 || p.SignedBlocksWindow > chainval.MaxSignedBlocksWindow:
		return fmt.Errorf("signed_blocks_window %d must be in 1..%d", p.SignedBlocksWindow, chainval.MaxSignedBlocksWindow)
	case p.MaxMissedBlocks >= p.SignedBlocksWindow:
		return fmt.Errorf("max_missed_blocks %d must be below signed_blocks_window %d", p.MaxMissedBlocks, p.SignedBlocksWindow)
	case p.DowntimeSlashBps > 10_000 || p.DoubleSignSlashBps > 10_000:
		return errors.New("downtime_slash_bps and double_sign_slash_bps are at most 10000")
	case p.MinSelfBond > emission.Cap:
		return fmt.Errorf("min_self_bond %d above the supply cap", p.MinSelfBond)
	}
	return nil
}

// validateValidators checks the genesis chain validators' shape and money;
// signatures need the chain id (ValidateFor). A Bond above zero comes out
// of the operator's genesis balance, so only a devnet-style genesis can
// bond; Bond 0 is a bootstrap validator with voting power 1, the way a
// chain without a premine starts.
func (g *Genesis) validateValidators() error {
	balances := make(map[address.Address]uint64, len(g.Accounts))
	for _, a := range g.Accounts {
		balances[a.Address] = a.Balance
	}
	ops := make(map[address.Address]bool, len(g.Validators))
	cons := make(map[string]bool, len(g.Validators))
	for i, v := range g.Validators {
		if len(v.OperatorPubKey) != ed25519.PublicKeySize || len(v.ConsensusPubKey) != ed25519.PublicKeySize || len(v.Signature) != ed25519.SignatureSize {
			return fmt.Errorf("genesis chain validator %d: operator key, consensus key and signature must be 32, 32 and 64 bytes", i)
		}
		if err := tx.ValidateMoniker(v.Moniker); err != nil {
			return fmt.Errorf("genesis chain validator %d: %w", i, err)
		}
		op := v.Operator()
		if ops[op] {
			return fmt.Errorf("genesis chain validator %d: operator %s listed twice", i, op)
		}
		ops[op] = true
		if cons[string(v.ConsensusPubKey)] {
			return fmt.Errorf("genesis chain validator %d: consensus key %X listed twice", i, v.ConsensusPubKey)
		}
		cons[string(v.ConsensusPubKey)] = true
		if v.Bond > 0 && v.Bond < g.Params.MinSelfBond {
			return fmt.Errorf("genesis chain validator %d: bond %d below min_self_bond %d (0 makes a bootstrap validator)", i, v.Bond, g.Params.MinSelfBond)
		}
		if v.Bond > balances[op] {
			return fmt.Errorf("genesis chain validator %d: bond %d exceeds operator %s's genesis balance %d", i, v.Bond, op, balances[op])
		}
		balances[op] -= v.Bond
	}
	return nil
}

// ValidateFor checks the genesis for chainID: Validate, at least one chain
// validator, and every chain validator's operator signature.
func (g *Genesis) ValidateFor(chainID string) error {
	if err := g.Validate(); err != nil {
		return err
	}
	if len(g.Validators) == 0 {
		return errors.New("genesis has no chain validators: CometBFT takes them from the app genesis, so the chain could not start")
	}
	for i, v := range g.Validators {
		if err := v.Verify(chainID); err != nil {
			return fmt.Errorf("genesis chain validator %d (%s): %w", i, v.Operator(), err)
		}
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
