package subnet

import (
	"cmp"
	"fmt"
	"slices"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/yuma"
)

// EndBlock moves the block's emission from the pending pool to the started
// subnets and runs every subnet epoch due at this height.
//
// Emission is split equally across started subnets. Equal shares keep the
// rule simple and ungameable until subnets have usage revenue to weigh them by
// (see README); the remainder of the division waits in the pool for the next
// block, so nothing is lost. Each share pays the owner cut at once and the rest
// accumulates in the subnet until its epoch.
func EndBlock(c *Ctx) ([]abci.Event, error) {
	subs, err := Subnets(c.KV)
	if err != nil {
		return nil, err
	}
	var started []*tx.Subnet
	for _, s := range subs {
		if s.Started {
			started = append(started, s)
		}
	}
	supply, err := bank.GetSupply(c.KV)
	if err != nil {
		return nil, err
	}
	if len(started) > 0 && supply.PendingEmission >= uint64(len(started)) {
		share := supply.PendingEmission / uint64(len(started))
		for _, s := range started {
			cut := mulDiv(share, uint64(c.Params.OwnerCutBps), 10_000) // ≤ share: OwnerCutBps ≤ 10,000
			if err := bank.Credit(c.KV, addrOf(s.Owner), cut); err != nil {
				return nil, err
			}
			if s.PendingEmission, err = bank.Grow(fmt.Sprintf("subnet %d pending emission", s.Netuid), s.PendingEmission, share-cut); err != nil {
				return nil, err
			}
			if supply.PendingEmission, err = bank.Take("supply pending_emission", supply.PendingEmission, share); err != nil {
				return nil, err
			}
			if supply.SubnetPending, err = bank.Grow("supply subnet_pending", supply.SubnetPending, share-cut); err != nil {
				return nil, err
			}
			if err := putSubnet(c.KV, s); err != nil {
				return nil, err
			}
		}
		if err := bank.SetSupply(c.KV, supply); err != nil {
			return nil, err
		}
	}
	var events []abci.Event
	for _, s := range planEpochs(started, c.Height) {
		ev, err := runEpoch(c, s)
		if err != nil {
			return nil, fmt.Errorf("epoch of subnet %d: %w", s.Netuid, err)
		}
		events = append(events, ev...)
	}
	return events, nil
}

// EpochBudgetPerBlock bounds the epoch work of one block, in the same cells
// as EpochCellsPerBlock (n² per epoch of an n-UID subnet): two of the
// largest epochs the bounds allow. Owners choose their tempos, so many
// subnets' epochs can fall on one block; those past the budget run in the
// next blocks instead of making one block take seconds.
const EpochBudgetPerBlock = 2 * MaxUIDsLimit * MaxUIDsLimit

// epochOwed reports whether a subnet's epoch should run at height: at its
// tempo boundary, or later when a full block deferred it. A deferred epoch
// leaves LastEpoch behind the current epoch index; a subnet that never ran
// an epoch (LastEpoch still its registration) waits for its boundary.
func epochOwed(s *tx.Subnet, height uint64) bool {
	if tx.EpochDue(s.Netuid, s.Params.Tempo, height) {
		return true
	}
	return s.LastEpoch > s.RegisteredAt && tx.EpochIndex(s.Netuid, s.Params.Tempo, height) > tx.EpochIndex(s.Netuid, s.Params.Tempo, s.LastEpoch)
}

// planEpochs picks the epochs to run at height, longest-waiting first (ties
// by netuid), within EpochBudgetPerBlock; the first always runs, so no
// subnet starves. Epochs of different subnets touch disjoint state, and the
// supply and balance updates they share commute, so the order changes nothing else.
func planEpochs(started []*tx.Subnet, height uint64) []*tx.Subnet {
	var owed []*tx.Subnet
	for _, s := range started {
		if epochOwed(s, height) {
			owed = append(owed, s)
		}
	}
	slices.SortFunc(owed, func(a, b *tx.Subnet) int {
		if c := cmp.Compare(a.LastEpoch, b.LastEpoch); c != 0 {
			return c
		}
		return cmp.Compare(a.Netuid, b.Netuid)
	})
	var spent uint64
	run := owed[:0]
	for _, s := range owed {
		cost := max(uint64(s.N)*uint64(s.N), 1) // N ≤ MaxUIDsLimit: no overflow
		if len(run) > 0 && spent+cost > EpochBudgetPerBlock {
			continue
		}
		spent += cost
		run = append(run, s)
	}
	return run
}

