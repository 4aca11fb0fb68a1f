// Package chainval is the state machine of chain validators: the CometBFT
// block producers, chosen by bonded AGR. It owns bonding, unbonding, the
// active set sent to CometBFT, and the penalties for double signing
// (evidence) and downtime (missed commit votes).
//
// It is chain state logic over chain/state and chain/bank; its public
// records and keys live in chain/tx so clients can read and prove them.
// Everything is deterministic: lists are kept sorted in state, nothing
// iterates a map, and amounts use checked arithmetic.
package chainval

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"math/bits"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
)

// Bounds on the parameters, checked at genesis.
const (
	// MaxActiveSet bounds max_chain_validators: every block's commit carries
	// one vote per member, and each costs the downtime bookkeeping.
	MaxActiveSet = 1000
	// MaxSignedBlocksWindow bounds the downtime window (a bit per block per
	// chain validator in state).
	MaxSignedBlocksWindow = 100_000
	// MaxUnbondingEntries per chain validator, so slashing one touches a
	// bounded number of entries.
	MaxUnbondingEntries = 16
)

// Errors a transaction can hit; the app maps them to result codes. The
// generic ones wrap chain/subnet's sentinels so they share their codes.
var (
	ErrNotFound     = fmt.Errorf("chain validator %w", subnet.ErrNotFound)
	ErrExists       = fmt.Errorf("chain validator %w", subnet.ErrExists)
	ErrUnauthorized = fmt.Errorf("chain validator: %w", subnet.ErrUnauthorized)
	ErrInvalid      = fmt.Errorf("chain validator: %w", subnet.ErrInvalid)
	ErrFull         = fmt.Errorf("chain validator: %w", subnet.ErrFull)
	// ErrJailed refuses an Unjail before the jail time is over.
	ErrJailed = errors.New("chain validator still jailed")
	// ErrTombstoned refuses anything that would bring a double signer back.
	ErrTombstoned = errors.New("chain validator tombstoned for double signing")
)

// Power is v's voting power: whole AGR bonded; a bootstrap validator has 1
// until it bonds more than that. Jailing is not reflected here.
func Power(v *tx.ChainValidator) uint64 {
	p := v.Bonded / agr.Unit
	if p == 0 && v.Bootstrap {
		return 1
	}
	return p
}

// Get reads the chain validator of operator (nil, nil: none).
func Get(kv state.KVReader, operator address.Address) (*tx.ChainValidator, error) {
	v := &tx.ChainValidator{}
	ok, err := getProto(kv, tx.ChainValidatorKey(operator), v)
	if err != nil || !ok {
		return nil, err
	}
	return v, nil
}

// ByConsensusAddress finds the chain validator whose consensus key has the
// 20-byte CometBFT address addr (nil, nil: unknown).
func ByConsensusAddress(kv state.KVReader, addr []byte) (*tx.ChainValidator, error) {
	if len(addr) != 20 {
		return nil, nil
	}
	op, err := kv.Get(tx.ConsensusIndexKey(addr))
	if err != nil {
		return nil, fmt.Errorf("read consensus index: %w", err)
	}
	if op == nil {
		return nil, nil
	}
	a, err := address.FromBytes(op)
	if err != nil {
		return nil, fmt.Errorf("%w: consensus index holds %x", bank.ErrInvariant, op)
	}
	return Get(kv, a)
}

// Operators lists every operator ever created, ascending.
func Operators(kv state.KVReader) ([]address.Address, error) {
	r := &tx.ChainValidatorRegistry{}
	if _, err := getProto(kv, tx.ChainValidatorRegistryKey(), r); err != nil {
		return nil, err
	}
	out := make([]address.Address, len(r.Operators))
	for i, b := range r.Operators {
		a, err := address.FromBytes(b)
		if err != nil {
			return nil, fmt.Errorf("%w: registry entry %x", bank.ErrInvariant, b)
		}
		out[i] = a
	}
	return out, nil
}

