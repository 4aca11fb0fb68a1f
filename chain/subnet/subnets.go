package subnet

import (
	"fmt"

	"math"
	"slices"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/tx"
)

// NewSubnetNetuid is the netuid a hotkey proof names when binding the owner
// hotkey of a subnet that does not exist yet.
const NewSubnetNetuid = math.MaxUint32

// Limits on hyperparameters (the defaults sit well inside them).
//
// They bound what one epoch costs every node. An epoch reads, runs Yuma over
// and rewrites up to max_validators × max_uids weights and max_uids² bonds
// (a former validator's bond row decays but stays stored, so every row can be
// full). BenchmarkEpochWorstCase measures the largest subnet these bounds
// allow; on 2 cores it takes about 90–180 ms, a tenth to a fifth of the 1 s
// devnet block.
// A bigger subnet must also run its epoch less often: max_uids² ≤
// tempo × EpochCellsPerBlock keeps the amortized work per block small, and
// EpochBudgetPerBlock caps one block at two maximal epochs however the
// owners align their tempos.
const (
	MaxUIDsLimit       = 1024
	MaxValidatorsLimit = 256
	DefaultTakeBps     = 1800

	MaxTempo = 100_000
	// EpochCellsPerBlock is the bond/weight work a subnet may amortize per
	// block: a full 256-UID subnet may run every block, a full 1024-UID
	// subnet every 16 blocks.
	EpochCellsPerBlock = 256 * 256
	// MaxPeriod bounds every hyperparameter counted in blocks (immunity,
	// activity cutoff, rate limits): about 136 years of 1 s blocks, so
	// height + period stays far from wrapping for any real height.
	MaxPeriod = 1 << 32
	// MaxRevealPeriod is in tempos.
	MaxRevealPeriod = 100
	// MinBurnFloor keeps registration from being free: a registration into
	// a full subnet scans every UID for the one to replace, and that work
	// is paid for by the burn.
	MinBurnFloor = agr.Unit / 100
	// MaxBurnLimit is the 21M AGR supply cap: no price can exceed all money.
	MaxBurnLimit = 21_000_000 * agr.Unit
)

// Ctx is what a state transition of this module sees.
type Ctx struct {
	KV      state.KV
	Height  uint64
	ChainID string
	Params  *tx.Params
	// Royalty pays the pinned model's royalty at an epoch; nil pays none.
	Royalty RoyaltyPayer
}

// RoyaltyPayer takes a pinned model's royalty out of an amount a subnet is
// about to distribute and returns how much it took (chain/royalty, which
// builds on this package, implements it).
type RoyaltyPayer interface {
	PayRoyalty(c *Ctx, sub *tx.Subnet, amount uint64) (taken uint64, events []abci.Event, err error)
}

// DefaultSubnetParams are the hyperparameters a new subnet starts with,
// until its owner tunes them.
func DefaultSubnetParams() *tx.SubnetParams {
	return &tx.SubnetParams{
		Tempo:              360,
		MaxUids:            256,
		MaxValidators:      64,
		ImmunityPeriod:     5000,
		Kappa:              32767,
		BondsMovingAverage: 900_000,
		BondsPenalty:       65535,
		ActivityCutoff:     5000,
		WeightsRateLimit:   100,
		CommitReveal:       true,
		RevealPeriod:       1,
		MinBurn:            agr.Unit / 2,
		MaxBurn:            100 * agr.Unit,
		StakeThreshold:     0,
		MinAllowedWeights:  1,
		YumaVersion:        3,
		ServingRateLimit:   50,
	}
}

