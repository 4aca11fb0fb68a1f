// Package sim runs the chain's own Yuma Consensus (package yuma) offline on
// a JSON scenario, so a subnet owner can try hyperparameters before setting
// them. Numbers are read and written exactly, never through float64, so a
// scenario's result is what the chain would compute and output bonds can be
// fed back in as the next epoch's bonds.
//
// It imports yuma and the standard library only; never the chain
// application or cmd.
package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/agoranet/agora/yuma"
)

// scenario is the JSON input: hyperparameters, stake, the weight matrix
// (row i = weights set by UID i) and optionally the previous bonds, permits
// and active flags.
type scenario struct {
	Version            string          `json:"version"`
	Kappa              json.Number     `json:"kappa"`
	BondsMovingAverage json.Number     `json:"bonds_moving_average"`
	BondsPenalty       json.Number     `json:"bonds_penalty"`
	Stake              []json.Number   `json:"stake"`
	Weights            [][]json.Number `json:"weights"`
	Bonds              [][]json.Number `json:"bonds"`
	ValidatorPermit    []bool          `json:"validator_permit"`
	Active             []bool          `json:"active"`
	MaxValidators      *int            `json:"max_validators"`
	Emission           json.Number     `json:"emission"`
}

const maxScenarioBytes = 64 << 20

// ParseScenario decodes a sim scenario exactly: decimals become fixed point
// without passing through float64, so the result is what the chain computes.
func ParseScenario(r io.Reader) (yuma.Params, yuma.Input, error) {
	var sc scenario
	dec := json.NewDecoder(io.LimitReader(r, maxScenarioBytes))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return yuma.Params{}, yuma.Input{}, fmt.Errorf("scenario: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return yuma.Params{}, yuma.Input{}, errors.New("scenario: unexpected data after the JSON object")
	}
	p := yuma.DefaultParams()
	switch sc.Version {
	case "", "yuma3":
		p.Version = yuma.Yuma3
	case "yuma2":
		p.Version = yuma.Yuma2
	default:
		return p, yuma.Input{}, fmt.Errorf("scenario: version %q (want yuma3 or yuma2)", sc.Version)
	}
	for _, f := range []struct {
		name string
		num  json.Number
		dst  *yuma.Fixed
	}{{"kappa", sc.Kappa, &p.Kappa}, {"bonds_moving_average", sc.BondsMovingAverage, &p.BondsMovingAverage}, {"bonds_penalty", sc.BondsPenalty, &p.BondsPenalty}} {
		if f.num == "" {
			continue
		}
		v, err := fraction(f.name, f.num)
		if err != nil {
			return p, yuma.Input{}, err
		}
		*f.dst = v
	}
	if sc.MaxValidators != nil {
		if *sc.MaxValidators < 0 {
			return p, yuma.Input{}, errors.New("scenario: max_validators must not be negative")
		}
		p.MaxValidators = *sc.MaxValidators
	}
	n := len(sc.Stake)
	if n == 0 {
		return p, yuma.Input{}, errors.New("scenario: stake is empty (n = 0)")
	}
	if n > 4096 {
		return p, yuma.Input{}, fmt.Errorf("scenario: %d UIDs, at most 4096", n)
	}
	in := yuma.Input{OwnerUID: -1, Active: sc.Active, PrevPermit: sc.ValidatorPermit}
	if in.Active == nil {
		in.Active = make([]bool, n)
		for i := range in.Active {
			in.Active[i] = true
		}
	}
	var err error
	if in.Stake, err = parseStake(sc.Stake); err != nil {
		return p, in, err
	}
	if sc.Emission != "" {
		if in.Emission, err = strconv.ParseUint(sc.Emission.String(), 10, 64); err != nil {
			return p, in, fmt.Errorf("scenario: emission %q must be a whole number of base units", sc.Emission)
		}
	}
	if len(sc.Weights) != n {
		return p, in, fmt.Errorf("scenario: weights has %d rows, stake has %d entries", len(sc.Weights), n)
	}
	in.Weights, err = sparse("weights", sc.Weights, n, func(i, j int, w json.Number) (yuma.Weight, bool, error) {
		v, err := strconv.ParseUint(w.String(), 10, 16)
		if err != nil {
			return yuma.Weight{}, false, fmt.Errorf("scenario: weights[%d][%d] = %s is not an integer in 0..65535", i, j, w)
		}
		return yuma.Weight{UID: uint16(j), Value: uint16(v)}, v > 0, nil
	})
	if err != nil {
		return p, in, err
	}
	if sc.Bonds != nil {
		if len(sc.Bonds) != n {
			return p, in, fmt.Errorf("scenario: bonds has %d rows, want %d", len(sc.Bonds), n)
		}
		in.PrevBonds, err = sparse("bonds", sc.Bonds, n, func(i, j int, b json.Number) (yuma.Bond, bool, error) {
			v, err := fraction(fmt.Sprintf("bonds[%d][%d]", i, j), b)
			return yuma.Bond{UID: uint16(j), Value: v}, v > 0, err
		})
		if err != nil {
			return p, in, err
		}
	}
	return p, in, nil
}

