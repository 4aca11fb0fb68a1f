package agr

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want uint64
	}{
		{"1agr", Unit},
		{"1.5AGR", 1_500_000_000},
		{"0.000000001agr", 1},
		{".25agr", 250_000_000},
		{"7nagr", 7},
		{"21000000 agr", 21_000_000 * Unit},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"1", "1.0000000001agr", "agr", "-1agr", "1.2nagr", "99999999999999999999agr", "x"} {
		if _, err := Parse(bad); !errors.Is(err, ErrBadAmount) {
			t.Errorf("Parse(%q) err = %v, want ErrBadAmount", bad, err)
		}
	}
}

func TestFormatRoundTrip(t *testing.T) {
	for _, n := range []uint64{0, 1, Unit, 1_500_000_000, 123_456_789_012} {
		s := Format(n)
		got, err := Parse(s)
		if err != nil || got != n {
			t.Errorf("Parse(Format(%d)=%q) = %d, %v", n, s, got, err)
		}
	}
	if Format(1_500_000_000) != "1.5 AGR" {
		t.Fatalf("Format = %q", Format(1_500_000_000))
	}
}
