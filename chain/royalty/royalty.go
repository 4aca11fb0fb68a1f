// Package royalty makes models and datasets shared property on chain: the
// model registry and its transferable shares, initial model offerings, the
// dataset registry with contributors credited by Merkle inclusion proofs,
// and the royalty every subnet epoch pays the model it pins.
//
// Each model and dataset keeps a tx.SharePool: a royalty credit raises a
// cumulative per-share index (streamed in over royalty_stream_blocks), and a
// holder's earnings are settled lazily whenever its shares change or it
// claims. Paying an epoch's royalty therefore costs the same with ten
// holders or ten million.
//
// It is chain state logic: it imports chain/bank, chain/subnet (for its
// context and errors) and chain/tx, never the application or any service.
package royalty

import (
	"encoding/hex"
	"fmt"
	"strconv"

	abci "github.com/cometbft/cometbft/abci/types"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
)

func get(kv state.KVReader, key []byte, m proto.Message) (bool, error) {
	return state.GetRecord(kv, key, m)
}

func put(kv state.KV, key []byte, m proto.Message) error { return state.SetRecord(kv, key, m) }

// GetModel reads a registered model by id.
func GetModel(kv state.KVReader, modelID string) (*tx.Model, []byte, error) {
	id, err := tx.ModelIDBytes(modelID)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", subnet.ErrInvalid, err)
	}
	m := &tx.Model{}
	ok, err := get(kv, tx.ModelKey(id), m)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, fmt.Errorf("model %s: %w", modelID, subnet.ErrNotFound)
	}
	if m.Pool == nil {
		m.Pool = &tx.SharePool{}
	}
	return m, id, nil
}

// GetDataset reads a registered dataset by root.
func GetDataset(kv state.KVReader, root []byte) (*tx.Dataset, error) {
	d := &tx.Dataset{}
	ok, err := get(kv, tx.DatasetKey(root), d)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("dataset %x: %w", root, subnet.ErrNotFound)
	}
	if d.Pool == nil {
		d.Pool = &tx.SharePool{}
	}
	return d, nil
}

// getHolding reads a holding; a holder with nothing reads as a zero holding.
func getHolding(kv state.KVReader, key []byte) (*tx.ShareHolding, error) {
	h := &tx.ShareHolding{}
	_, err := get(kv, key, h)
	return h, err
}

// putHolding writes a holding, or removes it once it holds, owes and locks
// nothing (its claimed total is a statistic the events keep).
func putHolding(kv state.KV, key []byte, h *tx.ShareHolding) error {
	if h.Shares == 0 && h.Owed == 0 && h.Locked == 0 {
		return kv.Delete(key)
	}
	return put(kv, key, h)
}

func getRegistry(kv state.KVReader) (*tx.RoyaltyRegistry, error) {
	r := &tx.RoyaltyRegistry{}
	_, err := get(kv, tx.RoyaltyRegistryKey(), r)
	return r, err
}

