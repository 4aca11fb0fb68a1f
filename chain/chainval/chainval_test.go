package chainval

import (
	"math"
	"testing"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
)

func TestMulBpsNeverRoundsUp(t *testing.T) {
	for _, c := range []struct {
		amount uint64
		bps    uint32
		want   uint64
	}{
		{0, 500, 0},
		{19, 500, 0}, // 0.95 rounds down: the slash never takes more than its share
		{20, 500, 1},
		{100 * agr.Unit, 500, 5 * agr.Unit},
		{math.MaxUint64, 10_000, math.MaxUint64},
		{math.MaxUint64, 9_999, math.MaxUint64/10_000*9_999 + (math.MaxUint64%10_000)*9_999/10_000},
		{math.MaxUint64, 20_000, math.MaxUint64},
		{7, 1, 0},
	} {
		if got := mulBps(c.amount, c.bps); got != c.want {
			t.Errorf("mulBps(%d, %d) = %d, want %d", c.amount, c.bps, got, c.want)
		}
	}
}

func TestPower(t *testing.T) {
	for _, c := range []struct {
		v    *tx.ChainValidator
		want uint64
	}{
		{&tx.ChainValidator{Bonded: agr.Unit - 1}, 0},
		{&tx.ChainValidator{Bonded: 0, Bootstrap: true}, 1},
		{&tx.ChainValidator{Bonded: 3*agr.Unit + 7, Bootstrap: true}, 3},
		{&tx.ChainValidator{Bonded: 42 * agr.Unit}, 42},
	} {
		if got := Power(c.v); got != c.want {
			t.Errorf("Power(%v) = %d, want %d", c.v, got, c.want)
		}
	}
}
