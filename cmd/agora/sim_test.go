package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agoranet/agora/sim"
	"github.com/agoranet/agora/yuma"
)

// runSim runs `agora sim yuma --input - [extra...]` on a scenario.
func runSim(t *testing.T, scenario string, extra ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetIn(strings.NewReader(scenario))
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"sim", "yuma", "--input", "-"}, extra...))
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errOut.WriteString(err.Error())
	}
	return out.String(), errOut.String(), exitCode(err)
}

func TestSimYumaFile(t *testing.T) {
	scenario := `{"version":"yuma3","kappa":0.5,"bonds_moving_average":0.9,"bonds_penalty":1.0,
	  "stake":[100,0,0],"weights":[[0,30000,10000],[0,0,0],[0,0,0]],"emission":1000}`
	f := filepath.Join(t.TempDir(), "s.json")
	if err := os.WriteFile(f, []byte(scenario), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, extra := range [][]string{nil, {"-o", "json"}} {
		out, code := runCLI(t, context.Background(), append([]string{"sim", "yuma", "--input", f}, extra...)...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, out)
		}
		var res sim.Output
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		// Exact decimals: 0.75 and 0.25 are representable, bonds α·W = 0.075
		// prints as the shortest decimal that reads back exactly.
		if got := []json.Number{res.Incentive[1], res.Incentive[2], res.Dividends[0], res.Consensus[1], res.ValidatorTrust[0]}; !equalNums(got, "0.75", "0.25", "1", "0.75", "1") {
			t.Fatalf("incentive/dividends/consensus/trust %v", got)
		}
		if len(res.Bonds) != 3 || len(res.Bonds[0]) != 3 || res.Bonds[0][1] != "0.075" || res.Bonds[0][2] != "0.025" || res.Bonds[1][0] != "0" {
			t.Fatalf("bonds %v", res.Bonds)
		}
		if res.MinerEmission[1] != 375 || res.MinerEmission[2] != 125 || res.ValidatorEmission[0] != 500 {
			t.Fatalf("emission %v %v", res.MinerEmission, res.ValidatorEmission)
		}
		if !res.ValidatorPermit[0] || res.ValidatorPermit[1] {
			t.Fatalf("permits %v", res.ValidatorPermit)
		}
	}
}

func equalNums(got []json.Number, want ...string) bool {
	for i := range got {
		if string(got[i]) != want[i] {
			return false
		}
	}
	return len(got) == len(want)
}

// TestSimYumaBondsFeedBack runs several epochs through the CLI, feeding each
// output's bonds into the next scenario; the result must equal the library's
// own multi-epoch run exactly, and the emission must always sum to E.
func TestSimYumaBondsFeedBack(t *testing.T) {
	base := map[string]any{
		"version": "yuma2", "kappa": json.Number("5e-1"), "stake": []json.Number{"70", "30", "0", "0"},
		"weights":  [][]int{{0, 0, 65535, 1000}, {0, 0, 65535, 65535}, {0, 0, 0, 0}, {0, 0, 0, 0}},
		"emission": 999_999_999,
	}
	p := yuma.DefaultParams()
	p.Version, p.Kappa = yuma.Yuma2, yuma.One/2
	in := yuma.Input{Stake: []uint64{70, 30, 0, 0}, Active: []bool{true, true, true, true}, OwnerUID: -1, Emission: 999_999_999,
		Weights: [][]yuma.Weight{{{UID: 2, Value: 65535}, {UID: 3, Value: 1000}}, {{UID: 2, Value: 65535}, {UID: 3, Value: 65535}}, nil, nil}}
	for epoch := range 5 {
		sc, _ := json.Marshal(base)
		out, errOut, code := runSim(t, string(sc))
		if code != exitOK {
			t.Fatalf("epoch %d: exit %d: %s", epoch, code, errOut)
		}
		var res sim.Output
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		lib, err := yuma.Epoch(p, in)
		if err != nil {
			t.Fatal(err)
		}
		in.PrevBonds = lib.Bonds
		for i, row := range res.Bonds {
			for j, b := range row {
				var want yuma.Fixed
				for _, e := range lib.Bonds[i] {
					if int(e.UID) == j {
						want = e.Value
					}
				}
				got, err := yuma.ParseFixed(b.String())
				if err != nil || got != want {
					t.Fatalf("epoch %d: bond[%d][%d] = %s, library %s", epoch, i, j, b, want)
				}
			}
		}
		var total uint64
		for i := range res.MinerEmission {
			total += res.MinerEmission[i] + res.ValidatorEmission[i]
		}
		if total != 999_999_999 {
			t.Fatalf("epoch %d: emission sums to %d", epoch, total)
		}
		base["bonds"] = res.Bonds
	}
}

