package tx

import (
	"fmt"
	"math"

	"github.com/agoranet/agora/agr"
)

// EntriesPerFee is how many entries of a sized message (a weight vector)
// its flat fee covers. Each further EntriesPerFee entries cost another
// fee_default, so a message pays for the state it writes and the epoch work
// it feeds: a 4,096-entry weight vector costs 64 flat fees, not one.
const EntriesPerFee = 64

// RequiredFee is the fee a transaction's messages require (see TxFee). A fee
// too large for uint64 comes back as MaxUint64, which no account can pay.
func RequiredFee(p *Params, msgs []*Msg) uint64 {
	fee, err := TxFee(p, msgs)
	if err != nil {
		return math.MaxUint64
	}
	return fee
}

// TxFee is the fee a transaction's messages require: each message's flat
// fee plus, for messages whose work grows with their size, a per-entry part.
// The chain charges exactly this, so a client computing it here pays the
// same amount the ante check demands.
func TxFee(p *Params, msgs []*Msg) (uint64, error) {
	var fee uint64
	for i, m := range msgs {
		f, err := MsgFee(p, m)
		if err != nil {
			return 0, fmt.Errorf("fee of message %d: %w", i, err)
		}
		if fee, err = agr.Add(fee, f); err != nil {
			return 0, fmt.Errorf("fee of %d messages: %w", len(msgs), err)
		}
	}
	return fee, nil
}

// MsgFee is one message's fee.
func MsgFee(p *Params, m *Msg) (uint64, error) {
	switch s := m.GetSum().(type) {
	case *Msg_Transfer:
		return p.FeeTransfer, nil
	case *Msg_WeightsSet:
		return sizedFee(p.FeeDefault, len(s.WeightsSet.GetUids()))
	case *Msg_WeightsReveal:
		return sizedFee(p.FeeDefault, len(s.WeightsReveal.GetUids()))
	default:
		return p.FeeDefault, nil
	}
}

// sizedFee is base for up to EntriesPerFee entries, plus base per further
// EntriesPerFee entries (rounded up, so no entry is free beyond the first block).
func sizedFee(base uint64, entries int) (uint64, error) {
	if entries <= EntriesPerFee {
		return base, nil
	}
	extra, err := agr.MulDivCeil(base, uint64(entries-EntriesPerFee), EntriesPerFee)
	if err != nil {
		return 0, err
	}
	return agr.Add(base, extra)
}