// ValidateParams checks a subnet's hyperparameters.
func ValidateParams(p *tx.SubnetParams) error {
	switch {
	case p.Tempo < 1 || p.Tempo > MaxTempo:
		return fmt.Errorf("%w: tempo %d outside 1..%d", ErrInvalid, p.Tempo, MaxTempo)
	case p.MaxUids < 1 || p.MaxUids > MaxUIDsLimit:
		return fmt.Errorf("%w: max_uids %d outside 1..%d", ErrInvalid, p.MaxUids, MaxUIDsLimit)
	case p.MaxValidators < 1 || p.MaxValidators > p.MaxUids || p.MaxValidators > MaxValidatorsLimit:
		return fmt.Errorf("%w: max_validators %d outside 1..min(max_uids, %d)", ErrInvalid, p.MaxValidators, MaxValidatorsLimit)
	case uint64(p.MaxUids)*uint64(p.MaxUids) > p.Tempo*EpochCellsPerBlock:
		return fmt.Errorf("%w: max_uids %d needs a tempo of at least %d blocks (max_uids² ≤ tempo × %d)",
			ErrInvalid, p.MaxUids, (uint64(p.MaxUids)*uint64(p.MaxUids)+EpochCellsPerBlock-1)/EpochCellsPerBlock, EpochCellsPerBlock)
	case p.ImmunityPeriod > MaxPeriod:
		return fmt.Errorf("%w: immunity_period %d above %d blocks", ErrInvalid, p.ImmunityPeriod, uint64(MaxPeriod))
	case p.ActivityCutoff > MaxPeriod:
		return fmt.Errorf("%w: activity_cutoff %d above %d blocks", ErrInvalid, p.ActivityCutoff, uint64(MaxPeriod))
	case p.WeightsRateLimit > MaxPeriod:
		return fmt.Errorf("%w: weights_rate_limit %d above %d blocks", ErrInvalid, p.WeightsRateLimit, uint64(MaxPeriod))
	case p.ServingRateLimit > MaxPeriod:
		return fmt.Errorf("%w: serving_rate_limit %d above %d blocks", ErrInvalid, p.ServingRateLimit, uint64(MaxPeriod))
	case p.Kappa > 65535 || p.BondsPenalty > 65535:
		return fmt.Errorf("%w: kappa and bonds_penalty are fractions of 65535", ErrInvalid)
	case p.BondsMovingAverage > 1_000_000:
		return fmt.Errorf("%w: bonds_moving_average is a fraction of 1,000,000", ErrInvalid)
	case p.CommitReveal && p.RevealPeriod < 1:
		return fmt.Errorf("%w: reveal_period must be at least 1 tempo", ErrInvalid)
	case p.RevealPeriod > MaxRevealPeriod:
		return fmt.Errorf("%w: reveal_period %d above %d tempos", ErrInvalid, p.RevealPeriod, MaxRevealPeriod)
	case p.MinBurn < MinBurnFloor:
		return fmt.Errorf("%w: min_burn %d below the floor %d (registration is never free)", ErrInvalid, p.MinBurn, MinBurnFloor)
	case p.MaxBurn > MaxBurnLimit:
		return fmt.Errorf("%w: max_burn %d above the supply cap %d", ErrInvalid, p.MaxBurn, uint64(MaxBurnLimit))
	case p.MinBurn > p.MaxBurn:
		return fmt.Errorf("%w: min_burn above max_burn", ErrInvalid)
	case p.StakeThreshold > MaxBurnLimit:
		return fmt.Errorf("%w: stake_threshold %d above the supply cap", ErrInvalid, p.StakeThreshold)
	case p.MinAllowedWeights > p.MaxUids:
		return fmt.Errorf("%w: min_allowed_weights above max_uids", ErrInvalid)
	case p.YumaVersion != 2 && p.YumaVersion != 3:
		return fmt.Errorf("%w: yuma_version %d (want 2 or 3)", ErrInvalid, p.YumaVersion)
	case len(p.ModelId) != 0 && !isHex64(p.ModelId):
		return fmt.Errorf("%w: model_id must be a sha256 in hex", ErrInvalid)
	}
	return nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// LockCost is the price of the next subnet: the last price doubled, decaying
// linearly back over lock_interval blocks, never below the floor.
func LockCost(p *tx.Params, reg *tx.SubnetRegistry, height uint64) uint64 {
	if reg.LastLock == 0 {
		return p.SubnetLockFloor
	}
	doubled := reg.LastLock * 2
	if reg.LastLock > math.MaxUint64/2 {
		doubled = math.MaxUint64
	}
	cost := uint64(0)
	if height >= reg.LastLockBlock && before(height, reg.LastLockBlock, p.SubnetLockInterval) {
		elapsed := height - reg.LastLockBlock
		// doubled × (1 − elapsed/interval), in 128-bit-safe steps.
		cost = doubled - mulDiv(doubled, elapsed, p.SubnetLockInterval)
	}
	return max(cost, p.SubnetLockFloor)
}

// RegisterSubnet creates a subnet owned by the signer, taking its lock cost.
//
// The cheap refusals (proof, max_lock, a balance short of the lock) come
// before pruning, which reads every UID's pool of every subnet: a
// registration that cannot pay must not make every node do that work for
// the price of a fee. Pruning does not change the lock cost, so checking it
// first decides the same way.
func RegisterSubnet(c *Ctx, owner address.Address, m *tx.MsgSubnetRegister) (uint32, error) {
	reg, err := GetRegistry(c.KV)
	if err != nil {
		return 0, err
	}
	if !m.OwnerHotkey.Verify(c.ChainID, NewSubnetNetuid, owner) {
		return 0, fmt.Errorf("%w: owner hotkey proof does not verify", ErrUnauthorized)
	}
	cost := LockCost(c.Params, reg, c.Height)
	if m.MaxLock != 0 && cost > m.MaxLock {
		return 0, fmt.Errorf("%w: lock cost %d, max_lock %d", ErrPriceMoved, cost, m.MaxLock)
	}
	acc, err := bank.GetAccount(c.KV, owner)
	if err != nil {
		return 0, err
	}
	if acc.Balance < cost {
		return 0, fmt.Errorf("%w: %s has %d, the subnet lock is %d", bank.ErrInsufficientFunds, owner, acc.Balance, cost)
	}
	netuid := max(reg.NextNetuid, 1)
	if netuid == NewSubnetNetuid {
		return 0, fmt.Errorf("%w: netuids exhausted", ErrFull)
	}
	if reg.Count >= c.Params.MaxSubnets {
		if err := pruneWeakestSubnet(c, reg); err != nil {
			return 0, err
		}
	}
	if err := bank.Debit(c.KV, owner, cost); err != nil {
		return 0, err
	}
	if err := bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
		s.Locked, err = bank.Grow("supply locked", s.Locked, cost)
		return err
	}); err != nil {
		return 0, err
	}
	reg.NextNetuid = netuid + 1
	reg.Count++
	reg.LastLock, reg.LastLockBlock = cost, c.Height
	reg.Netuids = append(reg.Netuids, netuid)
	slices.Sort(reg.Netuids)
	if err := put(c.KV, registryKey(), reg); err != nil {
		return 0, err
	}
	params := c.Params.DefaultSubnet
	if params == nil {
		params = DefaultSubnetParams()
	}
	sub := &tx.Subnet{
		Netuid: netuid, Owner: owner[:], Locked: cost, RegisteredAt: c.Height, Name: m.Name,
		Params: params, Burn: params.MinBurn, BurnUpdatedAt: c.Height, LastEpoch: c.Height,
	}
	hotkey := address.FromPubKey(m.OwnerHotkey.PubKey)
	if err := bindHotkey(c, hotkey, owner); err != nil {
		return 0, err
	}
	if _, err := addNeuron(c, sub, hotkey, owner); err != nil {
		return 0, err
	}
	return netuid, putSubnet(c.KV, sub)
}

