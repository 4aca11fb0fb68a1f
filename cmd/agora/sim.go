package main

import (
	"encoding/json"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/sim"
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
			p, in, err := sim.ParseScenario(r)
			if err != nil {
				return usageError{err}
			}
			out, err := yuma.Epoch(p, in)
			if err != nil {
				return usageError{err}
			}
			// JSON is the natural form in both output modes: the text
			// form is the same document.
			res := sim.NewOutput(out)
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
