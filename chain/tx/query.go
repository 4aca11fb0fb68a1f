package tx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/agoranet/agora/address"
)

// Query paths. Each resolves to one state key, returned as raw stored bytes so
// a client can check the value against the proof.
const (
	QueryAccount  = "/account/" // + bech32 address; value: Account (absent: zero account)
	QueryBalance  = "/balance/" // same key as /account/
	QuerySupply   = "/supply"   // value: Supply
	QueryEmission = "/emission" // same key as /supply (last_block_emission, pending_emission)
	QueryParams   = "/params"   // value: Params
	QueryStore    = "/store"    // request data: raw key
	QueryChannel  = "/channel/" // + channel id; value: Channel (absent: closed or never opened)
	// QueryNonce reads the mempool's pending view (+ bech32 address): the
	// account as it will be after the txs already accepted. Not provable.
	QueryNonce = "/nonce/"
	// QueryMetagraph (+ netuid) answers a Metagraph: the subnet and every
	// UID with its stake, read from one committed version. Aggregated, so not provable.
	QueryMetagraph = "/metagraph/"
	// QuerySubnets answers a SubnetList of every subnet record.
	QuerySubnets = "/subnets"
)

// QueryKey maps a provable query path (and data) to its state key.
func QueryKey(path string, data []byte) ([]byte, error) {
	switch {
	case strings.HasPrefix(path, QueryAccount), strings.HasPrefix(path, QueryBalance):
		s := path[strings.LastIndexByte(path, '/')+1:]
		addr, err := address.Parse(s)
		if err != nil {
			return nil, err
		}
		return AccountKey(addr), nil
	case path == QuerySupply, path == QueryEmission:
		return SupplyKey(), nil
	case path == QueryParams:
		return ParamsKey(), nil
	case strings.HasPrefix(path, QueryChannel):
		id, err := strconv.ParseUint(path[len(QueryChannel):], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("channel id %q: %w", path[len(QueryChannel):], err)
		}
		return ChannelKey(id), nil
	case path == QueryStore:
		if len(data) == 0 {
			return nil, errors.New("store query needs a key in data")
		}
		return data, nil
	default:
		return nil, fmt.Errorf("unknown query path %q", path)
	}
}

// State key prefixes of the records a client reads and proves. The chain's
// own packages keep the prefixes of private records (the chain id, weights,
// bonds, commits, indexes, counters) next to the code that writes them, in
// the same ranges: 0x01–0x0f accounts and singletons, 0x10–0x1f subnets,
// 0x20–0x2f channels. The bytes are consensus: they never change.
const (
	prefixAccount    = 0x01 // address → Account
	prefixParams     = 0x02 // → Params
	prefixSupply     = 0x03 // → Supply
	prefixSubnet     = 0x10 // netuid → Subnet
	prefixNeuron     = 0x12 // netuid, uid → Neuron
	prefixPool       = 0x18 // netuid, hotkey → StakePool
	prefixDelegation = 0x19 // netuid, hotkey, coldkey → shares (uint64 BE)
	prefixChannel    = 0x21 // channel id → Channel
)

// AccountKey is the state key of addr's account.
func AccountKey(addr address.Address) []byte {
	return append([]byte{prefixAccount}, addr[:]...)
}

// ParamsKey is the state key of the chain's parameters.
func ParamsKey() []byte { return []byte{prefixParams} }

// SupplyKey is the state key of the supply record.
func SupplyKey() []byte { return []byte{prefixSupply} }

// ChannelKey is the state key of a channel record.
func ChannelKey(id uint64) []byte { return binary.BigEndian.AppendUint64([]byte{prefixChannel}, id) }

// SubnetKey is the state key of a subnet record.
func SubnetKey(netuid uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixSubnet}, netuid)
}

// NeuronKey is the state key of a neuron record.
func NeuronKey(netuid uint32, uid uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint32([]byte{prefixNeuron}, netuid), uid)
}

// PoolKey is the state key of a hotkey's stake pool on a subnet.
func PoolKey(netuid uint32, hotkey address.Address) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{prefixPool}, netuid), hotkey[:]...)
}

// DelegationKey is the state key of a coldkey's shares in a pool.
func DelegationKey(netuid uint32, hotkey, coldkey address.Address) []byte {
	k := append(binary.BigEndian.AppendUint32([]byte{prefixDelegation}, netuid), hotkey[:]...)
	return append(k, coldkey[:]...)
}
