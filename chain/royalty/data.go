package royalty

import (
	"encoding/hex"
	"fmt"
	"strconv"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/dataset"
)

// RegisterDataset registers a dataset by its Merkle root, crediting any
// contributors it names outright; the rest join by inclusion proofs.
func RegisterDataset(c *subnet.Ctx, owner address.Address, m *tx.MsgDataRegister) ([]abci.Event, error) {
	if raw, err := c.KV.Get(tx.DatasetKey(m.Root)); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fmt.Errorf("dataset %x: %w", m.Root, subnet.ErrExists)
	}
	reg, err := getRegistry(c.KV)
	if err != nil {
		return nil, err
	}
	if reg.Datasets, err = bank.Grow("dataset count", reg.Datasets, 1); err != nil {
		return nil, err
	}
	d := &tx.Dataset{
		Root: m.Root, Owner: owner[:], Name: m.Name, License: m.License, Urls: m.Urls,
		Size: m.Size, Files: m.Files, RegisteredAt: c.Height, Seq: reg.Datasets,
		Pool: &tx.SharePool{StreamFrom: c.Height, StreamEnd: c.Height},
	}
	for _, ct := range m.Contributors {
		who, err := address.FromBytes(ct.Address)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", subnet.ErrInvalid, err)
		}
		if err := credit(c, d, who, ct.Weight); err != nil {
			return nil, err
		}
	}
	if err := put(c.KV, tx.DatasetKey(m.Root), d); err != nil {
		return nil, err
	}
	if err := put(c.KV, tx.RoyaltyRegistryKey(), reg); err != nil {
		return nil, err
	}
	if err := c.KV.Set(tx.DatasetSeqKey(reg.Datasets), m.Root); err != nil {
		return nil, err
	}
	return []abci.Event{{Type: "data_register", Attributes: []abci.EventAttribute{
		{Key: "root", Value: hex.EncodeToString(m.Root), Index: true},
		{Key: "owner", Value: owner.String(), Index: true},
		{Key: "files", Value: strconv.FormatUint(m.Files, 10)},
	}}}, nil
}

// credit adds weight to a contributor's holding in d, settling it first
// so weight joins only the royalty released from now on. The caller
// writes d.
func credit(c *subnet.Ctx, d *tx.Dataset, who address.Address, weight uint64) error {
	if err := d.Pool.Advance(c.Height); err != nil {
		return err
	}
	key := tx.DatasetHoldingKey(d.Root, who)
	h, err := settled(c.KV, d.Pool, key)
	if err != nil {
		return err
	}
	if h.Shares == 0 {
		d.Contributors++ // ≤ total weight, which is checked below
	}
	if h.Shares, err = bank.Grow("contributor weight", h.Shares, weight); err != nil {
		return fmt.Errorf("%w: %v", subnet.ErrInvalid, err)
	}
	if d.Pool.Shares, err = bank.Grow("dataset weight", d.Pool.Shares, weight); err != nil {
		return fmt.Errorf("%w: %v", subnet.ErrInvalid, err)
	}
	return putHolding(c.KV, key, h)
}

// Contribute credits one manifest leaf's contributor, proved by an
// inclusion proof against the dataset's root at its registered size. Each
// leaf counts once; anyone may submit it, the weight always goes to the
// contributor the leaf names.
func Contribute(c *subnet.Ctx, m *tx.MsgDataContribute) ([]abci.Event, error) {
	d, err := GetDataset(c.KV, m.Root)
	if err != nil {
		return nil, err
	}
	if m.Index >= d.Files {
		return nil, fmt.Errorf("%w: leaf %d of a %d-file dataset", subnet.ErrInvalid, m.Index, d.Files)
	}
	leafKey := tx.DataLeafKey(m.Root, m.Index)
	if raw, err := c.KV.Get(leafKey); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fmt.Errorf("leaf %d of dataset %x: %w", m.Index, m.Root, subnet.ErrExists)
	}
	var root [32]byte
	copy(root[:], m.Root)
	if !dataset.Verify(root, dataset.LeafHash(m.Leaf), m.Index, d.Files, m.Proof) {
		return nil, fmt.Errorf("%w: the proof does not place this leaf at %d in dataset %x", subnet.ErrUnauthorized, m.Index, m.Root)
	}
	who, err := address.FromBytes(m.Leaf.Contributor)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", subnet.ErrInvalid, err)
	}
	if err := credit(c, d, who, m.Leaf.Weight); err != nil {
		return nil, err
	}
	if err := c.KV.Set(leafKey, []byte{1}); err != nil {
		return nil, err
	}
	if err := put(c.KV, tx.DatasetKey(m.Root), d); err != nil {
		return nil, err
	}
	return []abci.Event{{Type: "data_contribute", Attributes: []abci.EventAttribute{
		{Key: "root", Value: hex.EncodeToString(m.Root), Index: true},
		{Key: "contributor", Value: who.String(), Index: true},
		{Key: "index", Value: strconv.FormatUint(m.Index, 10)},
		{Key: "weight", Value: strconv.FormatUint(m.Leaf.Weight, 10)},
	}}}, nil
}
