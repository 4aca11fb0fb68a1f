package yuma

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
)

// Fixed is an unsigned Q32.32 fixed-point number: a uint64 holding the value
// times 2^32. Yuma's quantities are proportions in [0, 1] (weights, stake
// shares, bonds, incentive), so 32 integer bits are ample and 32 fraction
// bits give a resolution of 2^-32 ≈ 2.3e-10, the same as Bittensor's I32F32.
// Every operation is integer arithmetic (products and quotients go through
// math/bits' 128-bit Mul64/Div64), so all architectures agree bit for bit.
// Arithmetic rounds down unless a function says otherwise.
type Fixed uint64

const fracBits = 32

// One is 1.0.
const One Fixed = 1 << fracBits

// FromRatio returns num/den rounded down; 0 when den is 0 and the largest
// Fixed when the quotient does not fit.
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

// maxPlaces is enough decimal places to identify any Fixed: 10^-10 is less
// than half of 2^-32, so rounding to 10 places and parsing back (to nearest)
// always returns the same value.
const maxPlaces = 10

var pow10 = [...]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}

// String renders a as the shortest decimal that ParseFixed reads back as
// exactly a (at most 10 places): One/2 is "0.5", ParseFixed("0.9") prints
// as "0.9". For the full binary expansion use Exact.
func (a Fixed) String() string {
	whole := uint64(a) >> fracBits
	frac := uint64(a) & (uint64(One) - 1)
	for p := 0; p <= maxPlaces; p++ {
		// q = frac·10^p / 2^32 rounded half up: the nearest p-place decimal.
		hi, lo := bits.Mul64(frac, pow10[p])
		q := hi<<(64-fracBits) | lo>>fracBits
		if lo&(uint64(One)-1) >= uint64(One)/2 {
			q++
		}
		// A q that rounds up to 10^p (the next whole number) never
		// round-trips, since frac < 2^32; the check below skips it.
		if decimalToFrac(q, p) != frac {
			continue
		}
		if q == 0 {
			return strconv.FormatUint(whole, 10)
		}
		return strings.TrimRight(fmt.Sprintf("%d.%0*d", whole, p, q), "0")
	}
	// Unreachable: p = maxPlaces always round-trips.
	return a.Exact()
}

// decimalToFrac converts the p-place fraction q/10^p (q ≤ 10^p) to units of
// 2^-32, rounded to nearest with ties to even, exactly as ParseFixed does.
func decimalToFrac(q uint64, p int) uint64 {
	hi, lo := bits.Mul64(q, uint64(One))
	quo, rem := bits.Div64(hi, lo, pow10[p])
	if twice := 2 * rem; twice > pow10[p] || (twice == pow10[p] && quo&1 == 1) {
		quo++
	}
	return quo
}

// Exact renders the exact decimal value of a: every Q32.32 number is a finite
// decimal with at most 32 fractional digits (2^-32 = 5^32/10^32).
func (a Fixed) Exact() string {
	whole := uint64(a) >> fracBits
	frac := uint64(a) & (uint64(One) - 1)
	if frac == 0 {
		return strconv.FormatUint(whole, 10)
	}
	five32 := new(big.Int).Exp(big.NewInt(5), big.NewInt(32), nil)
	digits := new(big.Int).Mul(new(big.Int).SetUint64(frac), five32).String()
	digits = strings.Repeat("0", 32-len(digits)) + digits
	return strconv.FormatUint(whole, 10) + "." + strings.TrimRight(digits, "0")
}

// ErrBadDecimal is returned by ParseFixed.
var ErrBadDecimal = errors.New("invalid decimal")

// maxDigits bounds the significant digits ParseFixed accepts, so a hostile
// input cannot make it do unbounded big-number work.
const maxDigits = 1000

// ParseFixed reads a non-negative decimal in JSON number syntax ("0.5", "1",
// "3e-1", "2.5E-3"; also a bare ".25") exactly, without floats, and rounds it
// to the nearest multiple of 2^-32 (ties to even). Values of 2^32 or more are
// rejected.
func ParseFixed(s string) (Fixed, error) {
	bad := func(why string) (Fixed, error) {
		if why != "" {
			return 0, fmt.Errorf("%w %q: %s", ErrBadDecimal, s, why)
		}
		return 0, fmt.Errorf("%w %q", ErrBadDecimal, s)
	}
	mant, expPart, hasExp := strings.Cut(strings.ToLower(s), "e")
	whole, frac, _ := strings.Cut(mant, ".")
	if (whole == "" && frac == "") || !allDigits(whole) || !allDigits(frac) {
		return bad("")
	}
	exp := 0
	if hasExp {
		e := strings.TrimPrefix(expPart, "+")
		neg := strings.HasPrefix(e, "-")
		e = strings.TrimPrefix(e, "-")
		if e == "" || !allDigits(e) {
			return bad("")
		}
		e = strings.TrimLeft(e, "0")
		if len(e) > 6 {
			e = "999999" // beyond any value we can hold or resolve
		}
		exp, _ = strconv.Atoi("0" + e)
		if neg {
			exp = -exp
		}
	}
	// value = digits · 10^-(scale), digits without leading zeros.
	digits := strings.TrimLeft(whole+frac, "0")
	scale := len(frac) - exp
	if digits == "" {
		return 0, nil
	}
	if len(digits) > maxDigits {
		return bad("too many digits")
	}
	// magnitude: 10^(len−scale−1) ≤ value < 10^(len−scale).
	switch mag := len(digits) - scale; {
	case mag > 10: // ≥ 10^10 > 2^32
		return bad("too large")
	case mag < -11: // < 10^-11, under half of 2^-32
		return 0, nil
	}
	num, _ := new(big.Int).SetString(digits, 10)
	num.Lsh(num, fracBits)
	den := big.NewInt(1)
	if scale >= 0 {
		den.Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
	} else {
		num.Mul(num, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-scale)), nil))
	}
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	switch c := r.Lsh(r, 1).Cmp(den); {
	case c > 0, c == 0 && q.Bit(0) == 1:
		q.Add(q, big.NewInt(1))
	}
	if q.BitLen() > 64 {
		return bad("too large")
	}
	return Fixed(q.Uint64()), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// MarshalJSON writes a as a JSON number with String's shortest exact decimal.
func (a Fixed) MarshalJSON() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalJSON reads a JSON number (or a string holding one) exactly, as
// ParseFixed does; it never goes through float64.
func (a *Fixed) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		b = b[1 : len(b)-1]
	}
	v, err := ParseFixed(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}
