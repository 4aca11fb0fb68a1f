package agr

import (
	"errors"
	"fmt"
	"math/bits"
)

// ErrOverflow is returned by every checked operation whose exact result does
// not fit in uint64 (or would go below zero). Money never wraps: a caller
// that gets it refuses the request or the message instead.
var ErrOverflow = errors.New("amount overflows")

// Add returns a+b, or ErrOverflow.
func Add(a, b uint64) (uint64, error) {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return 0, fmt.Errorf("%w: %d + %d", ErrOverflow, a, b)
	}
	return s, nil
}

// Sub returns a-b, or ErrOverflow when b > a.
func Sub(a, b uint64) (uint64, error) {
	d, borrow := bits.Sub64(a, b, 0)
	if borrow != 0 {
		return 0, fmt.Errorf("%w: %d - %d is negative", ErrOverflow, a, b)
	}
	return d, nil
}

// Mul returns a*b, or ErrOverflow.
func Mul(a, b uint64) (uint64, error) {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return 0, fmt.Errorf("%w: %d × %d", ErrOverflow, a, b)
	}
	return lo, nil
}

// MulDivCeil returns ⌈a*b/d⌉ computed over 128 bits, or ErrOverflow when the
// quotient does not fit (or d is 0).
func MulDivCeil(a, b, d uint64) (uint64, error) {
	if d == 0 {
		return 0, fmt.Errorf("%w: division by zero", ErrOverflow)
	}
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return 0, fmt.Errorf("%w: %d × %d / %d", ErrOverflow, a, b, d)
	}
	q, r := bits.Div64(hi, lo, d)
	if r != 0 {
		if q == ^uint64(0) {
			return 0, fmt.Errorf("%w: %d × %d / %d", ErrOverflow, a, b, d)
		}
		q++
	}
	return q, nil
}

// MulDiv returns ⌊a*b/d⌋ computed over 128 bits, or ErrOverflow when the
// quotient does not fit (or d is 0). Splits round down with it, so a share
// never exceeds the whole.
func MulDiv(a, b, d uint64) (uint64, error) {
	if d == 0 {
		return 0, fmt.Errorf("%w: division by zero", ErrOverflow)
	}
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return 0, fmt.Errorf("%w: %d × %d / %d", ErrOverflow, a, b, d)
	}
	q, _ := bits.Div64(hi, lo, d)
	return q, nil
}

// Price is what tokens cost at pricePer1K base units per thousand tokens,
// rounded up so a request is never free by rounding. Gateways, agents and
// the chain all price with it, so they agree to the unit.
func Price(pricePer1K, tokens uint64) (uint64, error) {
	p, err := MulDivCeil(pricePer1K, tokens, 1000)
	if err != nil {
		return 0, fmt.Errorf("price of %d tokens at %d per 1k: %w", tokens, pricePer1K, err)
	}
	return p, nil
}

// SaturatingAdd returns a+b, or the largest uint64 where the sum would not
// fit. It is for figures nobody spends — statistics, reported totals, block
// numbers in messages — where clamping beats failing; money that moves goes
// through Add.
func SaturatingAdd(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return ^uint64(0)
	}
	return s
}
