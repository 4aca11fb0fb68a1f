package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/yuma"
)

func newSimCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulate parts of the network offline",
	}
	cmd.AddCommand(newSimYumaCmd())
	return cmd
}

func newSimYumaCmd() *cobra.Command {
	var input string
	cmd := &cobra.Command{
		Use:   "yuma --input FILE|-",
		Short: "Run one Yuma Consensus epoch on a JSON scenario and print the result as JSON",
		Long: `sim yuma runs one epoch of the chain's own yuma package on a scenario, so a
subnet owner can try hyperparameters before setting them.

Input:
  {"version": "yuma3" | "yuma2", "kappa": 0.5, "bonds_moving_average": 0.9,
   "bonds_penalty": 1.0, "stake": [...], "weights": [[n×n u16; row i = weights set by uid i]],
   "bonds": [[previous bonds as proportions 0..1]],      (optional)
   "validator_permit": [bool...],                         (optional; default: non-zero stake)
   "active": [bool...],                                   (optional; default: all)
   "max_validators": 64,                                  (optional)
   "emission": N}                                         (base units)

Numbers are read exactly, never through float64: fractions (kappa, bonds,
decimal stake) are rounded to the nearest 2^-32, the chain's fixed point;
weights, integer stake and emission must be whole numbers.

Output: consensus, validator_trust, incentive, dividends and bonds as decimal
fractions (the shortest decimal that reads back as the exact fixed-point
value, so output bonds can be fed back in as the next epoch's bonds);
miner_emission and validator_emission in base units (they sum to the
emission exactly); validator_permit, the permits for the next epoch.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r io.Reader
			switch input {
			case "":
				return usageErrorf("--input FILE (or - for standard input) is required")
			case "-":
				r = cmd.InOrStdin()
			default:
				f, err := os.Open(input)
				if err != nil {
					return usageErrorf("open --input: %v", err)
				}
				defer f.Close()
				r = f
			}
			p, in, err := parseScenario(r)
			if err != nil {
				return usageError{err}
			}
			out, err := yuma.Epoch(p, in)
			if err != nil {
				return usageError{err}
			}
			// JSON is the natural form in both output modes: the text
			// form is the same document.
			res := simResult(out)
			return printResult(cmd, res, func(w io.Writer) error {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			})
		},
	}
	cmd.Flags().StringVar(&input, "input", "", "scenario JSON file, or - for standard input")
	return cmd
}

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

// parseScenario decodes a sim scenario exactly: decimals become fixed point
// without passing through float64, so the result is what the chain computes.
func parseScenario(r io.Reader) (yuma.Params, yuma.Input, error) {
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
	in.Weights = make([][]yuma.Weight, n)
	for i, row := range sc.Weights {
		if len(row) != n {
			return p, in, fmt.Errorf("scenario: weights row %d has %d entries, want %d (ragged matrix)", i, len(row), n)
		}
		for j, w := range row {
			v, err := strconv.ParseUint(w.String(), 10, 16)
			if err != nil {
				return p, in, fmt.Errorf("scenario: weights[%d][%d] = %s is not an integer in 0..65535", i, j, w)
			}
			if v > 0 {
				in.Weights[i] = append(in.Weights[i], yuma.Weight{UID: uint16(j), Value: uint16(v)})
			}
		}
	}
	if sc.Bonds != nil {
		if len(sc.Bonds) != n {
			return p, in, fmt.Errorf("scenario: bonds has %d rows, want %d", len(sc.Bonds), n)
		}
		in.PrevBonds = make([][]yuma.Bond, n)
		for i, row := range sc.Bonds {
			if len(row) != n {
				return p, in, fmt.Errorf("scenario: bonds row %d has %d entries, want %d (ragged matrix)", i, len(row), n)
			}
			for j, b := range row {
				v, err := fraction(fmt.Sprintf("bonds[%d][%d]", i, j), b)
				if err != nil {
					return p, in, err
				}
				if v > 0 {
					in.PrevBonds[i] = append(in.PrevBonds[i], yuma.Bond{UID: uint16(j), Value: v})
				}
			}
		}
	}
	return p, in, nil
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

type simOutput struct {
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

func simResult(o *yuma.Output) simOutput {
	n := len(o.Incentive)
	bonds := make([][]json.Number, n)
	for i := range n {
		row := make([]yuma.Fixed, n)
		for _, b := range o.Bonds[i] {
			row[b.UID] = b.Value
		}
		bonds[i] = decimals(row)
	}
	return simOutput{
		Consensus: decimals(o.Consensus), ValidatorTrust: decimals(o.ValidatorTrust),
		Incentive: decimals(o.Incentive), Dividends: decimals(o.Dividends), Bonds: bonds,
		ValidatorPermit: o.NewPermit, MinerEmission: o.MinerEmission, ValidatorEmission: o.ValidatorEmission,
	}
}
