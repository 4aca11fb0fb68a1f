package agr

import (
	"errors"
	"math"
	"math/big"
	"testing"
)

func TestCheckedArithmetic(t *testing.T) {
	const M = math.MaxUint64
	cases := []struct {
		name    string
		op      func() (uint64, error)
		want    uint64
		wantErr bool
	}{
		{"add", func() (uint64, error) { return Add(2, 3) }, 5, false},
		{"add at max", func() (uint64, error) { return Add(M-1, 1) }, M, false},
		{"add wraps", func() (uint64, error) { return Add(M, 1) }, 0, true},
		{"sub", func() (uint64, error) { return Sub(5, 3) }, 2, false},
		{"sub negative", func() (uint64, error) { return Sub(3, 5) }, 0, true},
		{"mul", func() (uint64, error) { return Mul(1<<31, 1<<32) }, 1 << 63, false},
		{"mul wraps", func() (uint64, error) { return Mul(1<<32, 1<<32) }, 0, true},
		{"muldiv exact", func() (uint64, error) { return MulDivCeil(10, 300, 1000) }, 3, false},
		{"muldiv rounds up", func() (uint64, error) { return MulDivCeil(10, 301, 1000) }, 4, false},
		{"muldiv wide", func() (uint64, error) { return MulDivCeil(M, 1000, 1000) }, M, false},
		{"muldiv too big", func() (uint64, error) { return MulDivCeil(M, 1001, 1000) }, 0, true},
		{"muldiv ceil past max", func() (uint64, error) { return MulDivCeil(M, 3, 3) }, M, false},
		{"muldiv by zero", func() (uint64, error) { return MulDivCeil(1, 1, 0) }, 0, true},
		// The hole the gateway had: price × (body + max_tokens) wrapped to a tiny charge.
		{"price of a huge max_tokens", func() (uint64, error) { return Price(1000, M) }, M, false},
		{"price overflow", func() (uint64, error) { return Price(1001, M) }, 0, true},
		{"price one token", func() (uint64, error) { return Price(1, 1) }, 1, false},
		{"price zero", func() (uint64, error) { return Price(0, 1<<40) }, 0, false},
	}
	for _, c := range cases {
		got, err := c.op()
		if c.wantErr {
			if !errors.Is(err, ErrOverflow) {
				t.Errorf("%s: got %d, %v; want ErrOverflow", c.name, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: got %d, %v; want %d", c.name, got, err, c.want)
		}
	}
}

// MulDivCeil agrees with exact big-integer arithmetic wherever it answers.
func FuzzMulDivCeil(f *testing.F) {
	f.Add(uint64(7), uint64(9), uint64(4))
	f.Add(uint64(math.MaxUint64), uint64(math.MaxUint64), uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, a, b, d uint64) {
		got, err := MulDivCeil(a, b, d)
		if d == 0 {
			if err == nil {
				t.Fatal("division by zero answered")
			}
			return
		}
		num := new(big.Int).Mul(new(big.Int).SetUint64(a), new(big.Int).SetUint64(b))
		num.Add(num, new(big.Int).SetUint64(d-1))
		want := num.Div(num, new(big.Int).SetUint64(d))
		if !want.IsUint64() {
			if err == nil {
				t.Fatalf("%d×%d/%d: got %d, want overflow", a, b, d, got)
			}
			return
		}
		if err != nil || got != want.Uint64() {
			t.Fatalf("%d×%d/%d: got %d, %v; want %d", a, b, d, got, err, want.Uint64())
		}
	})
}

func TestSaturatingAdd(t *testing.T) {
	for _, c := range []struct{ a, b, want uint64 }{
		{2, 3, 5}, {math.MaxUint64 - 1, 1, math.MaxUint64}, {math.MaxUint64, 1, math.MaxUint64}, {math.MaxUint64, math.MaxUint64, math.MaxUint64},
	} {
		if got := SaturatingAdd(c.a, c.b); got != c.want {
			t.Errorf("SaturatingAdd(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
