package subnet

import (
	"encoding/binary"
	"fmt"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/tx"
)

// RegisterNeuron burns the registration price from the coldkey and gives the
// hotkey a UID, replacing the weakest UID outside immunity when the subnet is full.
//
// Everything that can refuse cheaply (proof, duplicate, max_burn, a balance
// short of the burn, a full subnet whose every UID is immune) refuses before
// the scan over every UID that picks the one to replace.
func RegisterNeuron(c *Ctx, coldkey address.Address, m *tx.MsgNeuronRegister) (uint16, error) {
	sub, err := GetSubnet(c.KV, m.Netuid)
	if err != nil {
		return 0, err
	}
	if !m.Hotkey.Verify(c.ChainID, m.Netuid, coldkey) {
		return 0, fmt.Errorf("%w: hotkey proof does not verify", ErrUnauthorized)
	}
	hotkey := address.FromPubKey(m.Hotkey.PubKey)
	if _, err := UIDOf(c.KV, m.Netuid, hotkey); err == nil {
		return 0, fmt.Errorf("%w: hotkey %s is already registered on subnet %d", ErrExists, hotkey, m.Netuid)
	}
	price := sub.BurnAt(c.Height)
	if m.MaxBurn != 0 && price > m.MaxBurn {
		return 0, fmt.Errorf("%w: burn %d, max_burn %d", ErrPriceMoved, price, m.MaxBurn)
	}
	if err := bindHotkey(c, hotkey, coldkey); err != nil {
		return 0, err
	}
	if err := bank.Debit(c.KV, coldkey, price); err != nil {
		return 0, err
	}
	if err := bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
		s.Burned, err = bank.Grow("supply burned", s.Burned, price)
		return err
	}); err != nil {
		return 0, err
	}
	// Each registration raises the price by 26%, so bots pay more and more.
	sub.Burn = min(max(mulDiv(price, 126, 100), sub.Params.MinBurn), sub.Params.MaxBurn)
	sub.BurnUpdatedAt = c.Height
	uid, err := addNeuron(c, sub, hotkey, coldkey)
	if err != nil {
		return 0, err
	}
	return uid, putSubnet(c.KV, sub)
}

// addNeuron gives hotkey the next free UID, or prunes one when full. The
// caller saves sub.
func addNeuron(c *Ctx, sub *tx.Subnet, hotkey, coldkey address.Address) (uint16, error) {
	var uid uint16
	if sub.N < sub.Params.MaxUids {
		uid = uint16(sub.N)
		sub.N++
		if uid == 1 {
			// Heights only grow, so the first UID after the owner's stays
			// the oldest until a replacement rescans. (A subnet from before
			// this record existed is untracked until its first replacement.)
			if err := setOldestRegistration(c.KV, sub.Netuid, c.Height); err != nil {
				return 0, err
			}
		}
	} else {
		// Every UID is immune exactly when the oldest registration is:
		// refuse without reading them all.
		if oldest, ok, err := oldestRegistration(c.KV, sub.Netuid); err != nil {
			return 0, err
		} else if ok && before(c.Height, oldest, sub.Params.ImmunityPeriod) {
			return 0, fmt.Errorf("%w: subnet %d has %d UIDs, all immune until block %d", ErrFull, sub.Netuid, sub.N, agr.SaturatingAdd(oldest, sub.Params.ImmunityPeriod))
		}
		victim, rest, err := pruneCandidate(c, sub)
		if err != nil {
			return 0, err
		}
		if err := setOldestRegistration(c.KV, sub.Netuid, min(rest, c.Height)); err != nil {
			return 0, err
		}
		old, err := GetNeuron(c.KV, sub.Netuid, victim)
		if err != nil {
			return 0, err
		}
		if err := wipeUID(c, sub.Netuid, victim, addrOf(old.Hotkey)); err != nil {
			return 0, err
		}
		uid = victim
	}
	n := &tx.Neuron{Hotkey: hotkey[:], Coldkey: coldkey[:], RegisteredAt: c.Height, LastUpdate: c.Height}
	if err := put(c.KV, neuronKey(sub.Netuid, uid), n); err != nil {
		return 0, err
	}
	return uid, c.KV.Set(uidIndexKey(sub.Netuid, hotkey), binary.BigEndian.AppendUint16(nil, uid))
}

// pruneCandidate picks the UID with the lowest emission outside immunity;
// ties go to the oldest registration, then the lowest UID. UID 0, the owner's
// hotkey, is never pruned. It also returns the oldest registration among
// the UIDs that stay (MaxUint64 if none).
func pruneCandidate(c *Ctx, sub *tx.Subnet) (uint16, uint64, error) {
	best, found := uint16(0), false
	var bestN *tx.Neuron
	regs := make([]uint64, sub.N)
	for uid := uint16(1); uint32(uid) < sub.N; uid++ {
		n, err := GetNeuron(c.KV, sub.Netuid, uid)
		if err != nil {
			return 0, 0, err
		}
		regs[uid] = n.RegisteredAt
		if before(c.Height, n.RegisteredAt, sub.Params.ImmunityPeriod) {
			continue
		}
		if !found || n.Emission < bestN.Emission || (n.Emission == bestN.Emission && n.RegisteredAt < bestN.RegisteredAt) {
			best, bestN, found = uid, n, true
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("%w: subnet %d has %d UIDs, all immune", ErrFull, sub.Netuid, sub.N)
	}
	rest := ^uint64(0)
	for uid := 1; uid < len(regs); uid++ {
		if uid != int(best) {
			rest = min(rest, regs[uid])
		}
	}
	return best, rest, nil
}

// wipeUID forgets a UID's weights, bonds, pending commit and hotkey index.
// Stake pools stay: delegators can always withdraw.
func wipeUID(c *Ctx, netuid uint32, uid uint16, hotkey address.Address) error {
	for _, k := range [][]byte{weightsKey(netuid, uid), bondsKey(netuid, uid), commitKey(netuid, hotkey), uidIndexKey(netuid, hotkey)} {
		if err := c.KV.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Serve publishes a neuron's endpoint, encryption key and served model.
func Serve(c *Ctx, hotkey address.Address, m *tx.MsgNeuronServe) error {
	sub, err := GetSubnet(c.KV, m.Netuid)
	if err != nil {
		return err
	}
	uid, err := UIDOf(c.KV, m.Netuid, hotkey)
	if err != nil {
		return err
	}
	n, err := GetNeuron(c.KV, m.Netuid, uid)
	if err != nil {
		return err
	}
	if n.ServedAt != 0 && before(c.Height, n.ServedAt, sub.Params.ServingRateLimit) {
		return fmt.Errorf("%w: serve again after block %d", ErrRateLimited, agr.SaturatingAdd(n.ServedAt, sub.Params.ServingRateLimit))
	}
	n.Endpoint, n.X25519PubKey, n.ModelId, n.ServedAt = m.Endpoint, m.X25519PubKey, m.ModelId, c.Height
	return put(c.KV, neuronKey(m.Netuid, uid), n)
}