// All reads every chain validator, by operator address.
func All(kv state.KVReader) ([]*tx.ChainValidator, error) {
	ops, err := Operators(kv)
	if err != nil {
		return nil, err
	}
	out := make([]*tx.ChainValidator, 0, len(ops))
	for _, op := range ops {
		v, err := Get(kv, op)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, fmt.Errorf("%w: registered operator %s has no record", bank.ErrInvariant, op)
		}
		out = append(out, v)
	}
	return out, nil
}

// CurrentSet is the set last sent to CometBFT, by consensus address.
func CurrentSet(kv state.KVReader) (*tx.ValidatorSet, error) {
	s := &tx.ValidatorSet{}
	_, err := getProto(kv, tx.ValidatorSetKey(), s)
	return s, err
}

func put(kv state.KV, v *tx.ChainValidator) error {
	a, err := address.FromBytes(v.Operator)
	if err != nil {
		return fmt.Errorf("%w: chain validator operator %x", bank.ErrInvariant, v.Operator)
	}
	return setProto(kv, tx.ChainValidatorKey(a), v)
}

// markDirty asks the end of the block to recompute the active set.
func markDirty(kv state.KV) error { return kv.Set(tx.ChainValidatorDirtyKey(), []byte{1}) }

// GenesisEntry is a genesis chain validator, already verified by the caller.
type GenesisEntry struct {
	Operator        address.Address
	ConsensusPubKey []byte
	Moniker         string
	Bond            uint64
}

// InitGenesis enrols the genesis chain validators, moving each bond from
// the operator's balance to its stake, and returns the first active set.
// An empty set is an error: CometBFT could never produce a block.
func InitGenesis(c *subnet.Ctx, entries []GenesisEntry) (*Result, error) {
	for i, e := range entries {
		if err := create(c, e.Operator, e.ConsensusPubKey, e.Moniker, e.Bond, e.Bond == 0); err != nil {
			return nil, fmt.Errorf("genesis chain validator %d (%s): %w", i, e.Operator, err)
		}
	}
	res, err := updateSet(c, true)
	if err != nil {
		return nil, err
	}
	if len(res.Updates) == 0 {
		return nil, errors.New("genesis has no chain validator with voting power: the chain could never produce a block")
	}
	return res, nil
}

// Create makes operator a chain validator.
func Create(c *subnet.Ctx, operator address.Address, m *tx.MsgChainValidatorCreate) error {
	if !ed25519.Verify(m.ConsensusPubKey, tx.ChainValidatorProofBytes(c.ChainID, operator), m.ConsensusProof) {
		return fmt.Errorf("%w: the consensus key's proof does not verify for this operator and chain", ErrUnauthorized)
	}
	if m.Bond < c.Params.MinSelfBond || m.Bond == 0 {
		return fmt.Errorf("%w: bond %d below the minimum self bond %d", ErrInvalid, m.Bond, max(c.Params.MinSelfBond, 1))
	}
	return create(c, operator, m.ConsensusPubKey, m.Moniker, m.Bond, false)
}

func create(c *subnet.Ctx, operator address.Address, consPub []byte, moniker string, bond uint64, bootstrap bool) error {
	if len(consPub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: consensus key of %d bytes", ErrInvalid, len(consPub))
	}
	if err := tx.ValidateMoniker(moniker); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if v, err := Get(c.KV, operator); err != nil {
		return err
	} else if v != nil {
		return fmt.Errorf("%w: %s already operates one", ErrExists, operator)
	}
	consAddr := tx.ConsensusAddress(consPub)
	if used, err := c.KV.Get(tx.ConsensusIndexKey(consAddr)); err != nil {
		return fmt.Errorf("read consensus index: %w", err)
	} else if used != nil {
		return fmt.Errorf("%w: consensus key %X was already used", ErrExists, consAddr)
	}
	if bond > 0 {
		if err := bank.Debit(c.KV, operator, bond); err != nil {
			return err
		}
		if err := bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
			s.Bonded, err = bank.Grow("supply bonded", s.Bonded, bond)
			return err
		}); err != nil {
			return err
		}
	}
	v := &tx.ChainValidator{
		Operator: operator.Bytes(), ConsensusPubKey: slices.Clone(consPub), Moniker: moniker,
		Bonded: bond, Bootstrap: bootstrap, CreatedAt: c.Height,
	}
	if err := put(c.KV, v); err != nil {
		return err
	}
	if err := c.KV.Set(tx.ConsensusIndexKey(consAddr), operator.Bytes()); err != nil {
		return err
	}
	reg := &tx.ChainValidatorRegistry{}
	if _, err := getProto(c.KV, tx.ChainValidatorRegistryKey(), reg); err != nil {
		return err
	}
	i, _ := slices.BinarySearchFunc(reg.Operators, operator.Bytes(), bytes.Compare)
	reg.Operators = slices.Insert(reg.Operators, i, operator.Bytes())
	if err := setProto(c.KV, tx.ChainValidatorRegistryKey(), reg); err != nil {
		return err
	}
	return markDirty(c.KV)
}