// Models lists every model in registration order.
func Models(kv state.KVReader) ([]*tx.Model, error) {
	reg, err := getRegistry(kv)
	if err != nil {
		return nil, err
	}
	out := make([]*tx.Model, 0, reg.Models)
	for seq := uint64(1); seq <= reg.Models; seq++ {
		id, err := kv.Get(tx.ModelSeqKey(seq))
		if err != nil {
			return nil, err
		}
		m, _, err := GetModel(kv, string(id))
		if err != nil {
			return nil, fmt.Errorf("model #%d: %w", seq, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Datasets lists every dataset in registration order.
func Datasets(kv state.KVReader) ([]*tx.Dataset, error) {
	reg, err := getRegistry(kv)
	if err != nil {
		return nil, err
	}
	out := make([]*tx.Dataset, 0, reg.Datasets)
	for seq := uint64(1); seq <= reg.Datasets; seq++ {
		root, err := kv.Get(tx.DatasetSeqKey(seq))
		if err != nil {
			return nil, err
		}
		d, err := GetDataset(kv, root)
		if err != nil {
			return nil, fmt.Errorf("dataset #%d: %w", seq, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// RegisterModel registers a model and issues its whole share supply to the
// signer, its owner. Cited datasets must be registered.
func RegisterModel(c *subnet.Ctx, owner address.Address, m *tx.MsgModelRegister) ([]abci.Event, error) {
	id, err := tx.ModelIDBytes(m.ModelId)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", subnet.ErrInvalid, err)
	}
	if raw, err := c.KV.Get(tx.ModelKey(id)); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fmt.Errorf("model %s: %w", m.ModelId, subnet.ErrExists)
	}
	var weights uint64
	for _, ct := range m.Citations {
		if _, err := GetDataset(c.KV, ct.Dataset); err != nil {
			return nil, fmt.Errorf("citation: %w", err)
		}
		if weights, err = bank.Grow("citation weights", weights, ct.Weight); err != nil {
			return nil, fmt.Errorf("%w: %v", subnet.ErrInvalid, err)
		}
	}
	reg, err := getRegistry(c.KV)
	if err != nil {
		return nil, err
	}
	if reg.Models, err = bank.Grow("model count", reg.Models, 1); err != nil {
		return nil, err
	}
	model := &tx.Model{
		Id: m.ModelId, Owner: owner[:], Name: m.Name, License: m.License, Urls: m.Urls,
		RoyaltyBps: m.RoyaltyBps, DataBps: m.DataBps, Citations: m.Citations,
		RegisteredAt: c.Height, Seq: reg.Models,
		Pool: &tx.SharePool{Shares: m.Shares, StreamFrom: c.Height, StreamEnd: c.Height},
	}
	for _, w := range []struct {
		key []byte
		m   proto.Message
	}{{tx.ModelKey(id), model}, {tx.ModelHoldingKey(id, owner), &tx.ShareHolding{Shares: m.Shares}}, {tx.RoyaltyRegistryKey(), reg}} {
		if err := put(c.KV, w.key, w.m); err != nil {
			return nil, err
		}
	}
	if err := c.KV.Set(tx.ModelSeqKey(reg.Models), []byte(m.ModelId)); err != nil {
		return nil, err
	}
	return []abci.Event{{Type: "model_register", Attributes: []abci.EventAttribute{
		{Key: "model_id", Value: m.ModelId, Index: true},
		{Key: "owner", Value: owner.String(), Index: true},
		{Key: "shares", Value: strconv.FormatUint(m.Shares, 10)},
		{Key: "royalty_bps", Value: strconv.FormatUint(uint64(m.RoyaltyBps), 10)},
	}}}, nil
}

// UpdateModel replaces a model's name, license and URLs (owner only). The
// royalty terms, shares and citations stay as registered.
func UpdateModel(c *subnet.Ctx, signer address.Address, u *tx.MsgModelUpdate) error {
	m, id, err := GetModel(c.KV, u.ModelId)
	if err != nil {
		return err
	}
	if owner, _ := address.FromBytes(m.Owner); owner != signer {
		return fmt.Errorf("%w: only model %s's owner may update it", subnet.ErrUnauthorized, u.ModelId)
	}
	m.Name, m.License, m.Urls = u.Name, u.License, u.Urls
	return put(c.KV, tx.ModelKey(id), m)
}

// TransferShares moves unlocked shares of a model between holders. The pool
// is brought to this block and both holdings settled first, so what the
// shares earned until now stays with the sender.
func TransferShares(c *subnet.Ctx, from address.Address, t *tx.MsgModelSharesTransfer) ([]abci.Event, error) {
	to, err := address.FromBytes(t.To)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", subnet.ErrInvalid, err)
	}
	if to == from {
		return nil, fmt.Errorf("%w: a transfer of shares to oneself", subnet.ErrInvalid)
	}
	m, id, err := GetModel(c.KV, t.ModelId)
	if err != nil {
		return nil, err
	}
	if err := moveShares(c, m, id, from, to, t.Shares, false); err != nil {
		return nil, err
	}
	if err := put(c.KV, tx.ModelKey(id), m); err != nil {
		return nil, err
	}
	return []abci.Event{{Type: "model_shares_transfer", Attributes: []abci.EventAttribute{
		{Key: "model_id", Value: t.ModelId, Index: true},
		{Key: "from", Value: from.String(), Index: true},
		{Key: "to", Value: to.String(), Index: true},
		{Key: "shares", Value: strconv.FormatUint(t.Shares, 10)},
	}}}, nil
}

// moveShares settles both holdings at the current height and moves n
// shares; fromLocked takes them from the sender's locked shares (an
// offering delivering what it sold) instead of its free ones. The caller
// writes the model record.
func moveShares(c *subnet.Ctx, m *tx.Model, id []byte, from, to address.Address, n uint64, fromLocked bool) error {
	if err := m.Pool.Advance(c.Height); err != nil {
		return err
	}
	src, err := settled(c.KV, m.Pool, tx.ModelHoldingKey(id, from))
	if err != nil {
		return err
	}
	dst, err := settled(c.KV, m.Pool, tx.ModelHoldingKey(id, to))
	if err != nil {
		return err
	}
	free := src.Shares - min(src.Locked, src.Shares)
	if fromLocked {
		if n > src.Locked || n > src.Shares {
			return fmt.Errorf("%w: %s has %d locked shares of model %s, delivering %d", bank.ErrInvariant, from, src.Locked, m.Id, n)
		}
		src.Locked -= n
	} else if n > free {
		return fmt.Errorf("%w: %s has %d transferable shares of model %s (%d on offer), not %d",
			bank.ErrInsufficientFunds, from, free, m.Id, src.Locked, n)
	}
	src.Shares -= n
	if dst.Shares, err = bank.Grow("model shares", dst.Shares, n); err != nil {
		return err
	}
	if err := putHolding(c.KV, tx.ModelHoldingKey(id, from), src); err != nil {
		return err
	}
	return putHolding(c.KV, tx.ModelHoldingKey(id, to), dst)
}

// settled reads a holding and settles it against a pool already advanced
// to the current height.
func settled(kv state.KVReader, p *tx.SharePool, key []byte) (*tx.ShareHolding, error) {
	h, err := getHolding(kv, key)
	if err != nil {
		return nil, err
	}
	if err := p.Settle(h); err != nil {
		return nil, fmt.Errorf("%w: %v", bank.ErrInvariant, err)
	}
	return h, nil
}

// claim pays holder everything it has earned from a pool, advancing the
// pool to this block. The caller writes the pool's record.
func claim(c *subnet.Ctx, p *tx.SharePool, key []byte, holder address.Address) (uint64, error) {
	if err := p.Advance(c.Height); err != nil {
		return 0, err
	}
	h, err := settled(c.KV, p, key)
	if err != nil {
		return 0, err
	}
	amount := h.Owed
	if amount == 0 {
		return 0, fmt.Errorf("%w: %s has no royalty to claim", subnet.ErrInvalid, holder)
	}
	// held covers every holder's settled earnings: each settlement rounds
	// down and the index never steps past what was released.
	if p.Held, err = bank.Take("royalty pool", p.Held, amount); err != nil {
		return 0, err
	}
	p.Claimed, h.Owed = p.Claimed+amount, 0 // Claimed ≤ Earned, a saturating statistic
	h.Claimed += amount
	if err := putHolding(c.KV, key, h); err != nil {
		return 0, err
	}
	if err := bank.Credit(c.KV, holder, amount); err != nil {
		return 0, err
	}
	return amount, bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
		s.RoyaltyHeld, err = bank.Take("supply royalty_held", s.RoyaltyHeld, amount)
		return err
	})
}

func claimEvent(kind, id string, holder address.Address, amount uint64) abci.Event {
	return abci.Event{Type: "royalty_claim", Attributes: []abci.EventAttribute{
		{Key: "kind", Value: kind},
		{Key: "id", Value: id, Index: true},
		{Key: "holder", Value: holder.String(), Index: true},
		{Key: "amount", Value: strconv.FormatUint(amount, 10)},
	}}
}

// ClaimModel pays the signer its royalty from a model.
func ClaimModel(c *subnet.Ctx, holder address.Address, modelID string) ([]abci.Event, error) {
	m, id, err := GetModel(c.KV, modelID)
	if err != nil {
		return nil, err
	}
	amount, err := claim(c, m.Pool, tx.ModelHoldingKey(id, holder), holder)
	if err != nil {
		return nil, err
	}
	if err := put(c.KV, tx.ModelKey(id), m); err != nil {
		return nil, err
	}
	return []abci.Event{claimEvent("model", modelID, holder, amount)}, nil
}

// ClaimDataset pays the signer its royalty from a dataset.
func ClaimDataset(c *subnet.Ctx, holder address.Address, root []byte) ([]abci.Event, error) {
	d, err := GetDataset(c.KV, root)
	if err != nil {
		return nil, err
	}
	amount, err := claim(c, d.Pool, tx.DatasetHoldingKey(root, holder), holder)
	if err != nil {
		return nil, err
	}
	if err := put(c.KV, tx.DatasetKey(root), d); err != nil {
		return nil, err
	}
	return []abci.Event{claimEvent("dataset", hex.EncodeToString(root), holder, amount)}, nil
}