// epochInput reads a subnet's state into Yuma's input.
func epochInput(c *Ctx, sub *tx.Subnet) (yuma.Params, yuma.Input, []*tx.Neuron, error) {
	p := sub.Params
	yp := yuma.Params{
		Version:            yuma.Yuma3,
		Kappa:              yuma.FromU16(uint16(p.Kappa)),
		BondsMovingAverage: yuma.FromRatio(p.BondsMovingAverage, 1_000_000),
		BondsPenalty:       yuma.FromU16(uint16(p.BondsPenalty)),
		MaxValidators:      int(p.MaxValidators),
		ActivityCutoff:     p.ActivityCutoff,
		StakeThreshold:     p.StakeThreshold,
	}
	if p.YumaVersion == 2 {
		yp.Version = yuma.Yuma2
	}
	n := int(sub.N)
	in := yuma.Input{
		Block: c.Height, LastEpochBlock: sub.LastEpoch, OwnerUID: 0, Emission: sub.PendingEmission,
		Stake: make([]uint64, n), Weights: make([][]yuma.Weight, n), LastUpdate: make([]uint64, n),
		RegisteredAt: make([]uint64, n), PrevPermit: make([]bool, n), PrevBonds: make([][]yuma.Bond, n),
	}
	if p.CommitReveal {
		in.FirstCommitBlock = make([]uint64, n)
	}
	neurons := make([]*tx.Neuron, n)
	for uid := range uint16(n) {
		nr, err := GetNeuron(c.KV, sub.Netuid, uid)
		if err != nil {
			return yp, in, nil, err
		}
		neurons[uid] = nr
		pool, err := GetPool(c.KV, sub.Netuid, addrOf(nr.Hotkey))
		if err != nil {
			return yp, in, nil, err
		}
		in.Stake[uid] = pool.Stake
		in.LastUpdate[uid] = nr.LastUpdate
		in.RegisteredAt[uid] = nr.RegisteredAt
		in.PrevPermit[uid] = nr.ValidatorPermit
		if in.FirstCommitBlock != nil {
			in.FirstCommitBlock[uid] = nr.FirstCommitBlock
		}
		// Yuma drops the rows of UIDs without a permit (step 5), so they are
		// not even read: the weights an epoch decodes are bounded by
		// max_validators × max_uids, not by every row ever written.
		if nr.ValidatorPermit {
			w, err := getWeights(c.KV, sub.Netuid, uid)
			if err != nil {
				return yp, in, nil, err
			}
			row := make([]yuma.Weight, 0, len(w.Uids))
			for k, j := range w.Uids {
				if j < sub.N { // rows written before a shrink keep only live UIDs
					row = append(row, yuma.Weight{UID: uint16(j), Value: uint16(w.Values[k])})
				}
			}
			in.Weights[uid] = row
		}
		b, err := getBonds(c.KV, sub.Netuid, uid)
		if err != nil {
			return yp, in, nil, err
		}
		if len(b.Uids) > 0 {
			row := make([]yuma.Bond, 0, len(b.Uids))
			for k, j := range b.Uids {
				if j < sub.N {
					row = append(row, yuma.Bond{UID: uint16(j), Value: yuma.Fixed(b.Values[k])})
				}
			}
			in.PrevBonds[uid] = row
		}
	}
	return yp, in, neurons, nil
}

