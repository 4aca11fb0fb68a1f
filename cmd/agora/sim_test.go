package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agoranet/agora/yuma"
)

func TestSimYuma(t *testing.T) {
	scenario := `{"version":"yuma3","kappa":0.5,"bonds_moving_average":0.9,"bonds_penalty":1.0,
	  "stake":[100,0,0],"weights":[[0,30000,10000],[0,0,0],[0,0,0]],"emission":1000}`
	f := filepath.Join(t.TempDir(), "s.json")
	os.WriteFile(f, []byte(scenario), 0o600)
	out, code := runCLI(t, context.Background(), "sim", "yuma", "--input", f)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, out)
	}
	var res struct {
		Incentive         []float64   `json:"incentive"`
		Dividends         []float64   `json:"dividends"`
		Bonds             [][]float64 `json:"bonds"`
		MinerEmission     []uint64    `json:"miner_emission"`
		ValidatorEmission []uint64    `json:"validator_emission"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.Incentive[1] != 0.75 || res.Incentive[2] != 0.25 || res.Dividends[0] != 1 {
		t.Fatalf("incentive %v dividends %v", res.Incentive, res.Dividends)
	}
	if res.MinerEmission[1] != 375 || res.MinerEmission[2] != 125 || res.ValidatorEmission[0] != 500 {
		t.Fatalf("emission %v %v", res.MinerEmission, res.ValidatorEmission)
	}
	if len(res.Bonds) != 3 || len(res.Bonds[0]) != 3 || res.Bonds[0][1] < 0.0749 || res.Bonds[0][1] > 0.0751 {
		t.Fatalf("bonds %v", res.Bonds)
	}
}

func TestSimYumaRejects(t *testing.T) {
	cases := map[string]string{
		"ragged":         `{"stake":[1,1],"weights":[[0,1],[0]],"emission":1}`,
		"negative stake": `{"stake":[-1,1],"weights":[[0,1],[0,0]],"emission":1}`,
		"n = 0":          `{"stake":[],"weights":[],"emission":1}`,
		"weight range":   `{"stake":[1,1],"weights":[[0,70000],[0,0]],"emission":1}`,
		"bad version":    `{"version":"yuma9","stake":[1],"weights":[[0]]}`,
		"kappa above 1":  `{"kappa":1.5,"stake":[1],"weights":[[0]]}`,
		"unknown field":  `{"stakes":[1],"weights":[[0]]}`,
		"not json":       `stake: 1`,
	}
	for name, sc := range cases {
		root := newRootCmd()
		root.SetIn(strings.NewReader(sc))
		root.SetOut(new(strings.Builder))
		root.SetErr(new(strings.Builder))
		root.SetArgs([]string{"sim", "yuma", "--input", "-"})
		if code := exitCode(root.ExecuteContext(context.Background())); code != exitUsage {
			t.Errorf("%s: exit %d, want %d", name, code, exitUsage)
		}
	}
}

func FuzzParseScenario(f *testing.F) {
	f.Add(`{"stake":[100,0],"weights":[[0,65535],[0,0]],"bonds":[[0,0.5],[0,0]],"emission":10}`)
	f.Add(`{"version":"yuma2","kappa":0.5,"stake":[1.5,2],"weights":[[1,2],[3,4]]}`)
	f.Fuzz(func(t *testing.T, s string) {
		p, in, err := parseScenario(strings.NewReader(s))
		if err != nil {
			return
		}
		// Whatever parses must run (or be rejected by yuma) without panicking.
		_, _ = yuma.Epoch(p, in)
	})
}