// sparse reads a square n×n matrix of a scenario row by row into yuma's
// sparse rows, keeping the entries entry marks as non-zero; a ragged row is
// refused, since yuma would read it as a different network.
func sparse[T any](name string, rows [][]json.Number, n int, entry func(i, j int, v json.Number) (T, bool, error)) ([][]T, error) {
	out := make([][]T, n)
	for i, row := range rows {
		if len(row) != n {
			return nil, fmt.Errorf("scenario: %s row %d has %d entries, want %d (ragged matrix)", name, i, len(row), n)
		}
		for j, v := range row {
			e, keep, err := entry(i, j, v)
			if err != nil {
				return nil, err
			}
			if keep {
				out[i] = append(out[i], e)
			}
		}
	}
	return out, nil
}

// fraction reads a proportion in [0, 1] exactly (rounded to the nearest
// 2^-32, never through float64).
func fraction(name string, num json.Number) (yuma.Fixed, error) {
	v, err := yuma.ParseFixed(num.String())
	if err != nil || v > yuma.One {
		return 0, fmt.Errorf("scenario: %s = %s must be a number between 0 and 1", name, num)
	}
	return v, nil
}

// parseStake takes whole base units as they are; if any entry has a decimal
// point or an exponent, all are read as exact decimals below 2^32 (stake is
// normalized, so only ratios matter).
func parseStake(nums []json.Number) ([]uint64, error) {
	out := make([]uint64, len(nums))
	decimal := false
	for _, s := range nums {
		if strings.HasPrefix(s.String(), "-") {
			return nil, fmt.Errorf("scenario: negative stake %s", s)
		}
		decimal = decimal || strings.ContainsAny(s.String(), ".eE")
	}
	for i, s := range nums {
		if decimal {
			v, err := yuma.ParseFixed(s.String())
			if err != nil {
				return nil, fmt.Errorf("scenario: stake[%d] = %s: %v", i, s, err)
			}
			out[i] = uint64(v)
			continue
		}
		v, err := strconv.ParseUint(s.String(), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("scenario: stake[%d] = %s: %v", i, s, err)
		}
		out[i] = v
	}
	return out, nil
}

// Output is one epoch's result: fractions as the shortest decimals that
// read back as the exact fixed-point values, emissions in base units (they
// sum to the scenario's emission less what yuma left unallocated).
type Output struct {
	Consensus         []json.Number   `json:"consensus"`
	ValidatorTrust    []json.Number   `json:"validator_trust"`
	Incentive         []json.Number   `json:"incentive"`
	Dividends         []json.Number   `json:"dividends"`
	Bonds             [][]json.Number `json:"bonds"`
	ValidatorPermit   []bool          `json:"validator_permit"`
	MinerEmission     []uint64        `json:"miner_emission"`
	ValidatorEmission []uint64        `json:"validator_emission"`
}

func decimals(v []yuma.Fixed) []json.Number {
	out := make([]json.Number, len(v))
	for i, x := range v {
		out[i] = json.Number(x.String())
	}
	return out
}

// NewOutput writes an epoch's result in the scenario's terms, with bonds as
// a dense n×n matrix.
func NewOutput(o *yuma.Output) Output {
	n := len(o.Incentive)
	bonds := make([][]json.Number, n)
	for i := range n {
		row := make([]yuma.Fixed, n)
		for _, b := range o.Bonds[i] {
			row[b.UID] = b.Value
		}
		bonds[i] = decimals(row)
	}
	return Output{
		Consensus: decimals(o.Consensus), ValidatorTrust: decimals(o.ValidatorTrust),
		Incentive: decimals(o.Incentive), Dividends: decimals(o.Dividends), Bonds: bonds,
		ValidatorPermit: o.NewPermit, MinerEmission: o.MinerEmission, ValidatorEmission: o.ValidatorEmission,
	}
}
