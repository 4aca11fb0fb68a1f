package subnet

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/tx"
)

// bigSubnet builds a committed store holding one subnet with n UIDs.
func bigSubnet(tb testing.TB, n int) *state.Store {
	tb.Helper()
	st, err := state.OpenMem(state.DefaultOptions())
	if err != nil {
		tb.Fatal(err)
	}
	blk := st.NewBlock()
	sp := DefaultSubnetParams()
	sp.MaxUids, sp.MinBurn, sp.MaxBurn = uint32(n), 0, 0
	owner := address.Address{1}
	params := &tx.Params{MaxSubnets: 1, DefaultSubnet: sp}
	c := &Ctx{KV: blk, Height: 1, ChainID: "bench", Params: params}
	if err := bank.SetSupply(blk, &tx.Supply{}); err != nil {
		tb.Fatal(err)
	}
	if _, err := RegisterSubnet(c, owner, &tx.MsgSubnetRegister{OwnerHotkey: tx.ProveHotkey(keyFor(0), "bench", NewSubnetNetuid, owner)}); err != nil {
		tb.Fatal(err)
	}
	for i := 1; i < n; i++ {
		if _, err := RegisterNeuron(c, owner, &tx.MsgNeuronRegister{Netuid: 1, Hotkey: tx.ProveHotkey(keyFor(i), "bench", 1, owner)}); err != nil {
			tb.Fatal(err)
		}
	}
	commitBlock(tb, st, blk)
	return st
}

func TestMetagraphReadsEveryUID(t *testing.T) {
	st := bigSubnet(t, 300)
	mg, err := Metagraph(st.Committed(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(mg.Neurons) != 300 || mg.Subnet.N != 300 {
		t.Fatalf("metagraph has %d neurons, subnet n %d", len(mg.Neurons), mg.Subnet.N)
	}
	seen := map[address.Address]bool{}
	for uid, nr := range mg.Neurons {
		h := addrOf(nr.Hotkey)
		if seen[h] {
			t.Fatalf("uid %d repeats hotkey %s", uid, h)
		}
		seen[h] = true
		if got, err := UIDOf(st.Committed(), 1, h); err != nil || int(got) != uid {
			t.Fatalf("index of uid %d: %d %v", uid, got, err)
		}
	}
}

// BenchmarkMetagraphSync4096 measures what a metagraph sync costs besides the
// network: reading 4,096 UIDs and their pools from the committed tree,
// encoding the answer, and decoding it in the client.
func BenchmarkMetagraphSync4096(b *testing.B) {
	st := bigSubnet(b, 4096)
	b.ReportAllocs()
	for b.Loop() {
		mg, err := Metagraph(st.Committed(), 1)
		if err != nil {
			b.Fatal(err)
		}
		raw, err := tx.Marshal(mg)
		if err != nil {
			b.Fatal(err)
		}
		var back tx.Metagraph
		if err := proto.Unmarshal(raw, &back); err != nil || len(back.Neurons) != 4096 {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(raw)))
	}
}
