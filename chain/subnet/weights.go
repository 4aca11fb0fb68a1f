package subnet

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
)

func validatorNeuron(c *Ctx, hotkey address.Address, netuid uint32) (*tx.Subnet, uint16, *tx.Neuron, error) {
	sub, err := GetSubnet(c.KV, netuid)
	if err != nil {
		return nil, 0, nil, err
	}
	uid, err := UIDOf(c.KV, netuid, hotkey)
	if err != nil {
		return nil, 0, nil, err
	}
	n, err := GetNeuron(c.KV, netuid, uid)
	if err != nil {
		return nil, 0, nil, err
	}
	return sub, uid, n, nil
}

// CommitWeights records a hash of weights to reveal reveal_period tempos later.
func CommitWeights(c *Ctx, hotkey address.Address, m *tx.MsgWeightsCommit) error {
	sub, uid, n, err := validatorNeuron(c, hotkey, m.Netuid)
	if err != nil {
		return err
	}
	if !sub.Params.CommitReveal {
		return fmt.Errorf("%w: subnet %d has commit-reveal off; use weights set", ErrInvalid, m.Netuid)
	}
	if err := checkRateLimit(sub, n, c.Height); err != nil {
		return err
	}
	if err := put(c.KV, commitKey(m.Netuid, hotkey), &tx.WeightCommit{Hash: m.Hash, Block: c.Height}); err != nil {
		return err
	}
	n.FirstCommitBlock = c.Height
	return put(c.KV, neuronKey(m.Netuid, uid), n)
}

// RevealWeights opens a commit inside its window and sets the weights.
func RevealWeights(c *Ctx, hotkey address.Address, m *tx.MsgWeightsReveal) error {
	sub, uid, n, err := validatorNeuron(c, hotkey, m.Netuid)
	if err != nil {
		return err
	}
	if !sub.Params.CommitReveal {
		return fmt.Errorf("%w: subnet %d has commit-reveal off", ErrInvalid, m.Netuid)
	}
	cm := &tx.WeightCommit{}
	ok, err := get(c.KV, commitKey(m.Netuid, hotkey), cm)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no pending weight commit for %s on subnet %d: %w", hotkey, m.Netuid, ErrNotFound)
	}
	want := agr.SaturatingAdd(tx.EpochIndex(m.Netuid, sub.Params.Tempo, cm.Block), sub.Params.RevealPeriod)
	now := tx.EpochIndex(m.Netuid, sub.Params.Tempo, c.Height)
	if now < want {
		return fmt.Errorf("%w: too early, reveal in epoch %d (now %d)", ErrWindow, want, now)
	}
	if now > want {
		return fmt.Errorf("%w: too late, the window was epoch %d (now %d); commit again", ErrWindow, want, now)
	}
	if !bytes.Equal(tx.WeightsHash(hotkey, m.Netuid, m.Uids, m.Values, m.Salt, m.VersionKey), cm.Hash) {
		return fmt.Errorf("%w: reveal does not match the commit (wrong salt, weights or version)", ErrUnauthorized)
	}
	if err := c.KV.Delete(commitKey(m.Netuid, hotkey)); err != nil {
		return err
	}
	n.FirstCommitBlock = 0
	return setWeights(c, sub, uid, n, m.Uids, m.Values, m.VersionKey)
}

// SetWeights sets weights directly where commit-reveal is off.
func SetWeights(c *Ctx, hotkey address.Address, m *tx.MsgWeightsSet) error {
	sub, uid, n, err := validatorNeuron(c, hotkey, m.Netuid)
	if err != nil {
		return err
	}
	if sub.Params.CommitReveal {
		return fmt.Errorf("%w: subnet %d uses commit-reveal; commit then reveal", ErrInvalid, m.Netuid)
	}
	if err := checkRateLimit(sub, n, c.Height); err != nil {
		return err
	}
	return setWeights(c, sub, uid, n, m.Uids, m.Values, m.VersionKey)
}

func checkRateLimit(sub *tx.Subnet, n *tx.Neuron, height uint64) error {
	if n.LastUpdate != n.RegisteredAt && before(height, n.LastUpdate, sub.Params.WeightsRateLimit) {
		return fmt.Errorf("%w: weights can be set again at block %d", ErrRateLimited, agr.SaturatingAdd(n.LastUpdate, sub.Params.WeightsRateLimit))
	}
	return nil
}

// setWeights checks a validator's weight row against the subnet's rules
// (version key, permit, stake threshold, minimum count, existing and distinct
// UIDs) and stores it.
func setWeights(c *Ctx, sub *tx.Subnet, uid uint16, n *tx.Neuron, uids, values []uint32, version uint64) error {
	if version < sub.Params.WeightsVersion {
		return fmt.Errorf("%w: version_key %d below the subnet's %d", ErrInvalid, version, sub.Params.WeightsVersion)
	}
	owner := uid == 0
	selfOnly := len(uids) == 1 && uids[0] == uint32(uid)
	if !n.ValidatorPermit && !selfOnly {
		return fmt.Errorf("%w: uid %d has no validator permit", ErrUnauthorized, uid)
	}
	pool, err := GetPool(c.KV, sub.Netuid, addrOf(n.Hotkey))
	if err != nil {
		return err
	}
	if pool.Stake < sub.Params.StakeThreshold && !owner {
		return fmt.Errorf("%w: stake %d below the threshold %d", ErrUnauthorized, pool.Stake, sub.Params.StakeThreshold)
	}
	if uint32(len(uids)) < sub.Params.MinAllowedWeights && !selfOnly {
		return fmt.Errorf("%w: %d weights, at least %d required", ErrInvalid, len(uids), sub.Params.MinAllowedWeights)
	}
	type pair struct{ uid, value uint32 }
	pairs := make([]pair, len(uids))
	for i := range uids {
		if uids[i] >= sub.N {
			return fmt.Errorf("%w: uid %d does not exist (subnet has %d)", ErrInvalid, uids[i], sub.N)
		}
		if uids[i] == uint32(uid) && !owner && !selfOnly {
			return fmt.Errorf("%w: uid %d may not weight itself", ErrInvalid, uid)
		}
		pairs[i] = pair{uids[i], values[i]}
	}
	slices.SortFunc(pairs, func(a, b pair) int { return int(a.uid) - int(b.uid) })
	row := &tx.WeightRow{}
	for i, p := range pairs {
		if i > 0 && p.uid == pairs[i-1].uid {
			return fmt.Errorf("%w: uid %d appears twice", ErrInvalid, p.uid)
		}
		row.Uids = append(row.Uids, p.uid)
		row.Values = append(row.Values, p.value)
	}
	if err := put(c.KV, weightsKey(sub.Netuid, uid), row); err != nil {
		return err
	}
	n.LastUpdate = c.Height
	return put(c.KV, neuronKey(sub.Netuid, uid), n)
}
