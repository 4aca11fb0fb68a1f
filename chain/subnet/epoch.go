package subnet

import (
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"

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
			cut := mulDiv(share, uint64(c.Params.OwnerCutBps), 10_000)
			if err := bank.Credit(c.KV, addrOf(s.Owner), cut); err != nil {
				return nil, err
			}
			s.PendingEmission += share - cut
			supply.PendingEmission -= share
			supply.SubnetPending += share - cut
			if err := putSubnet(c.KV, s); err != nil {
				return nil, err
			}
		}
		if err := bank.SetSupply(c.KV, supply); err != nil {
			return nil, err
		}
	}
	var events []abci.Event
	for _, s := range started {
		if !EpochDue(s.Netuid, s.Params.Tempo, c.Height) {
			continue
		}
		ev, err := runEpoch(c, s)
		if err != nil {
			return nil, fmt.Errorf("epoch of subnet %d: %w", s.Netuid, err)
		}
		events = append(events, ev)
	}
	return events, nil
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
		w, err := getWeights(c.KV, sub.Netuid, uid)
		if err != nil {
			return yp, in, nil, err
		}
		for k, j := range w.Uids {
			if j < sub.N { // rows written before a shrink keep only live UIDs
				in.Weights[uid] = append(in.Weights[uid], yuma.Weight{UID: uint16(j), Value: uint16(w.Values[k])})
			}
		}
		b, err := getBonds(c.KV, sub.Netuid, uid)
		if err != nil {
			return yp, in, nil, err
		}
		for k, j := range b.Uids {
			if j < sub.N {
				in.PrevBonds[uid] = append(in.PrevBonds[uid], yuma.Bond{UID: uint16(j), Value: yuma.Fixed(b.Values[k])})
			}
		}
	}
	return yp, in, neurons, nil
}

// runEpoch runs Yuma for a subnet and pays out its accumulated emission:
// miners' incentive to their coldkeys, validators' dividends as take to the
// hotkey owner and the rest into the validator's stake pool.
func runEpoch(c *Ctx, sub *tx.Subnet) (abci.Event, error) {
	// Settled channel revenue joins this epoch's payout: the owner's cut
	// first, the rest split by Yuma exactly like emission.
	if r := sub.PendingRevenue; r > 0 {
		cut := mulDiv(r, uint64(c.Params.OwnerCutBps), 10_000)
		if err := bank.Credit(c.KV, addrOf(sub.Owner), cut); err != nil {
			return abci.Event{}, err
		}
		sub.PendingEmission += r - cut
		sub.PendingRevenue = 0
		if err := bank.UpdateSupply(c.KV, func(s *tx.Supply) error {
			s.RevenuePending -= r
			s.SubnetPending += r - cut
			return nil
		}); err != nil {
			return abci.Event{}, err
		}
	}
	yp, in, neurons, err := epochInput(c, sub)
	if err != nil {
		return abci.Event{}, err
	}
	out, err := yuma.Epoch(yp, in)
	if err != nil {
		return abci.Event{}, err
	}
	paid := in.Emission - out.Unallocated
	var staked uint64
	for uid, nr := range neurons {
		if m := out.MinerEmission[uid]; m > 0 {
			if err := bank.Credit(c.KV, addrOf(nr.Coldkey), m); err != nil {
				return abci.Event{}, err
			}
		}
		if v := out.ValidatorEmission[uid]; v > 0 {
			s, err := PayValidator(c, sub.Netuid, addrOf(nr.Hotkey), v)
			if err != nil {
				return abci.Event{}, err
			}
			staked += s
		}
		nr.Active, nr.ValidatorPermit = out.Active[uid], out.NewPermit[uid]
		nr.Consensus, nr.Incentive = uint64(out.Consensus[uid]), uint64(out.Incentive[uid])
		nr.Dividends, nr.ValidatorTrust = uint64(out.Dividends[uid]), uint64(out.ValidatorTrust[uid])
		nr.Emission = out.MinerEmission[uid] + out.ValidatorEmission[uid]
		if err := put(c.KV, neuronKey(sub.Netuid, uint16(uid)), nr); err != nil {
			return abci.Event{}, err
		}
		row := &tx.BondRow{}
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
			return abci.Event{}, err
		}
	}
	if err := bank.UpdateSupply(c.KV, func(s *tx.Supply) error {
		s.SubnetPending -= paid
		s.Staked += staked
		return nil
	}); err != nil {
		return abci.Event{}, err
	}
	sub.PendingEmission = out.Unallocated
	sub.LastEpoch = c.Height
	sub.LastEpochEmission = paid
	sub.TotalEmitted += paid
	if err := putSubnet(c.KV, sub); err != nil {
		return abci.Event{}, err
	}
	return abci.Event{Type: "epoch", Attributes: []abci.EventAttribute{
		{Key: "netuid", Value: fmt.Sprint(sub.Netuid), Index: true},
		{Key: "emission", Value: fmt.Sprint(paid)},
	}}, nil
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