// runEpoch runs Yuma for a subnet and pays out its accumulated emission:
// miners' incentive to their coldkeys, validators' dividends as take to the
// hotkey owner and the rest into the validator's stake pool.
func runEpoch(c *Ctx, sub *tx.Subnet) ([]abci.Event, error) {
	var events []abci.Event
	// Emission pays royalty only where the owner opted in: it pays for the
	// work of serving and judging, and a model owner must not earn from a
	// subnet nobody pays to use.
	if sub.Params.RoyaltyOnEmission && c.Royalty != nil && sub.PendingEmission > 0 {
		taken, ev, err := c.Royalty.PayRoyalty(c, sub, sub.PendingEmission)
		if err != nil {
			return nil, fmt.Errorf("royalty on emission: %w", err)
		}
		if sub.PendingEmission, err = bank.Take(fmt.Sprintf("subnet %d pending emission", sub.Netuid), sub.PendingEmission, taken); err != nil {
			return nil, err
		}
		if err := bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
			s.SubnetPending, err = bank.Take("supply subnet_pending", s.SubnetPending, taken)
			return err
		}); err != nil {
			return nil, err
		}
		events = append(events, ev...)
	}
	// Settled channel revenue joins this epoch's payout: the pinned model's
	// royalty first, then the owner's cut, the rest split by Yuma exactly
	// like emission.
	if r := sub.PendingRevenue; r > 0 {
		var royalty uint64
		if c.Royalty != nil {
			var ev []abci.Event
			var err error
			if royalty, ev, err = c.Royalty.PayRoyalty(c, sub, r); err != nil {
				return nil, fmt.Errorf("royalty on revenue: %w", err)
			}
			if royalty > r {
				return nil, fmt.Errorf("%w: royalty %d of revenue %d", bank.ErrInvariant, royalty, r)
			}
			events = append(events, ev...)
		}
		rest := r - royalty
		cut := mulDiv(rest, uint64(c.Params.OwnerCutBps), 10_000) // ≤ rest
		if err := bank.Credit(c.KV, addrOf(sub.Owner), cut); err != nil {
			return nil, err
		}
		pending, err := bank.Grow(fmt.Sprintf("subnet %d pending emission", sub.Netuid), sub.PendingEmission, rest-cut)
		if err != nil {
			return nil, err
		}
		sub.PendingEmission, sub.PendingRevenue = pending, 0
		if err := bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
			if s.RevenuePending, err = bank.Take("supply revenue_pending", s.RevenuePending, r); err != nil {
				return err
			}
			s.SubnetPending, err = bank.Grow("supply subnet_pending", s.SubnetPending, rest-cut)
			return err
		}); err != nil {
			return nil, err
		}
	}
	yp, in, neurons, err := epochInput(c, sub)
	if err != nil {
		return nil, err
	}
	out, err := yuma.Epoch(yp, in)
	if err != nil {
		return nil, err
	}
	paid, err := bank.Take(fmt.Sprintf("subnet %d epoch emission", sub.Netuid), in.Emission, out.Unallocated)
	if err != nil {
		return nil, err
	}
	var staked uint64
	for uid, nr := range neurons {
		if m := out.MinerEmission[uid]; m > 0 {
			if err := bank.Credit(c.KV, addrOf(nr.Coldkey), m); err != nil {
				return nil, err
			}
		}
		if v := out.ValidatorEmission[uid]; v > 0 {
			s, err := PayValidator(c, sub.Netuid, addrOf(nr.Hotkey), v)
			if err != nil {
				return nil, err
			}
			if staked, err = bank.Grow("epoch stake", staked, s); err != nil {
				return nil, err
			}
		}
		nr.Active, nr.ValidatorPermit = out.Active[uid], out.NewPermit[uid]
		nr.Consensus, nr.Incentive = uint64(out.Consensus[uid]), uint64(out.Incentive[uid])
		nr.Dividends, nr.ValidatorTrust = uint64(out.Dividends[uid]), uint64(out.ValidatorTrust[uid])
		nr.Emission = agr.SaturatingAdd(out.MinerEmission[uid], out.ValidatorEmission[uid]) // ≤ the epoch's emission
		if err := put(c.KV, neuronKey(sub.Netuid, uint16(uid)), nr); err != nil {
			return nil, err
		}
		row := &tx.BondRow{Uids: make([]uint32, 0, len(out.Bonds[uid])), Values: make([]uint64, 0, len(out.Bonds[uid]))}
		for _, b := range out.Bonds[uid] {
			row.Uids = append(row.Uids, uint32(b.UID))
			row.Values = append(row.Values, uint64(b.Value))
		}
		if len(row.Uids) == 0 {
			err = c.KV.Delete(bondsKey(sub.Netuid, uint16(uid)))
		} else {
			err = put(c.KV, bondsKey(sub.Netuid, uint16(uid)), row)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
		if s.SubnetPending, err = bank.Take("supply subnet_pending", s.SubnetPending, paid); err != nil {
			return err
		}
		s.Staked, err = bank.Grow("supply staked", s.Staked, staked)
		return err
	}); err != nil {
		return nil, err
	}
	sub.PendingEmission = out.Unallocated
	sub.LastEpoch = c.Height
	sub.LastEpochEmission = paid
	sub.TotalEmitted = agr.SaturatingAdd(sub.TotalEmitted, paid) // a statistic, never spent
	if err := putSubnet(c.KV, sub); err != nil {
		return nil, err
	}
	return append(events, abci.Event{Type: "epoch", Attributes: []abci.EventAttribute{
		{Key: "netuid", Value: fmt.Sprint(sub.Netuid), Index: true},
		{Key: "emission", Value: fmt.Sprint(paid)},
	}}), nil
}

// Metagraph reads a subnet's full state.
func Metagraph(kv interface {
	Get([]byte) ([]byte, error)
}, netuid uint32) (*tx.Metagraph, error) {
	sub, err := GetSubnet(kv, netuid)
	if err != nil {
		return nil, err
	}
	mg := &tx.Metagraph{Subnet: sub, Neurons: make([]*tx.Neuron, sub.N), Stake: make([]uint64, sub.N)}
	for uid := range uint16(sub.N) {
		nr, err := GetNeuron(kv, netuid, uid)
		if err != nil {
			return nil, err
		}
		pool, err := GetPool(kv, netuid, addrOf(nr.Hotkey))
		if err != nil {
			return nil, err
		}
		mg.Neurons[uid], mg.Stake[uid] = nr, pool.Stake
	}
	return mg, nil
}