// bindHotkey records owner as the hotkey's coldkey, or checks it already is.
func bindHotkey(c *Ctx, hotkey, owner address.Address) error {
	h, ok, err := getHotkey(c.KV, hotkey)
	if err != nil {
		return err
	}
	if ok {
		if addrOf(h.Owner) != owner {
			return fmt.Errorf("%w: hotkey %s belongs to another coldkey", ErrUnauthorized, hotkey)
		}
		return nil
	}
	return put(c.KV, hotkeyKey(hotkey), &tx.Hotkey{Owner: owner[:], TakeBps: DefaultTakeBps, TakeChangedAt: c.Height})
}

func ownedSubnet(c *Ctx, signer address.Address, netuid uint32) (*tx.Subnet, error) {
	sub, err := GetSubnet(c.KV, netuid)
	if err != nil {
		return nil, err
	}
	if addrOf(sub.Owner) != signer {
		return nil, fmt.Errorf("%w: only subnet %d's owner may do this", ErrUnauthorized, netuid)
	}
	return sub, nil
}

// SetParams replaces a subnet's hyperparameters (owner only).
func SetParams(c *Ctx, signer address.Address, m *tx.MsgSubnetSetParams) error {
	sub, err := ownedSubnet(c, signer, m.Netuid)
	if err != nil {
		return err
	}
	if err := ValidateParams(m.Params); err != nil {
		return err
	}
	if id := m.Params.ModelId; id != "" && id != sub.Params.GetModelId() {
		key, err := tx.ModelIDBytes(id)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		raw, err := c.KV.Get(tx.ModelKey(key))
		if err != nil {
			return err
		}
		if raw == nil {
			return fmt.Errorf("model %s: %w: register it before a subnet pins it", id, ErrNotFound)
		}
	}
	if m.Params.MaxUids < sub.N {
		return fmt.Errorf("%w: max_uids %d below the %d UIDs in use", ErrInvalid, m.Params.MaxUids, sub.N)
	}
	sub.Params = m.Params
	return putSubnet(c.KV, sub)
}

// Start turns on emission to a subnet (owner only).
func Start(c *Ctx, signer address.Address, netuid uint32) error {
	sub, err := ownedSubnet(c, signer, netuid)
	if err != nil {
		return err
	}
	if sub.Started {
		return fmt.Errorf("%w: subnet %d already started", ErrExists, netuid)
	}
	sub.Started = true
	return putSubnet(c.KV, sub)
}

