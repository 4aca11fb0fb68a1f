package sim

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/agoranet/agora/yuma"
)

func FuzzParseScenario(f *testing.F) {
	f.Add(`{"stake":[100,0],"weights":[[0,65535],[0,0]],"bonds":[[0,0.5],[0,0]],"emission":10}`)
	f.Add(`{"version":"yuma2","kappa":0.5,"stake":[1.5,2],"weights":[[1,2],[3,4]]}`)
	f.Add(`{"kappa":5e-1,"bonds_penalty":1E0,"stake":[1e3,2],"weights":[[1,2],[3,4]],"active":[true,false],"validator_permit":[false,true],"max_validators":1}`)
	f.Add(`{"stake":[18446744073709551615,1],"weights":[[0,1],[1,0]],"emission":18446744073709551615}`)
	f.Add(`{"kappa":1e-999999999,"stake":[1],"weights":[[0]]}`)
	f.Fuzz(func(t *testing.T, s string) {
		p, in, err := ParseScenario(strings.NewReader(s))
		if err != nil {
			return
		}
		// Whatever parses must run (or be rejected by yuma) without
		// panicking, and the emission must add up.
		out, err := yuma.Epoch(p, in)
		if err != nil {
			return
		}
		res := NewOutput(out)
		var total uint64
		for i := range res.MinerEmission {
			total += res.MinerEmission[i] + res.ValidatorEmission[i]
		}
		if total+out.Unallocated != in.Emission {
			t.Fatalf("emission %d + %d unallocated != %d", total, out.Unallocated, in.Emission)
		}
		if _, err := json.Marshal(res); err != nil {
			t.Fatalf("output does not encode: %v", err)
		}
	})
}
