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
	// QueryChainValidator (+ bech32 operator address) answers the
	// ChainValidator record (absent: none). Provable.
	QueryChainValidator = "/chain-validator/"
	// QueryChainValidators answers a ChainValidatorList of every chain
	// validator, read from one committed version. Aggregated, so not
	// provable; prove single records with QueryChainValidator.
	QueryChainValidators = "/chain-validators"
	// QueryValidatorSet answers the ValidatorSet last sent to CometBFT. Provable.
	QueryValidatorSet = "/chain-validator-set"
	// QueryModel (+ model id) answers the Model record (absent: not
	// registered). Provable.
	QueryModel = "/model/"
	// QueryModelShares (+ model id + "/" + bech32 holder) answers the
	// ShareHolding (absent: none). Provable; with the Model record, Claimable
	// gives what the holder can claim.
	QueryModelShares = "/model-shares/"
	// QueryOffering (+ model id) answers the model's open Offering. Provable.
	QueryOffering = "/offering/"
	// QueryDataset (+ root in hex) answers the Dataset record. Provable.
	QueryDataset = "/dataset/"
	// QueryDatasetShares (+ root + "/" + bech32 contributor) answers the
	// contributor's ShareHolding. Provable.
	QueryDatasetShares = "/dataset-shares/"
	// QueryModels and QueryDatasets answer a ModelList and a DatasetList in
	// registration order, from one committed version. Aggregated, not
	// provable; prove single records with QueryModel and QueryDataset.
	QueryModels   = "/models"
	QueryDatasets = "/datasets"
)

// holderPath splits "<id>/<bech32>" after a query prefix.
func holderPath(rest string) (string, address.Address, error) {
	id, who, ok := strings.Cut(rest, "/")
	if !ok {
		return "", address.Address{}, fmt.Errorf("query %q needs <id>/<address>", rest)
	}
	a, err := address.Parse(who)
	return id, a, err
}

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
	case strings.HasPrefix(path, QueryChainValidator):
		addr, err := address.Parse(path[len(QueryChainValidator):])
		if err != nil {
			return nil, err
		}
		return ChainValidatorKey(addr), nil
	case path == QueryValidatorSet:
		return ValidatorSetKey(), nil
	case strings.HasPrefix(path, QueryChannel):
		id, err := strconv.ParseUint(path[len(QueryChannel):], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("channel id %q: %w", path[len(QueryChannel):], err)
		}
		return ChannelKey(id), nil
	case strings.HasPrefix(path, QueryModel):
		id, err := ModelIDBytes(path[len(QueryModel):])
		if err != nil {
			return nil, err
		}
		return ModelKey(id), nil
	case strings.HasPrefix(path, QueryModelShares):
		s, holder, err := holderPath(path[len(QueryModelShares):])
		if err != nil {
			return nil, err
		}
		id, err := ModelIDBytes(s)
		if err != nil {
			return nil, err
		}
		return ModelHoldingKey(id, holder), nil
	case strings.HasPrefix(path, QueryOffering):
		id, err := ModelIDBytes(path[len(QueryOffering):])
		if err != nil {
			return nil, err
		}
		return OfferingKey(id), nil
	case strings.HasPrefix(path, QueryDataset):
		root, err := ParseDatasetRoot(path[len(QueryDataset):])
		if err != nil {
			return nil, err
		}
		return DatasetKey(root), nil
	case strings.HasPrefix(path, QueryDatasetShares):
		s, holder, err := holderPath(path[len(QueryDatasetShares):])
		if err != nil {
			return nil, err
		}
		root, err := ParseDatasetRoot(s)
		if err != nil {
			return nil, err
		}
		return DatasetHoldingKey(root, holder), nil
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
// 0x20–0x2f channels, 0x30–0x3f chain validators, 0x40–0x4f models and
// data (royalty.go). The bytes are consensus: they never change.
const (
	prefixAccount    = 0x01 // address → Account
	prefixParams     = 0x02 // → Params
	prefixSupply     = 0x03 // → Supply
	prefixSubnet     = 0x10 // netuid → Subnet
	prefixNeuron     = 0x12 // netuid, uid → Neuron
	prefixWeights    = 0x15 // netuid, uid → WeightRow
	prefixPool       = 0x18 // netuid, hotkey → StakePool
	prefixDelegation = 0x19 // netuid, hotkey, coldkey → shares (uint64 BE)
	prefixChannel    = 0x21 // channel id → Channel
	// 0x30–0x3f chain validators.
	prefixChainValidator = 0x30 // operator → ChainValidator
	prefixConsensusIndex = 0x31 // consensus address (20 bytes) → operator
	prefixChainValReg    = 0x32 // → ChainValidatorRegistry
	prefixValidatorSet   = 0x33 // → ValidatorSet last sent to CometBFT
	prefixUnbondingQueue = 0x34 // height → OperatorList with entries maturing then
	prefixMissedBits     = 0x35 // operator → downtime window bit array
	prefixChainValDirty  = 0x36 // → marker: the active set must be recomputed
)

// ChainValidatorKey is the state key of an operator's chain validator.
func ChainValidatorKey(operator address.Address) []byte {
	return append([]byte{prefixChainValidator}, operator[:]...)
}

// ConsensusIndexKey maps a consensus address to its operator; never deleted,
// so a consensus key serves one chain validator ever.
func ConsensusIndexKey(consAddr []byte) []byte {
	return append([]byte{prefixConsensusIndex}, consAddr...)
}

// ChainValidatorRegistryKey is the state key of the list of operators.
func ChainValidatorRegistryKey() []byte { return []byte{prefixChainValReg} }

// ValidatorSetKey is the state key of the set last sent to CometBFT.
func ValidatorSetKey() []byte { return []byte{prefixValidatorSet} }

// UnbondingQueueKey is the state key of the operators with unbonding
// entries maturing at height.
func UnbondingQueueKey(height uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixUnbondingQueue}, height)
}

// MissedBitsKey is the state key of an operator's downtime window.
func MissedBitsKey(operator address.Address) []byte {
	return append([]byte{prefixMissedBits}, operator[:]...)
}

// ChainValidatorDirtyKey marks that the active set needs recomputing.
func ChainValidatorDirtyKey() []byte { return []byte{prefixChainValDirty} }

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

// WeightsKey is the state key of the WeightRow a UID last set (or
// revealed): read with the raw store query, it shows what a validator
// scored each miner.
func WeightsKey(netuid uint32, uid uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint32([]byte{prefixWeights}, netuid), uid)
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
