package chain

import (
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/tx"
)

// Observer receives what the App did, for metrics. Its methods are called
// synchronously from ABCI calls and must be quick; nothing they do can feed
// back into state (the App never reads anything from an Observer).
type Observer interface {
	// TxResult reports one executed transaction: the type of its first
	// message (TxMsgNone when it did not decode) and its result code.
	TxResult(msg string, code uint32)
	// Block reports a committed block and the wall time from the start of
	// its FinalizeBlock to the end of its Commit.
	Block(height uint64, took time.Duration)
	// EndBlock reports the wall time of a block's end-of-block work
	// (emission, subnet epochs, chain validators) and whether a subnet
	// epoch ran in it.
	EndBlock(took time.Duration, epoch bool)
	// Supply reports the committed supply record after each Commit.
	Supply(s *tx.Supply)
}

// TxMsgNone is the message type reported for a transaction without one
// (undecodable, or no messages).
const TxMsgNone = "none"

// SetObserver makes the App report to o (nil: report nothing). Call it
// before the node starts.
func (a *App) SetObserver(o Observer) { a.obs = o }

// msgTypeName is the oneof field name of m's message ("transfer",
// "stake_add", …): a small fixed set from the protocol.
func msgTypeName(msgs []*tx.Msg) string {
	if len(msgs) == 0 || msgs[0] == nil {
		return TxMsgNone
	}
	m := msgs[0].ProtoReflect()
	od := m.Descriptor().Oneofs().ByName(protoreflect.Name("sum"))
	if od == nil {
		return TxMsgNone
	}
	fd := m.WhichOneof(od)
	if fd == nil {
		return TxMsgNone
	}
	return string(fd.Name())
}

// observeEndBlock reports end-of-block work that began at start.
func (a *App) observeEndBlock(start time.Time, events []abci.Event) {
	epoch := false
	for _, e := range events {
		if e.Type == "epoch" {
			epoch = true
			break
		}
	}
	a.obs.EndBlock(time.Since(start), epoch)
}

// observeCommit reports a committed block and the committed supply.
func (a *App) observeCommit() {
	if a.obs == nil {
		return
	}
	if !a.blockStart.IsZero() {
		a.obs.Block(a.height, time.Since(a.blockStart))
		a.blockStart = time.Time{}
	}
	if s, err := bank.GetSupply(a.store.Committed()); err == nil && s != nil {
		a.obs.Supply(s)
	}
}
