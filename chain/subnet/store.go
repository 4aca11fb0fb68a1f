// Package subnet is the incentive machine: subnets, their neurons (UIDs),
// stake and delegation, weights with commit-reveal, and the per-tempo Yuma
// Consensus epoch that pays miners and validators.
//
// Like the rest of chain/, it is deterministic: integer math, sorted
// iteration, no clock, no goroutines. It imports chain/state, chain/bank,
// chain/tx and yuma, never the application (chain) or any network or
// service code; the keys of the records clients prove come from chain/tx.
package subnet

import (
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/tx"
)

// State key prefixes of the subnet records only the chain reads. Subnets
// (0x10), neurons (0x12), stake pools (0x18) and delegations (0x19) are read
// and proven by clients, so their keys are built by chain/tx.
const (
	prefixRegistry = 0x11 // → SubnetRegistry
	prefixUIDIndex = 0x13 // netuid, hotkey → uid
	prefixHotkey   = 0x14 // hotkey → Hotkey
	prefixBonds    = 0x16 // netuid, uid → BondRow
	prefixCommit   = 0x17 // netuid, hotkey → WeightCommit
	prefixOldest   = 0x1a // netuid → oldest registered_at among UIDs ≥ 1 (uint64 BE)
)

func key(prefix byte, parts ...[]byte) []byte {
	k := []byte{prefix}
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func subnetKey(netuid uint32) []byte             { return tx.SubnetKey(netuid) }
func registryKey() []byte                        { return []byte{prefixRegistry} }
func neuronKey(netuid uint32, uid uint16) []byte { return tx.NeuronKey(netuid, uid) }
func uidIndexKey(netuid uint32, hotkey address.Address) []byte {
	return key(prefixUIDIndex, u32(netuid), hotkey[:])
}
func hotkeyKey(hotkey address.Address) []byte     { return key(prefixHotkey, hotkey[:]) }
func weightsKey(netuid uint32, uid uint16) []byte { return tx.WeightsKey(netuid, uid) }
func bondsKey(netuid uint32, uid uint16) []byte   { return key(prefixBonds, u32(netuid), u16(uid)) }
func commitKey(netuid uint32, hotkey address.Address) []byte {
	return key(prefixCommit, u32(netuid), hotkey[:])
}
func poolKey(netuid uint32, hotkey address.Address) []byte { return tx.PoolKey(netuid, hotkey) }
func delegationKey(netuid uint32, hotkey, coldkey address.Address) []byte {
	return tx.DelegationKey(netuid, hotkey, coldkey)
}

// get and put are the module's names for the chain's record helpers.
func get(kv state.KVReader, k []byte, m proto.Message) (bool, error) {
	return state.GetRecord(kv, k, m)
}

func put(kv state.KV, k []byte, m proto.Message) error { return state.SetRecord(kv, k, m) }

// Errors callers branch on (the app maps them to ABCI codes).
var (
	ErrNotFound     = errors.New("not found")
	ErrUnauthorized = errors.New("unauthorized")
	ErrInvalid      = errors.New("invalid")
	ErrPriceMoved   = errors.New("price above the stated maximum")
	ErrFull         = errors.New("full")
	ErrRateLimited  = errors.New("rate limited")
	ErrExists       = errors.New("already exists")
	ErrWindow       = errors.New("outside the reveal window")
)

// GetSubnet reads a subnet.
func GetSubnet(kv state.KVReader, netuid uint32) (*tx.Subnet, error) {
	s := &tx.Subnet{}
	ok, err := get(kv, subnetKey(netuid), s)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("subnet %d: %w", netuid, ErrNotFound)
	}
	return s, nil
}

func putSubnet(kv state.KV, s *tx.Subnet) error { return put(kv, subnetKey(s.Netuid), s) }

// GetRegistry reads the chain-wide subnet counters.
func GetRegistry(kv state.KVReader) (*tx.SubnetRegistry, error) {
	r := &tx.SubnetRegistry{}
	if _, err := get(kv, registryKey(), r); err != nil {
		return nil, err
	}
	return r, nil
}

// GetNeuron reads a UID of a subnet.
func GetNeuron(kv state.KVReader, netuid uint32, uid uint16) (*tx.Neuron, error) {
	n := &tx.Neuron{}
	ok, err := get(kv, neuronKey(netuid, uid), n)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("subnet %d uid %d: %w", netuid, uid, ErrNotFound)
	}
	return n, nil
}

// UIDOf finds the UID of hotkey on a subnet.
func UIDOf(kv state.KVReader, netuid uint32, hotkey address.Address) (uint16, error) {
	raw, err := kv.Get(uidIndexKey(netuid, hotkey))
	if err != nil {
		return 0, err
	}
	if len(raw) != 2 {
		return 0, fmt.Errorf("hotkey %s on subnet %d: %w", hotkey, netuid, ErrNotFound)
	}
	return binary.BigEndian.Uint16(raw), nil
}

func getHotkey(kv state.KVReader, hotkey address.Address) (*tx.Hotkey, bool, error) {
	h := &tx.Hotkey{}
	ok, err := get(kv, hotkeyKey(hotkey), h)
	return h, ok, err
}

// GetPool reads a hotkey's stake pool on a subnet (zero if none).
func GetPool(kv state.KVReader, netuid uint32, hotkey address.Address) (*tx.StakePool, error) {
	p := &tx.StakePool{}
	_, err := get(kv, poolKey(netuid, hotkey), p)
	return p, err
}

// GetShares reads a coldkey's shares of a hotkey's pool.
func GetShares(kv state.KVReader, netuid uint32, hotkey, coldkey address.Address) (uint64, error) {
	raw, err := kv.Get(delegationKey(netuid, hotkey, coldkey))
	if err != nil || len(raw) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(raw), nil
}

func setShares(kv state.KV, netuid uint32, hotkey, coldkey address.Address, shares uint64) error {
	if shares == 0 {
		return kv.Delete(delegationKey(netuid, hotkey, coldkey))
	}
	return kv.Set(delegationKey(netuid, hotkey, coldkey), binary.BigEndian.AppendUint64(nil, shares))
}

func getWeights(kv state.KVReader, netuid uint32, uid uint16) (*tx.WeightRow, error) {
	w := &tx.WeightRow{}
	_, err := get(kv, weightsKey(netuid, uid), w)
	return w, err
}

func getBonds(kv state.KVReader, netuid uint32, uid uint16) (*tx.BondRow, error) {
	b := &tx.BondRow{}
	_, err := get(kv, bondsKey(netuid, uid), b)
	return b, err
}

// addrOf reads an address this module itself stored (always 20 bytes).
func addrOf(b []byte) address.Address {
	a, _ := address.FromBytes(b)
	return a
}

func oldestKey(netuid uint32) []byte { return key(prefixOldest, u32(netuid)) }

// oldestRegistration reads the earliest registered_at among a subnet's UIDs
// other than the owner's; ok is false for a subnet that never tracked it.
func oldestRegistration(kv state.KVReader, netuid uint32) (uint64, bool, error) {
	raw, err := kv.Get(oldestKey(netuid))
	if err != nil || len(raw) != 8 {
		return 0, false, err
	}
	return binary.BigEndian.Uint64(raw), true, nil
}

func setOldestRegistration(kv state.KV, netuid uint32, height uint64) error {
	return kv.Set(oldestKey(netuid), binary.BigEndian.AppendUint64(nil, height))
}
