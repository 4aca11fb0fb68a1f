package yuma

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// Fixed is an unsigned Q32.32 fixed-point number: the value times 2^32.
// Yuma's quantities are proportions in [0, 1] (weights, stake shares, bonds,
// incentive), so 32 integer bits are ample and 32 fraction bits give a
// resolution of 2.3e-10, the same as Bittensor's I32F32. Every operation is
// integer arithmetic, so all architectures agree bit for bit.
type Fixed uint64

const fracBits = 32

// One is 1.0.
const One Fixed = 1 << fracBits

// FromRatio returns num/den rounded down. den must be positive and num ≤ den·2^32.
func FromRatio(num, den uint64) Fixed {
	if den == 0 {
		return 0
	}
	hi, lo := num>>(64-fracBits), num<<fracBits
	if hi >= den {
		return Fixed(^uint64(0))
	}
	q, _ := bits.Div64(hi, lo, den)
	return Fixed(q)
}

// FromU16 maps a u16 weight w to w/65535.
func FromU16(w uint16) Fixed { return FromRatio(uint64(w), 65535) }

// Mul returns a·b rounded down.
func (a Fixed) Mul(b Fixed) Fixed {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	return Fixed(hi<<(64-fracBits) | lo>>fracBits)
}

// Div returns a/b rounded down; 0 when b is 0.
func (a Fixed) Div(b Fixed) Fixed { return FromRatio(uint64(a), uint64(b)) }

// MulU64 returns ⌊n·a⌋ for an integer n: how many base units a share a of n is.
func (a Fixed) MulU64(n uint64) uint64 {
	hi, lo := bits.Mul64(uint64(a), n)
	return hi<<(64-fracBits) | lo>>fracBits
}

// String renders the value rounded to 9 decimal places (half up), trailing
// zeros trimmed. Nine places sit just above the 2^-32 resolution, so values
// off by an ulp of rounding still print as the decimal a person expects.
func (a Fixed) String() string {
	const places = 1_000_000_000
	whole := uint64(a) >> fracBits
	frac := uint64(a) & (uint64(One) - 1)
	hi, lo := bits.Mul64(frac, places)
	q, r := bits.Div64(hi, lo, uint64(One))
	if r >= uint64(One)/2 {
		q++
	}
	if q == places {
		whole, q = whole+1, 0
	}
	s := strings.TrimRight(fmt.Sprintf("%d.%09d", whole, q), "0")
	return strings.TrimSuffix(s, ".")
}

// ErrBadDecimal is returned by ParseFixed.
var ErrBadDecimal = errors.New("invalid decimal")

// ParseFixed reads a non-negative decimal ("0.5", "1", "3e-1" is not
// accepted) exactly, rounding down to the nearest 2^-32, without floats.
func ParseFixed(s string) (Fixed, error) {
	whole, frac, _ := strings.Cut(strings.TrimSpace(s), ".")
	if whole == "" && frac == "" {
		return 0, fmt.Errorf("%w %q", ErrBadDecimal, s)
	}
	var w uint64
	for _, c := range whole {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w %q", ErrBadDecimal, s)
		}
		w = w*10 + uint64(c-'0')
		if w >= 1<<(64-fracBits) {
			return 0, fmt.Errorf("%w %q: too large", ErrBadDecimal, s)
		}
	}
	// Fraction: digits d1..dk → Σ d_i·10^-i, computed as numerator/10^k with
	// k capped at 18 digits (far below the 2^-32 resolution).
	var num, den uint64 = 0, 1
	for i, c := range frac {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w %q", ErrBadDecimal, s)
		}
		if i >= 18 {
			continue
		}
		num = num*10 + uint64(c-'0')
		den *= 10
	}
	return Fixed(w<<fracBits) + FromRatio(num, den), nil
}
