package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/tx"
)

// ErrNoModel, ErrNoDataset and ErrNoOffering are returned for records that
// do not exist (a proven absence when asked to prove).
var (
	ErrNoModel    = errors.New("no such model")
	ErrNoDataset  = errors.New("no such dataset")
	ErrNoOffering = errors.New("no open offering")
)

// record reads one provable record at height (0: latest) into m, returning
// the height it was read at and whether it exists.
func (c *Client) record(ctx context.Context, path string, height int64, prove bool, m proto.Message) (int64, bool, error) {
	raw, _, h, err := c.Query(ctx, path, nil, height, prove)
	if err != nil {
		return 0, false, err
	}
	if raw == nil {
		return h, false, nil
	}
	if err := proto.Unmarshal(raw, m); err != nil {
		return 0, false, fmt.Errorf("decode %s: %w", path, err)
	}
	return h, true, nil
}

// Model reads a registered model.
func (c *Client) Model(ctx context.Context, id string, prove bool) (*tx.Model, error) {
	m := &tx.Model{}
	_, ok, err := c.record(ctx, tx.QueryModel+id, 0, prove, m)
	if err == nil && !ok {
		err = fmt.Errorf("model %s: %w", id, ErrNoModel)
	}
	return m, err
}

// Dataset reads a registered dataset.
func (c *Client) Dataset(ctx context.Context, root []byte, prove bool) (*tx.Dataset, error) {
	d := &tx.Dataset{}
	_, ok, err := c.record(ctx, tx.QueryDataset+hex.EncodeToString(root), 0, prove, d)
	if err == nil && !ok {
		err = fmt.Errorf("dataset %x: %w", root, ErrNoDataset)
	}
	return d, err
}

// Offering reads a model's open offering.
func (c *Client) Offering(ctx context.Context, modelID string, prove bool) (*tx.Offering, error) {
	o := &tx.Offering{}
	_, ok, err := c.record(ctx, tx.QueryOffering+modelID, 0, prove, o)
	if err == nil && !ok {
		err = fmt.Errorf("model %s: %w", modelID, ErrNoOffering)
	}
	return o, err
}

// Position is a holder's stake in a model or dataset at one height.
type Position struct {
	Height    int64
	Holding   *tx.ShareHolding // zero when the address holds nothing
	Pool      *tx.SharePool    // the model's or dataset's pool at the same height
	Claimable uint64           // what a claim would pay at that height
}

// ModelPosition reads holder's shares in a model and what it can claim,
// both records from one height (and proven, when asked).
func (c *Client) ModelPosition(ctx context.Context, id string, holder address.Address, prove bool) (*Position, error) {
	m := &tx.Model{}
	h, ok, err := c.record(ctx, tx.QueryModel+id, 0, prove, m)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("model %s: %w", id, ErrNoModel)
	}
	return c.position(ctx, tx.QueryModelShares+id+"/"+holder.String(), h, m.Pool, prove)
}

// DatasetPosition reads a contributor's weight in a dataset and what it can claim.
func (c *Client) DatasetPosition(ctx context.Context, root []byte, holder address.Address, prove bool) (*Position, error) {
	d := &tx.Dataset{}
	h, ok, err := c.record(ctx, tx.QueryDataset+hex.EncodeToString(root), 0, prove, d)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("dataset %x: %w", root, ErrNoDataset)
	}
	return c.position(ctx, tx.QueryDatasetShares+hex.EncodeToString(root)+"/"+holder.String(), h, d.Pool, prove)
}

func (c *Client) position(ctx context.Context, path string, height int64, pool *tx.SharePool, prove bool) (*Position, error) {
	hold := &tx.ShareHolding{}
	if _, _, err := c.record(ctx, path, height, prove, hold); err != nil {
		return nil, err
	}
	if pool == nil {
		pool = &tx.SharePool{}
	}
	claim, err := tx.Claimable(pool, hold, uint64(height))
	if err != nil {
		return nil, err
	}
	return &Position{Height: height, Holding: hold, Pool: pool, Claimable: claim}, nil
}

// Models lists every registered model, in registration order, from one height.
func (c *Client) Models(ctx context.Context) (*tx.ModelList, error) {
	raw, _, h, err := c.Query(ctx, tx.QueryModels, nil, 0, false)
	if err != nil {
		return nil, err
	}
	l := &tx.ModelList{}
	if err := proto.Unmarshal(raw, l); err != nil {
		return nil, fmt.Errorf("decode model list: %w", err)
	}
	if l.Height == 0 {
		l.Height = h
	}
	return l, nil
}

// Datasets lists every registered dataset, in registration order, from one height.
func (c *Client) Datasets(ctx context.Context) (*tx.DatasetList, error) {
	raw, _, h, err := c.Query(ctx, tx.QueryDatasets, nil, 0, false)
	if err != nil {
		return nil, err
	}
	l := &tx.DatasetList{}
	if err := proto.Unmarshal(raw, l); err != nil {
		return nil, fmt.Errorf("decode dataset list: %w", err)
	}
	if l.Height == 0 {
		l.Height = h
	}
	return l, nil
}
