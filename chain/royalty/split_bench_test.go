package royalty

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
)

// BenchmarkEpochRoyaltySplit measures paying one epoch's royalty to a
// model with 10 and with 10,000 shareholders, and to its two cited
// datasets. The cost must not grow with holders: it moves each pool's
// index and touches no holding.
func BenchmarkEpochRoyaltySplit(b *testing.B) {
	for _, holders := range []int{10, 10_000} {
		b.Run(fmt.Sprintf("holders=%d", holders), func(b *testing.B) {
			store, err := state.OpenMem(state.DefaultOptions())
			if err != nil {
				b.Fatal(err)
			}
			kv := store.NewBlock()
			params := &tx.Params{RoyaltyStreamBlocks: 100}
			c := &subnet.Ctx{KV: kv, Height: 1, Params: params}
			if err := bank.SetSupply(kv, &tx.Supply{}); err != nil {
				b.Fatal(err)
			}
			owner := address.Address{1}
			var cites []*tx.Citation
			for d := range 2 {
				root := make([]byte, 32)
				root[0] = byte(d + 1)
				if _, err := RegisterDataset(c, owner, &tx.MsgDataRegister{Root: root, Files: 1,
					Contributors: []*tx.Contributor{{Address: owner[:], Weight: 1}}}); err != nil {
					b.Fatal(err)
				}
				cites = append(cites, &tx.Citation{Dataset: root, Weight: 1})
			}
			const modelID = "00000000000000000000000000000000000000000000000000000000000000aa"
			if _, err := RegisterModel(c, owner, &tx.MsgModelRegister{ModelId: modelID, RoyaltyBps: 2000, DataBps: 2500,
				Shares: uint64(holders) * 1000, Citations: cites}); err != nil {
				b.Fatal(err)
			}
			for i := 1; i < holders; i++ {
				var to address.Address
				binary.BigEndian.PutUint32(to[:], uint32(i))
				to[19] = 0xee
				if _, err := TransferShares(c, owner, &tx.MsgModelSharesTransfer{ModelId: modelID, To: to[:], Shares: 1000}); err != nil {
					b.Fatal(err)
				}
			}
			sub := &tx.Subnet{Netuid: 1, Params: &tx.SubnetParams{ModelId: modelID}}
			b.ResetTimer()
			for i := range b.N {
				c.Height = uint64(2 + i)
				if _, _, err := (Payer{}).PayRoyalty(c, sub, 10*agr.Unit); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
