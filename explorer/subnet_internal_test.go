package explorer

import (
	"encoding/json"
	"testing"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
)

func TestSubnetAgrShort(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		want string
	}{
		{0, "0 AGR"},
		{1, "0.000000001 AGR"},
		{34_166_667, "0.03416 AGR"},
		{5_694_445, "0.005694 AGR"},
		{agr.Unit / 10, "0.1 AGR"},
		{agr.Unit, "1.00 AGR"},
		{1_000_229_736_669, "1,000.22 AGR"},
		{21_000_000 * agr.Unit, "21,000,000.00 AGR"},
	} {
		if got := agrShort(c.n); got != c.want {
			t.Errorf("agrShort(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

func TestSubnetNextEpochHeight(t *testing.T) {
	for _, c := range []struct {
		netuid   uint32
		tempo, h uint64
		want     uint64
	}{
		{1, 4, 0, 3},
		{1, 4, 3, 8}, // an epoch just ran at 3
		{1, 4, 7, 8},
		{0, 360, 0, 360},
		{2, 360, 358, 719},
		{1, 0, 10, 0},
	} {
		got := nextEpochHeight(c.netuid, c.tempo, c.h)
		if got != c.want {
			t.Errorf("nextEpochHeight(%d, %d, %d) = %d, want %d", c.netuid, c.tempo, c.h, got, c.want)
		}
		if got != 0 && !tx.EpochDue(c.netuid, c.tempo, got) {
			t.Errorf("%d is not an epoch height of netuid %d tempo %d", got, c.netuid, c.tempo)
		}
	}
}

func TestSubnetFracJSON(t *testing.T) {
	for _, c := range []struct {
		f    Frac
		want string
	}{
		{0, "0"},
		{1 << 32, "1"},
		{1 << 31, "0.5"},
		{1, "0.0000000002"},
		{2863311530, "0.6666666665"},
		{^Frac(0), "4294967295.9999999998"},
	} {
		b, err := json.Marshal(c.f)
		if err != nil || string(b) != c.want {
			t.Errorf("marshal %d = %s, %v; want %s", c.f, b, err, c.want)
		}
		var back Frac
		if err := json.Unmarshal(b, &back); err != nil || back != c.f {
			t.Errorf("round trip of %d gave %d, %v", c.f, back, err)
		}
	}
	var f Frac
	for _, bad := range []string{`-1`, `"x"`, `1e40`} {
		if err := json.Unmarshal([]byte(bad), &f); err == nil {
			t.Errorf("%s decoded as %d", bad, f)
		}
	}
}

func TestSubnetWeightShare(t *testing.T) {
	row := &tx.WeightRow{Uids: []uint32{2, 3, 4}, Values: []uint32{1000, 2000, 3000}}
	for _, c := range []struct {
		uid  uint32
		want Frac
		ok   bool
	}{
		{4, 1 << 31, true},
		{2, Frac((uint64(1000) << 32) / 6000), true},
		{9, 0, false},
	} {
		got, ok := weightShare(row, c.uid)
		if got != c.want || ok != c.ok {
			t.Errorf("weightShare(uid %d) = %d, %v; want %d, %v", c.uid, got, ok, c.want, c.ok)
		}
	}
	if _, ok := weightShare(&tx.WeightRow{Uids: []uint32{1}, Values: []uint32{0}}, 1); !ok {
		t.Error("a zero weight is still a weight")
	}
}

func TestSubnetCostLRU(t *testing.T) {
	c := newCostLRU(10)
	c.put("a", 1, 4)
	c.put("b", 2, 4)
	if _, ok := c.get("a"); !ok { // a is now the most recent
		t.Fatal("a evicted early")
	}
	c.put("c", 3, 4) // over 10: the least recent (b) goes
	if _, ok := c.get("b"); ok {
		t.Error("b should have been evicted")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.get(k); !ok {
			t.Errorf("%s evicted", k)
		}
	}
	c.put("big", 4, 100) // larger than the cache: kept alone
	if v, ok := c.get("big"); !ok || v != 4 || c.cost != 100 {
		t.Errorf("big: %v %v cost %d", v, ok, c.cost)
	}
}

func TestSubnetHeadroom(t *testing.T) {
	for _, c := range []struct{ max, want float64 }{
		{0, 0}, {1, 2}, {0.068, 0.1}, {0.5, 0.8}, {3, 4}, {7, 10}, {90, 120},
	} {
		if got := headroom(c.max); got < c.max*1.25-1e-12 || (c.want != 0 && got != c.want) {
			t.Errorf("headroom(%v) = %v, want %v", c.max, got, c.want)
		}
	}
}