func mustGet(c *subnet.Ctx, operator address.Address) (*tx.ChainValidator, error) {
	v, err := Get(c.KV, operator)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, fmt.Errorf("%w: %s operates none", ErrNotFound, operator)
	}
	return v, nil
}

// Bond adds amount from the operator's balance to its bond.
func Bond(c *subnet.Ctx, operator address.Address, amount uint64) error {
	v, err := mustGet(c, operator)
	if err != nil {
		return err
	}
	if v.Tombstoned {
		// Its bond could never leave jail; refusing keeps money from being stranded.
		return fmt.Errorf("%w: bonding is pointless", ErrTombstoned)
	}
	nb, err := agr.Add(v.Bonded, amount)
	if err != nil {
		return fmt.Errorf("bond of %s: %w", operator, err)
	}
	if nb < c.Params.MinSelfBond {
		return fmt.Errorf("%w: bond %d would stay below the minimum self bond %d", ErrInvalid, nb, c.Params.MinSelfBond)
	}
	if err := bank.Debit(c.KV, operator, amount); err != nil {
		return err
	}
	if err := bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
		s.Bonded, err = bank.Grow("supply bonded", s.Bonded, amount)
		return err
	}); err != nil {
		return err
	}
	v.Bonded = nb
	if err := put(c.KV, v); err != nil {
		return err
	}
	return markDirty(c.KV)
}

// Unbond moves amount of the bond into an unbonding entry that pays out
// unbonding_blocks from now. What remains must be zero or at least the
// minimum self bond.
func Unbond(c *subnet.Ctx, operator address.Address, amount uint64) error {
	v, err := mustGet(c, operator)
	if err != nil {
		return err
	}
	if amount > v.Bonded {
		return fmt.Errorf("%w: unbond %d, bonded %d", bank.ErrInsufficientFunds, amount, v.Bonded)
	}
	rest := v.Bonded - amount
	if rest != 0 && rest < c.Params.MinSelfBond {
		return fmt.Errorf("%w: %d would stay bonded, below the minimum self bond %d (unbond all or less)", ErrInvalid, rest, c.Params.MinSelfBond)
	}
	if len(v.Unbonding) >= MaxUnbondingEntries {
		return fmt.Errorf("%w: %d unbonding entries pending", ErrFull, len(v.Unbonding))
	}
	mature, err := agr.Add(c.Height, c.Params.UnbondingBlocks)
	if err != nil {
		return fmt.Errorf("unbonding height: %w", err)
	}
	if err := bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
		if s.Bonded, err = bank.Take("supply bonded", s.Bonded, amount); err != nil {
			return err
		}
		s.Unbonding, err = bank.Grow("supply unbonding", s.Unbonding, amount)
		return err
	}); err != nil {
		return err
	}
	v.Bonded = rest
	v.Unbonding = append(v.Unbonding, &tx.UnbondingEntry{Amount: amount, MatureHeight: mature})
	if err := put(c.KV, v); err != nil {
		return err
	}
	q := &tx.OperatorList{}
	if _, err := getProto(c.KV, tx.UnbondingQueueKey(mature), q); err != nil {
		return err
	}
	if i, found := slices.BinarySearchFunc(q.Operators, operator.Bytes(), bytes.Compare); !found {
		q.Operators = slices.Insert(q.Operators, i, operator.Bytes())
		if err := setProto(c.KV, tx.UnbondingQueueKey(mature), q); err != nil {
			return err
		}
	}
	return markDirty(c.KV)
}