// pruneWeakestSubnet dissolves the subnet outside its immunity with the least
// stake (ties: the oldest, then the lowest netuid), returning its lock to the owner.
func pruneWeakestSubnet(c *Ctx, reg *tx.SubnetRegistry) error {
	var victim *tx.Subnet
	var victimStake uint64
	for _, netuid := range reg.Netuids {
		sub, err := GetSubnet(c.KV, netuid)
		if err != nil {
			return err
		}
		if before(c.Height, sub.RegisteredAt, c.Params.SubnetImmunity) {
			continue
		}
		st, err := subnetStake(c.KV, sub)
		if err != nil {
			return err
		}
		if victim == nil || st < victimStake || (st == victimStake && sub.RegisteredAt < victim.RegisteredAt) {
			victim, victimStake = sub, st
		}
	}
	if victim == nil {
		return fmt.Errorf("%w: %d subnets, all within their immunity period", ErrFull, reg.Count)
	}
	return dissolve(c, reg, victim)
}

func subnetStake(kv state.KVReader, sub *tx.Subnet) (uint64, error) {
	var total uint64
	for uid := range uint16(sub.N) {
		n, err := GetNeuron(kv, sub.Netuid, uid)
		if err != nil {
			return 0, err
		}
		p, err := GetPool(kv, sub.Netuid, addrOf(n.Hotkey))
		if err != nil {
			return 0, err
		}
		if total, err = bank.Grow(fmt.Sprintf("subnet %d stake", sub.Netuid), total, p.Stake); err != nil {
			return 0, err
		}
	}
	return total, nil
}

// dissolve removes a subnet: the lock and undistributed emission go back to
// the owner; stake pools stay withdrawable by their delegators.
func dissolve(c *Ctx, reg *tx.SubnetRegistry, sub *tx.Subnet) error {
	for uid := range uint16(sub.N) {
		n, err := GetNeuron(c.KV, sub.Netuid, uid)
		if err != nil {
			return err
		}
		if err := wipeUID(c, sub.Netuid, uid, addrOf(n.Hotkey)); err != nil {
			return err
		}
		if err := c.KV.Delete(neuronKey(sub.Netuid, uid)); err != nil {
			return err
		}
	}
	owner := addrOf(sub.Owner)
	refund, err := bank.Grow("dissolve refund", sub.Locked, sub.PendingEmission)
	if err != nil {
		return err
	}
	if refund, err = bank.Grow("dissolve refund", refund, sub.PendingRevenue); err != nil {
		return err
	}
	if err := bank.Credit(c.KV, owner, refund); err != nil {
		return err
	}
	if err := bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
		if s.Locked, err = bank.Take("supply locked", s.Locked, sub.Locked); err != nil {
			return err
		}
		if s.SubnetPending, err = bank.Take("supply subnet_pending", s.SubnetPending, sub.PendingEmission); err != nil {
			return err
		}
		s.RevenuePending, err = bank.Take("supply revenue_pending", s.RevenuePending, sub.PendingRevenue)
		return err
	}); err != nil {
		return err
	}
	if err := c.KV.Delete(oldestKey(sub.Netuid)); err != nil {
		return err
	}
	reg.Count--
	reg.Netuids = slices.DeleteFunc(reg.Netuids, func(n uint32) bool { return n == sub.Netuid })
	return c.KV.Delete(subnetKey(sub.Netuid))
}

// Subnets lists every subnet in netuid order.
func Subnets(kv state.KVReader) ([]*tx.Subnet, error) {
	reg, err := GetRegistry(kv)
	if err != nil {
		return nil, err
	}
	out := make([]*tx.Subnet, 0, len(reg.Netuids))
	for _, n := range reg.Netuids {
		s, err := GetSubnet(kv, n)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// AddRevenue credits settled channel payments to a subnet; they are split at
// its next epoch. Claims on a dissolved subnet fail, and the payer's unclaimed
// deposit stays refundable after expiry.
func AddRevenue(c *Ctx, netuid uint32, amount uint64) error {
	sub, err := GetSubnet(c.KV, netuid)
	if err != nil {
		return err
	}
	if sub.PendingRevenue, err = bank.Grow(fmt.Sprintf("subnet %d pending revenue", netuid), sub.PendingRevenue, amount); err != nil {
		return err
	}
	sub.TotalRevenue = agr.SaturatingAdd(sub.TotalRevenue, amount) // a statistic, never spent
	return putSubnet(c.KV, sub)
}
