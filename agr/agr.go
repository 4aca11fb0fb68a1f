// Package agr parses and formats AGR amounts. Amounts are uint64 base units
// ("nagr", 10^-9 AGR); text always names its unit so nobody sends a billion
// times what they meant.
package agr

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Decimals is the number of decimal places of one AGR.
const Decimals = 9

// Unit is one AGR in base units.
const Unit uint64 = 1_000_000_000

// ErrBadAmount wraps every parse failure.
var ErrBadAmount = errors.New("invalid amount")

// Parse reads "1.5agr", "1.5AGR", "1500000000nagr" or "0.000000001 agr".
func Parse(s string) (uint64, error) {
	in := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
	switch {
	case strings.HasSuffix(in, "nagr"):
		n, err := strconv.ParseUint(strings.TrimSuffix(in, "nagr"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w %q: %v", ErrBadAmount, s, err)
		}
		return n, nil
	case strings.HasSuffix(in, "agr"):
		return parseDecimal(s, strings.TrimSuffix(in, "agr"))
	default:
		return 0, fmt.Errorf("%w %q: give a unit, e.g. 1.5agr or 1500000000nagr", ErrBadAmount, s)
	}
}

func parseDecimal(orig, num string) (uint64, error) {
	whole, frac, hasDot := strings.Cut(num, ".")
	if whole == "" && (!hasDot || frac == "") {
		return 0, fmt.Errorf("%w %q: no digits", ErrBadAmount, orig)
	}
	if len(frac) > Decimals {
		return 0, fmt.Errorf("%w %q: more than %d decimal places", ErrBadAmount, orig, Decimals)
	}
	var w uint64
	if whole != "" {
		var err error
		if w, err = strconv.ParseUint(whole, 10, 64); err != nil {
			return 0, fmt.Errorf("%w %q: %v", ErrBadAmount, orig, err)
		}
	}
	var f uint64
	if frac != "" {
		var err error
		if f, err = strconv.ParseUint(frac, 10, 64); err != nil {
			return 0, fmt.Errorf("%w %q: %v", ErrBadAmount, orig, err)
		}
		for i := len(frac); i < Decimals; i++ {
			f *= 10
		}
	}
	if w > (math.MaxUint64-f)/Unit {
		return 0, fmt.Errorf("%w %q: too large", ErrBadAmount, orig)
	}
	return w*Unit + f, nil
}

// Format renders base units as AGR with trailing zeros trimmed: "12.5 AGR".
func Format(n uint64) string {
	whole, frac := n/Unit, n%Unit
	if frac == 0 {
		return strconv.FormatUint(whole, 10) + " AGR"
	}
	fs := strings.TrimRight(fmt.Sprintf("%09d", frac), "0")
	return strconv.FormatUint(whole, 10) + "." + fs + " AGR"
}