// Edit renames the operator's chain validator.
func Edit(c *subnet.Ctx, operator address.Address, moniker string) error {
	v, err := mustGet(c, operator)
	if err != nil {
		return err
	}
	if err := tx.ValidateMoniker(moniker); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	v.Moniker = moniker
	return put(c.KV, v)
}

// Unjail returns a chain validator jailed for downtime to the candidates.
func Unjail(c *subnet.Ctx, operator address.Address) error {
	v, err := mustGet(c, operator)
	if err != nil {
		return err
	}
	switch {
	case v.Tombstoned:
		return fmt.Errorf("%w: it can never unjail", ErrTombstoned)
	case !v.Jailed:
		return fmt.Errorf("%w: not jailed", ErrInvalid)
	case c.Height < v.JailedUntil:
		return fmt.Errorf("%w until height %d (now %d)", ErrJailed, v.JailedUntil, c.Height)
	}
	v.Jailed, v.JailedUntil = false, 0
	if err := resetWindow(c.KV, v); err != nil {
		return err
	}
	if err := put(c.KV, v); err != nil {
		return err
	}
	return markDirty(c.KV)
}

func resetWindow(kv state.KV, v *tx.ChainValidator) error {
	v.Missed, v.WindowSeen = 0, 0
	a, err := address.FromBytes(v.Operator)
	if err != nil {
		return fmt.Errorf("%w: operator %x", bank.ErrInvariant, v.Operator)
	}
	return kv.Delete(tx.MissedBitsKey(a))
}

// mulBps is amount·bps/10000 rounded down: a slash never takes more than
// its share, so rounding can only leave a unit with its owner, never mint one.
func mulBps(amount uint64, bps uint32) uint64 {
	if bps >= 10_000 {
		return amount
	}
	hi, lo := bits.Mul64(amount, uint64(bps))
	q, _ := bits.Div64(hi, lo, 10_000) // hi < bps < 10000: no overflow
	return q
}

// slash burns bps of v's bond and of each of its unbonding entries, and
// returns the total burned. The caller writes v.
func slash(kv state.KV, v *tx.ChainValidator, bps uint32) (uint64, error) {
	fromBond := mulBps(v.Bonded, bps)
	var fromUnbonding uint64
	for _, e := range v.Unbonding {
		cut := mulBps(e.Amount, bps)
		e.Amount -= cut
		var err error
		if fromUnbonding, err = bank.Grow("slashed unbonding", fromUnbonding, cut); err != nil {
			return 0, fmt.Errorf("%w: %v", bank.ErrInvariant, err)
		}
	}
	v.Bonded -= fromBond
	total, err := bank.Grow("slash", fromBond, fromUnbonding)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", bank.ErrInvariant, err)
	}
	if v.Slashed, err = bank.Grow("chain validator slashed", v.Slashed, total); err != nil {
		return 0, fmt.Errorf("%w: %v", bank.ErrInvariant, err)
	}
	return total, bank.UpdateSupply(kv, func(s *tx.Supply) (err error) {
		if s.Bonded, err = bank.Take("supply bonded", s.Bonded, fromBond); err != nil {
			return err
		}
		if s.Unbonding, err = bank.Take("supply unbonding", s.Unbonding, fromUnbonding); err != nil {
			return err
		}
		if s.Burned, err = bank.Grow("supply burned", s.Burned, total); err != nil {
			return fmt.Errorf("%w: %v", bank.ErrInvariant, err)
		}
		if s.Slashed, err = bank.Grow("supply slashed", s.Slashed, total); err != nil {
			return fmt.Errorf("%w: %v", bank.ErrInvariant, err)
		}
		return nil
	})
}

func setProto(kv state.KV, key []byte, m proto.Message) error { return state.SetRecord(kv, key, m) }

// getProto reads key into m, reporting whether it was present; a record
// that does not decode is a broken invariant.
func getProto(kv state.KVReader, key []byte, m proto.Message) (bool, error) {
	found, err := state.GetRecord(kv, key, m)
	if errors.Is(err, state.ErrCorrupt) {
		return false, fmt.Errorf("%w: %v", bank.ErrInvariant, err)
	}
	return found, err
}
