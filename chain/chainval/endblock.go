package chainval

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
)

// Result is what the end of a block hands back to CometBFT.
type Result struct {
	Updates []abci.ValidatorUpdate // sorted by consensus address; power 0 removes
	Events  []abci.Event
}

// EndBlock applies the block's evidence and commit votes, pays out the
// unbonding entries maturing at this height, and, when anything changed
// the candidates, diffs the new active set against the last one sent.
func EndBlock(c *subnet.Ctx, misbehavior []abci.Misbehavior, votes []abci.VoteInfo) (*Result, error) {
	res := &Result{}
	for _, m := range misbehavior {
		if err := evidence(c, m, res); err != nil {
			return nil, err
		}
	}
	for _, vote := range votes {
		if err := downtime(c, vote, res); err != nil {
			return nil, err
		}
	}
	if err := mature(c, res); err != nil {
		return nil, err
	}
	dirty, err := c.KV.Get(tx.ChainValidatorDirtyKey())
	if err != nil {
		return nil, fmt.Errorf("read chain validator marker: %w", err)
	}
	if dirty == nil {
		return res, nil
	}
	set, err := updateSet(c, false)
	if err != nil {
		return nil, err
	}
	res.Updates = set.Updates
	res.Events = append(res.Events, set.Events...)
	return res, nil
}

func attr(k, v string) abci.EventAttribute { return abci.EventAttribute{Key: k, Value: v, Index: true} }

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

// evidence slashes and tombstones a double signer. Evidence naming an
// unknown key, or one already tombstoned, changes nothing: one infraction
// is punished once, however often its evidence is replayed.
func evidence(c *subnet.Ctx, m abci.Misbehavior, res *Result) error {
	if m.Type != abci.MisbehaviorType_DUPLICATE_VOTE && m.Type != abci.MisbehaviorType_LIGHT_CLIENT_ATTACK {
		return nil
	}
	v, err := ByConsensusAddress(c.KV, m.Validator.Address)
	if err != nil || v == nil || v.Tombstoned {
		return err
	}
	burned, err := slash(c.KV, v, c.Params.DoubleSignSlashBps)
	if err != nil {
		return err
	}
	v.Tombstoned, v.Jailed, v.JailedUntil = true, true, math.MaxUint64
	if err := resetWindow(c.KV, v); err != nil {
		return err
	}
	if err := put(c.KV, v); err != nil {
		return err
	}
	res.Events = append(res.Events, abci.Event{Type: "chain_validator_slash", Attributes: []abci.EventAttribute{
		attr("operator", addrText(v.Operator)), attr("reason", "double_sign"),
		attr("infraction_height", strconv.FormatInt(m.Height, 10)), attr("burned", u64(burned)), attr("tombstoned", "true"),
	}})
	return markDirty(c.KV)
}

// downtime records one commit vote in its chain validator's sliding
// window: bit i of the window is block WindowSeen mod N, so each block
// costs one bit flip and the missed count stays exact.
func downtime(c *subnet.Ctx, vote abci.VoteInfo, res *Result) error {
	v, err := ByConsensusAddress(c.KV, vote.Validator.Address)
	if err != nil || v == nil || v.Jailed {
		// A jailed one still votes for the two blocks CometBFT takes to
		// drop it; it is already out, so those votes are not counted.
		return err
	}
	op, err := address.FromBytes(v.Operator)
	if err != nil {
		return fmt.Errorf("%w: operator %x", bank.ErrInvariant, v.Operator)
	}
	n := c.Params.SignedBlocksWindow
	missed := vote.BlockIdFlag == cmtproto.BlockIDFlagAbsent
	idx := v.WindowSeen % n
	bitsRaw, err := c.KV.Get(tx.MissedBitsKey(op))
	if err != nil {
		return fmt.Errorf("read missed blocks of %s: %w", op, err)
	}
	was := bitsRaw != nil && uint64(len(bitsRaw)) > idx/8 && bitsRaw[idx/8]&(1<<(idx%8)) != 0
	if was != missed {
		b := make([]byte, (n+7)/8)
		copy(b, bitsRaw)
		if missed {
			b[idx/8] |= 1 << (idx % 8)
			v.Missed++
		} else {
			b[idx/8] &^= 1 << (idx % 8)
			v.Missed--
		}
		if err := c.KV.Set(tx.MissedBitsKey(op), b); err != nil {
			return err
		}
	}
	v.WindowSeen++
	if v.Missed > c.Params.MaxMissedBlocks {
		burned, err := slash(c.KV, v, c.Params.DowntimeSlashBps)
		if err != nil {
			return err
		}
		until := c.Height + c.Params.DowntimeJailBlocks
		if until < c.Height { // bounded at genesis; saturate rather than wrap
			until = math.MaxUint64
		}
		v.Jailed, v.JailedUntil = true, until
		if err := resetWindow(c.KV, v); err != nil {
			return err
		}
		res.Events = append(res.Events, abci.Event{Type: "chain_validator_slash", Attributes: []abci.EventAttribute{
			attr("operator", op.String()), attr("reason", "downtime"), attr("burned", u64(burned)), attr("jailed_until", u64(until)),
		}})
		if err := markDirty(c.KV); err != nil {
			return err
		}
	}
	return put(c.KV, v)
}