func TestSimYumaRejects(t *testing.T) {
	for _, c := range []struct{ name, scenario, msg string }{
		{"ragged", `{"stake":[1,1],"weights":[[0,1],[0]],"emission":1}`, "ragged"},
		{"too few rows", `{"stake":[1,1],"weights":[[0,1]],"emission":1}`, "weights has 1 rows"},
		{"negative stake", `{"stake":[-1,1],"weights":[[0,1],[0,0]],"emission":1}`, "negative stake"},
		{"n = 0", `{"stake":[],"weights":[],"emission":1}`, "n = 0"},
		{"no stake", `{"weights":[],"emission":1}`, "n = 0"},
		{"weight above u16", `{"stake":[1,1],"weights":[[0,70000],[0,0]],"emission":1}`, "0..65535"},
		{"negative weight", `{"stake":[1,1],"weights":[[0,-1],[0,0]],"emission":1}`, "0..65535"},
		{"fractional weight", `{"stake":[1,1],"weights":[[0,0.5],[0,0]],"emission":1}`, "0..65535"},
		{"bad version", `{"version":"yuma9","stake":[1],"weights":[[0]]}`, "version"},
		{"kappa above 1", `{"kappa":1.5,"stake":[1],"weights":[[0]]}`, "kappa"},
		{"kappa negative", `{"kappa":-0.5,"stake":[1],"weights":[[0]]}`, "kappa"},
		{"bma above 1", `{"bonds_moving_average":2,"stake":[1],"weights":[[0]]}`, "bonds_moving_average"},
		{"bond above 1", `{"stake":[1,1],"weights":[[0,1],[0,0]],"bonds":[[0,1.5],[0,0]]}`, "bonds[0][1]"},
		{"ragged bonds", `{"stake":[1,1],"weights":[[0,1],[0,0]],"bonds":[[0,1],[0]]}`, "ragged"},
		{"emission fraction", `{"stake":[1],"weights":[[0]],"emission":1.5}`, "emission"},
		{"stake overflow", `{"stake":[18446744073709551615,1],"weights":[[0,0],[0,0]]}`, "overflows"},
		{"permit length", `{"stake":[1,1],"weights":[[0,1],[0,0]],"validator_permit":[true]}`, "validator_permit"},
		{"unknown field", `{"stakes":[1],"weights":[[0]]}`, "unknown field"},
		{"trailing data", `{"stake":[1],"weights":[[0]]} {}`, "after the JSON"},
		{"not json", `stake: 1`, "scenario"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, errOut, code := runSim(t, c.scenario)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d (%s)", code, exitUsage, errOut)
			}
			if !strings.Contains(errOut, c.msg) || strings.Contains(strings.TrimSpace(errOut), "\n") {
				t.Fatalf("error %q: want one line mentioning %q", errOut, c.msg)
			}
		})
	}
	if _, code := runCLI(t, context.Background(), "sim", "yuma"); code != exitUsage {
		t.Errorf("missing --input: exit %d", code)
	}
	if _, code := runCLI(t, context.Background(), "sim", "yuma", "--input", filepath.Join(t.TempDir(), "none.json")); code != exitUsage {
		t.Errorf("missing file: exit %d", code)
	}
}
