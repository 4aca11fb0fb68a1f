package chain

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/tx"
)

type recordingObserver struct {
	txs       []string
	heights   []uint64
	endBlocks int
	supply    *tx.Supply
}

func (o *recordingObserver) TxResult(msg string, code uint32) {
	o.txs = append(o.txs, msg+"/"+tx.CodeName(code))
}
func (o *recordingObserver) Block(h uint64, took time.Duration) {
	if took < 0 {
		panic("negative block time")
	}
	o.heights = append(o.heights, h)
}
func (o *recordingObserver) EndBlock(_ time.Duration, epoch bool) {
	if epoch {
		panic("no subnet runs an epoch in this test")
	}
	o.endBlocks++
}
func (o *recordingObserver) Supply(s *tx.Supply) { o.supply = s }

// TestObserver checks what the App reports per transaction and per block,
// and that observing changes nothing in state.
func TestObserver(t *testing.T) {
	alice, bob := newKey(1), newKey(2)
	bal := map[address.Address]uint64{alice.addr: 10_000_000}
	watched, plain := newHarness(t, bal), newHarness(t, bal)
	o := &recordingObserver{}
	watched.app.SetObserver(o)
	txs := [][]byte{
		signTransfer(t, alice, bob.addr, 1_000, 0, fee),
		signTransfer(t, alice, bob.addr, 9_500_000, 1, fee), // overdraws: pays the fee only
		[]byte("not a transaction"),
	}
	watched.block(txs...)
	plain.block(txs...)
	if !bytes.Equal(watched.store.Hash(), plain.store.Hash()) {
		t.Fatal("an observer changed the app hash")
	}
	want := []string{"transfer/ok", "transfer/insufficient_funds", TxMsgNone + "/malformed"}
	if fmt.Sprint(o.txs) != fmt.Sprint(want) {
		t.Fatalf("tx results %v, want %v", o.txs, want)
	}
	if fmt.Sprint(o.heights) != "[1]" || o.endBlocks != 1 {
		t.Fatalf("blocks %v, end blocks %d; want [1], 1", o.heights, o.endBlocks)
	}
	if o.supply == nil || o.supply.Burned != watched.supply().Burned || o.supply.Burned != 2*fee {
		t.Fatalf("observed supply %v, committed %v", o.supply, watched.supply())
	}
}