// mature pays out the unbonding entries that mature at this height.
func mature(c *subnet.Ctx, res *Result) error {
	key := tx.UnbondingQueueKey(c.Height)
	q := &tx.OperatorList{}
	ok, err := getProto(c.KV, key, q)
	if err != nil || !ok {
		return err
	}
	for _, raw := range q.Operators {
		op, err := address.FromBytes(raw)
		if err != nil {
			return fmt.Errorf("%w: unbonding queue entry %x", bank.ErrInvariant, raw)
		}
		v, err := Get(c.KV, op)
		if err != nil {
			return err
		}
		if v == nil {
			return fmt.Errorf("%w: unbonding queue names %s, which has no chain validator", bank.ErrInvariant, op)
		}
		var paid uint64
		kept := v.Unbonding[:0]
		for _, e := range v.Unbonding {
			if e.MatureHeight > c.Height {
				kept = append(kept, e)
				continue
			}
			if paid, err = bank.Grow("unbonding payout", paid, e.Amount); err != nil {
				return fmt.Errorf("%w: %v", bank.ErrInvariant, err)
			}
		}
		v.Unbonding = kept
		if err := put(c.KV, v); err != nil {
			return err
		}
		if err := bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
			s.Unbonding, err = bank.Take("supply unbonding", s.Unbonding, paid)
			return err
		}); err != nil {
			return err
		}
		if err := bank.Credit(c.KV, op, paid); err != nil {
			return err
		}
		res.Events = append(res.Events, abci.Event{Type: "chain_validator_unbonded", Attributes: []abci.EventAttribute{
			attr("operator", op.String()), attr("amount", u64(paid)),
		}})
	}
	return c.KV.Delete(key)
}

// ActiveSet computes the top max_chain_validators candidates by bond (ties:
// lower consensus address first), excluding jailed ones and those with no
// power, sorted by consensus address.
func ActiveSet(c *subnet.Ctx) ([]*tx.ValidatorSetEntry, error) {
	all, err := All(c.KV)
	if err != nil {
		return nil, err
	}
	type cand struct {
		v    *tx.ChainValidator
		addr []byte
	}
	cands := make([]cand, 0, len(all))
	for _, v := range all {
		if v.Jailed || v.Tombstoned || Power(v) == 0 {
			continue
		}
		cands = append(cands, cand{v, tx.ConsensusAddress(v.ConsensusPubKey)})
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if pa, pb := Power(a.v), Power(b.v); pa != pb {
			if pa > pb {
				return -1
			}
			return 1
		}
		if a.v.Bonded != b.v.Bonded {
			if a.v.Bonded > b.v.Bonded {
				return -1
			}
			return 1
		}
		return bytes.Compare(a.addr, b.addr)
	})
	if k := int(c.Params.MaxChainValidators); len(cands) > k {
		cands = cands[:k]
	}
	slices.SortFunc(cands, func(a, b cand) int { return bytes.Compare(a.addr, b.addr) })
	out := make([]*tx.ValidatorSetEntry, len(cands))
	for i, cd := range cands {
		out[i] = &tx.ValidatorSetEntry{ConsensusPubKey: cd.v.ConsensusPubKey, Power: Power(cd.v), Operator: cd.v.Operator}
	}
	return out, nil
}

