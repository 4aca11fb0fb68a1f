package royalty

import (
	"fmt"
	"strconv"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
)

// Payer pays the royalty of a subnet's pinned model at its epoch; the
// chain hands it to the subnet module through subnet.Ctx.
type Payer struct{}

// PayRoyalty takes the pinned model's royalty out of base (settled revenue,
// or emission when the subnet makes emission royalty-bearing) and credits
// it: data_bps of it to the cited datasets by citation weight, the rest to
// the model's shareholders. Every split rounds down; what the datasets'
// rounding leaves goes to the model, so the parts always add up to the
// royalty taken. It returns the amount taken, which the caller removes from
// its own pool; supply.royalty_held grows by the same amount here.
//
// The work is O(1) in holders and O(citations) ≤ tx.MaxCitations in
// datasets: each pool's index moves, no holding is touched.
func (Payer) PayRoyalty(c *subnet.Ctx, sub *tx.Subnet, base uint64) (uint64, []abci.Event, error) {
	if sub.Params == nil || sub.Params.ModelId == "" || base == 0 {
		return 0, nil, nil
	}
	m, id, err := GetModel(c.KV, sub.Params.ModelId)
	if err != nil {
		// A pinned model is registered when it is pinned and is never
		// removed; a subnet pinning none pays none.
		return 0, nil, nil
	}
	royalty, err := agr.MulDiv(base, uint64(m.RoyaltyBps), 10_000)
	if err != nil || royalty == 0 {
		return 0, nil, err
	}
	data, err := agr.MulDiv(royalty, uint64(m.DataBps), 10_000)
	if err != nil {
		return 0, nil, err
	}
	stream := c.Params.RoyaltyStreamBlocks
	var weights, dataPaid uint64
	for _, ct := range m.Citations {
		weights += ct.Weight // checked at registration
	}
	for _, ct := range m.Citations {
		part, err := agr.MulDiv(data, ct.Weight, weights)
		if err != nil || part == 0 {
			if err != nil {
				return 0, nil, err
			}
			continue
		}
		d, err := GetDataset(c.KV, ct.Dataset)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: model %s cites %x: %v", bank.ErrInvariant, m.Id, ct.Dataset, err)
		}
		if err := d.Pool.Credit(c.Height, part, stream); err != nil {
			return 0, nil, err
		}
		if err := put(c.KV, tx.DatasetKey(ct.Dataset), d); err != nil {
			return 0, nil, err
		}
		dataPaid += part // Σ parts ≤ data
	}
	if err := m.Pool.Credit(c.Height, royalty-dataPaid, stream); err != nil {
		return 0, nil, err
	}
	m.DataPaid = agr.SaturatingAdd(m.DataPaid, dataPaid) // a statistic
	if err := put(c.KV, tx.ModelKey(id), m); err != nil {
		return 0, nil, err
	}
	if err := bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
		s.RoyaltyHeld, err = bank.Grow("supply royalty_held", s.RoyaltyHeld, royalty)
		return err
	}); err != nil {
		return 0, nil, err
	}
	return royalty, []abci.Event{{Type: "royalty", Attributes: []abci.EventAttribute{
		{Key: "netuid", Value: strconv.FormatUint(uint64(sub.Netuid), 10)},
		{Key: "model_id", Value: m.Id, Index: true},
		{Key: "amount", Value: strconv.FormatUint(royalty, 10)},
		{Key: "data", Value: strconv.FormatUint(dataPaid, 10)},
	}}}, nil
}
