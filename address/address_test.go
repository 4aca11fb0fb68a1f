package address

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	pub := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	a := FromPubKey(pub)
	s := a.String()
	if !strings.HasPrefix(s, "agora1") {
		t.Fatalf("address %q lacks agora1 prefix", s)
	}
	// Golden (computed independently with Python hashlib + BIP-173 reference): the all-zero seed's address must never change, or every key in every keystore moves.
	const golden = "agora1zw0rjs8xfd2fzu3q3rv6p46pv28usfhqwqca40"
	if s != golden {
		t.Fatalf("address of zero seed = %s, want %s", s, golden)
	}
	b, err := Parse(s)
	if err != nil || b != a {
		t.Fatalf("Parse(%s) = %v, %v", s, b, err)
	}
}

func TestParseRejects(t *testing.T) {
	good := FromPubKey(make([]byte, 32)).String()
	cases := map[string]string{
		"empty":        "",
		"wrong prefix": "cosmos1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnrql8a",
		"bad checksum": good[:len(good)-1] + "q",
		"garbage":      "agora1!!!",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(in); !errors.Is(err, ErrBadAddress) {
				t.Fatalf("Parse(%q) err = %v, want ErrBadAddress", in, err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(FromPubKey(make([]byte, 32)).String())
	f.Add("agora1")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		if b, err := Parse(a.String()); err != nil || b != a {
			t.Fatalf("re-parse of %s failed: %v", a, err)
		}
	})
}