// updateSet recomputes the active set and returns the updates that turn
// the stored set into it. An empty result is never sent: CometBFT with no
// chain validators halts forever, so the current set stays and an event
// says why. genesis returns the whole set (InitChain's list).
func updateSet(c *subnet.Ctx, genesis bool) (*Result, error) {
	res := &Result{}
	if err := c.KV.Delete(tx.ChainValidatorDirtyKey()); err != nil {
		return nil, err
	}
	next, err := ActiveSet(c)
	if err != nil {
		return nil, err
	}
	if len(next) == 0 {
		if genesis {
			return res, nil
		}
		res.Events = append(res.Events, abci.Event{Type: "chain_validator_set_kept", Attributes: []abci.EventAttribute{
			attr("reason", "no eligible chain validator; keeping the current set so the chain does not halt"),
		}})
		return res, nil
	}
	prev, err := CurrentSet(c.KV)
	if err != nil {
		return nil, err
	}
	// Merge two lists sorted by consensus address.
	old := prev.Entries
	addrOf := func(e *tx.ValidatorSetEntry) []byte { return tx.ConsensusAddress(e.ConsensusPubKey) }
	setPower := func(e *tx.ValidatorSetEntry, power uint64) error {
		op, err := address.FromBytes(e.Operator)
		if err != nil {
			return fmt.Errorf("%w: set entry operator %x", bank.ErrInvariant, e.Operator)
		}
		v, err := Get(c.KV, op)
		if err != nil || v == nil {
			return fmt.Errorf("%w: set entry %s without a record (%v)", bank.ErrInvariant, op, err)
		}
		v.Power = power
		return put(c.KV, v)
	}
	if power, ok := checkPower(next); !ok {
		return nil, fmt.Errorf("%w: total voting power %d too large for CometBFT", bank.ErrInvariant, power)
	}
	i, j := 0, 0
	for i < len(old) || j < len(next) {
		var cmp int
		switch {
		case i == len(old):
			cmp = 1
		case j == len(next):
			cmp = -1
		default:
			cmp = bytes.Compare(addrOf(old[i]), addrOf(next[j]))
		}
		switch {
		case cmp < 0: // left the set
			res.Updates = append(res.Updates, abci.Ed25519ValidatorUpdate(old[i].ConsensusPubKey, 0))
			if err := setPower(old[i], 0); err != nil {
				return nil, err
			}
			i++
		case cmp > 0: // joined
			res.Updates = append(res.Updates, abci.Ed25519ValidatorUpdate(next[j].ConsensusPubKey, int64(next[j].Power)))
			if err := setPower(next[j], next[j].Power); err != nil {
				return nil, err
			}
			j++
		default:
			if old[i].Power != next[j].Power {
				res.Updates = append(res.Updates, abci.Ed25519ValidatorUpdate(next[j].ConsensusPubKey, int64(next[j].Power)))
				if err := setPower(next[j], next[j].Power); err != nil {
					return nil, err
				}
			}
			i, j = i+1, j+1
		}
	}
	if err := setProto(c.KV, tx.ValidatorSetKey(), &tx.ValidatorSet{Entries: next}); err != nil {
		return nil, err
	}
	if len(res.Updates) > 0 {
		res.Events = append(res.Events, abci.Event{Type: "chain_validator_set", Attributes: []abci.EventAttribute{
			attr("members", strconv.Itoa(len(next))), attr("changes", strconv.Itoa(len(res.Updates))),
		}})
	}
	return res, nil
}

// maxTotalPower is CometBFT's bound on a set's total voting power.
const maxTotalPower = math.MaxInt64 / 8

func checkPower(set []*tx.ValidatorSetEntry) (uint64, bool) {
	var total uint64
	for _, e := range set {
		total += e.Power // each ≤ supply/Unit, far below 2^63
		if total > maxTotalPower {
			return total, false
		}
	}
	return total, true
}

func addrText(b []byte) string {
	a, err := address.FromBytes(b)
	if err != nil {
		return fmt.Sprintf("%x", b)
	}
	return a.String()
}
