package yuma

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

func f(x Fixed) float64 { return float64(x) / float64(One) }

func near(t *testing.T, what string, got Fixed, want float64) {
	t.Helper()
	if math.Abs(f(got)-want) > 1e-6 {
		t.Errorf("%s = %.9f, want %.9f", what, f(got), want)
	}
}

func sum(v []uint64) uint64 {
	var s uint64
	for _, x := range v {
		s += x
	}
	return s
}

func allActive(n int) []bool {
	a := make([]bool, n)
	for i := range a {
		a[i] = true
	}
	return a
}

func TestLoneHonestValidator(t *testing.T) {
	in := Input{
		Stake:    []uint64{100, 0, 0},
		Weights:  [][]Weight{{{1, 30000}, {2, 10000}}, nil, nil},
		Active:   allActive(3),
		OwnerUID: -1,
		Emission: 1000,
	}
	out, err := Epoch(DefaultParams(), in)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "C1", out.Consensus[1], 0.75)
	near(t, "C2", out.Consensus[2], 0.25)
	near(t, "I1", out.Incentive[1], 0.75)
	near(t, "I2", out.Incentive[2], 0.25)
	near(t, "trust", out.ValidatorTrust[0], 1)
	near(t, "D0", out.Dividends[0], 1)
	near(t, "bond 0→1", out.Bonds[0][0].Value, 0.075) // α·W = 0.1 × 0.75
	if got := []uint64{out.MinerEmission[1], out.MinerEmission[2], out.ValidatorEmission[0]}; !reflect.DeepEqual(got, []uint64{375, 125, 500}) {
		t.Fatalf("emission %v, want [375 125 500]", got)
	}
	if !out.NewPermit[0] || out.NewPermit[1] {
		t.Fatalf("permits %v", out.NewPermit)
	}
}

func TestTwoValidatorsDisagree(t *testing.T) {
	in := Input{
		Stake:    []uint64{60, 40, 0, 0},
		Weights:  [][]Weight{{{2, 65535}}, {{3, 65535}}, nil, nil},
		Active:   allActive(4),
		OwnerUID: -1,
		Emission: 1_000_000,
	}
	out, err := Epoch(DefaultParams(), in)
	if err != nil {
		t.Fatal(err)
	}
	// Miner 2 has 60% of stake behind it (≥ κ); miner 3 only 40%.
	near(t, "C2", out.Consensus[2], 1)
	near(t, "C3", out.Consensus[3], 0)
	near(t, "I2", out.Incentive[2], 1)
	near(t, "I3", out.Incentive[3], 0)
	near(t, "trust 0", out.ValidatorTrust[0], 1)
	near(t, "trust 1", out.ValidatorTrust[1], 0)
	near(t, "D0", out.Dividends[0], 1)
	if out.MinerEmission[3] != 0 || out.ValidatorEmission[1] != 0 {
		t.Fatalf("the outvoted side earned: miner3 %d validator1 %d", out.MinerEmission[3], out.ValidatorEmission[1])
	}
}

func TestCollusionBelowKappa(t *testing.T) {
	// Three honest validators (70%) spread weight over honest miners 4 and 5;
	// one colluder (30%) puts everything on its own miner 6.
	in := Input{
		Stake: []uint64{25, 25, 20, 30, 0, 0, 0},
		Weights: [][]Weight{
			{{4, 40000}, {5, 25535}}, {{4, 40000}, {5, 25535}}, {{4, 40000}, {5, 25535}},
			{{6, 65535}}, nil, nil, nil,
		},
		Active:   allActive(7),
		OwnerUID: -1,
		Emission: 1000,
	}
	out, err := Epoch(DefaultParams(), in)
	if err != nil {
		t.Fatal(err)
	}
	if out.Incentive[6] != 0 || out.MinerEmission[6] != 0 {
		t.Fatalf("colluders' miner lifted: incentive %s emission %d", out.Incentive[6], out.MinerEmission[6])
	}
	if out.Incentive[4] == 0 || out.Incentive[5] == 0 {
		t.Fatalf("honest miners got nothing: %v", out.Incentive)
	}
	if out.ValidatorTrust[3] != 0 || out.Dividends[3] != 0 {
		t.Fatalf("colluding validator kept trust %s dividends %s", out.ValidatorTrust[3], out.Dividends[3])
	}
}

func TestBondsConverge(t *testing.T) {
	for _, v := range []Version{Yuma3, Yuma2} {
		p := DefaultParams()
		p.Version = v
		in := Input{
			Stake:    []uint64{70, 30, 0, 0},
			Weights:  [][]Weight{{{2, 65535}, {3, 65535}}, {{2, 65535}, {3, 65535}}, nil, nil},
			Active:   allActive(4),
			OwnerUID: -1,
			Emission: 1000,
		}
		var last *Output
		for epoch := 0; epoch < 60; epoch++ {
			out, err := Epoch(p, in)
			if err != nil {
				t.Fatal(err)
			}
			in.PrevBonds = out.Bonds
			last = out
		}
		switch v {
		case Yuma3:
			// B → W̃ = 0.5 per entry: 1 − 0.9^60 ≈ 0.998.
			near2 := math.Abs(f(last.Bonds[0][0].Value)-0.5) < 0.01
			if !near2 {
				t.Errorf("yuma3 bond %s, want ≈ 0.5", last.Bonds[0][0].Value)
			}
		case Yuma2:
			// B → stake share per column.
			if math.Abs(f(last.Bonds[0][0].Value)-0.7) > 0.01 || math.Abs(f(last.Bonds[1][0].Value)-0.3) > 0.01 {
				t.Errorf("yuma2 bonds %v, want ≈ 0.7/0.3", last.Bonds)
			}
		}
		// Dividends follow stake when everyone agrees.
		if math.Abs(f(last.Dividends[0])-0.7) > 0.01 {
			t.Errorf("%v: dividends %v, want ≈ 0.7/0.3", v, last.Dividends)
		}
	}
}

func TestOwnerSelfWeightException(t *testing.T) {
	in := Input{
		Stake:    []uint64{50, 50, 0},
		Weights:  [][]Weight{{{0, 65535}}, {{1, 65535}}, nil},
		Active:   allActive(3),
		OwnerUID: 0,
		Emission: 100,
	}
	out, err := Epoch(DefaultParams(), in)
	if err != nil {
		t.Fatal(err)
	}
	// The owner's self-weight counts (50% ≥ κ); validator 1's is dropped.
	near(t, "C0", out.Consensus[0], 1)
	near(t, "C1", out.Consensus[1], 0)
	near(t, "trust 1", out.ValidatorTrust[1], 0)
}

func TestPermitsTopKAndThreshold(t *testing.T) {
	p := DefaultParams()
	p.MaxValidators = 2
	p.StakeThreshold = 10
	in := Input{
		Stake:    []uint64{5, 30, 20, 20, 0},
		Active:   allActive(5),
		OwnerUID: 0, // below threshold but exempt
		Emission: 0,
	}
	out, err := Epoch(p, in)
	if err != nil {
		t.Fatal(err)
	}
	// Top 2: uid 1 (30), then uid 2 beats uid 3 on the tie by lower UID.
	if want := []bool{false, true, true, false, false}; !reflect.DeepEqual(out.NewPermit, want) {
		t.Fatalf("permits %v, want %v", out.NewPermit, want)
	}
	p.StakeThreshold = 25
	in.OwnerUID = -1
	out, _ = Epoch(p, in)
	if want := []bool{false, true, false, false, false}; !reflect.DeepEqual(out.NewPermit, want) {
		t.Fatalf("with threshold 25: permits %v, want %v", out.NewPermit, want)
	}
}

func TestActivityAndPrevPermitMask(t *testing.T) {
	p := DefaultParams()
	p.ActivityCutoff = 100
	in := Input{
		Block:      1000,
		Stake:      []uint64{60, 40, 0},
		Weights:    [][]Weight{{{2, 65535}}, {{2, 65535}}, nil},
		LastUpdate: []uint64{850, 950, 0}, // uid 0 went silent
		OwnerUID:   -1,
		Emission:   100,
	}
	out, err := Epoch(p, in)
	if err != nil {
		t.Fatal(err)
	}
	if out.Active[0] || !out.Active[1] {
		t.Fatalf("active %v", out.Active)
	}
	near(t, "Sa0", out.ActiveStake[0], 0)
	near(t, "Sa1", out.ActiveStake[1], 1)
	in.LastUpdate[0] = 990
	in.PrevPermit = []bool{false, true, false} // uid 0 had no permit last epoch
	out, _ = Epoch(p, in)
	near(t, "Sa0 without permit", out.ActiveStake[0], 0)
	if !out.NewPermit[0] {
		t.Fatal("uid 0 should earn a permit for the next epoch")
	}
}

func TestRegistrationMasking(t *testing.T) {
	in := Input{
		Block:        1000,
		Stake:        []uint64{100, 0, 0},
		Weights:      [][]Weight{{{1, 65535}, {2, 65535}}, nil, nil},
		LastUpdate:   []uint64{900, 0, 0},
		RegisteredAt: []uint64{0, 950, 100}, // uid 1 re-registered after the weights were set
		OwnerUID:     -1,
		Emission:     100,
	}
	out, err := Epoch(DefaultParams(), in)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "I1", out.Incentive[1], 0)
	near(t, "I2", out.Incentive[2], 1)
	// Commit-reveal variant: a commit made before uid 2 registered is masked too.
	in.FirstCommitBlock = []uint64{50, 0, 0}
	out, _ = Epoch(DefaultParams(), in)
	near(t, "I2 under commit-reveal", out.Incentive[2], 0)
	// Bonds to a UID registered since the last epoch restart from zero.
	in.FirstCommitBlock = nil
	in.LastEpochBlock = 940
	in.PrevBonds = [][]Bond{{{1, One}, {2, One / 2}}, nil, nil}
	out, _ = Epoch(DefaultParams(), in)
	for _, b := range out.Bonds[0] {
		if b.UID == 1 {
			t.Fatalf("bond to re-registered uid 1 survived: %v", out.Bonds[0])
		}
	}
}

func TestYuma2DiffersFromYuma3(t *testing.T) {
	in := Input{
		Stake:     []uint64{70, 30, 0, 0},
		Weights:   [][]Weight{{{2, 65535}}, {{2, 30000}, {3, 35535}}, nil, nil},
		Active:    allActive(4),
		OwnerUID:  -1,
		PrevBonds: [][]Bond{{{2, One / 2}}, {{3, One / 4}}, nil, nil},
		Emission:  1000,
	}
	p3, p2 := DefaultParams(), DefaultParams()
	p2.Version = Yuma2
	o3, _ := Epoch(p3, in)
	o2, _ := Epoch(p2, in)
	if reflect.DeepEqual(o3.Bonds, o2.Bonds) {
		t.Fatal("yuma2 and yuma3 produced identical bonds")
	}
	if !reflect.DeepEqual(o3.Incentive, o2.Incentive) {
		t.Fatal("incentive must not depend on the bond model")
	}
}

func TestRejectsBadInput(t *testing.T) {
	good := Input{Stake: []uint64{1, 1}, Active: allActive(2), OwnerUID: -1}
	cases := map[string]func(in *Input, p *Params){
		"no uids":          func(in *Input, _ *Params) { in.Stake = nil },
		"ragged weights":   func(in *Input, _ *Params) { in.Weights = [][]Weight{nil} },
		"uid out of range": func(in *Input, _ *Params) { in.Weights = [][]Weight{{{5, 1}}, nil} },
		"duplicate uid":    func(in *Input, _ *Params) { in.Weights = [][]Weight{{{1, 1}, {1, 2}}, nil} },
		"no activity":      func(in *Input, _ *Params) { in.Active = nil },
		"bond above one":   func(in *Input, _ *Params) { in.PrevBonds = [][]Bond{{{1, One + 1}}, nil} },
		"kappa above one":  func(_ *Input, p *Params) { p.Kappa = One + 1 },
		"bad version":      func(_ *Input, p *Params) { p.Version = 9 },
		"owner range":      func(in *Input, _ *Params) { in.OwnerUID = 2 },
	}
	for name, mutate := range cases {
		in, p := good, DefaultParams()
		mutate(&in, &p)
		if _, err := Epoch(p, in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func randomInput(r *rand.Rand, n, validators int) Input {
	validators = min(validators, n)
	in := Input{Block: 10_000, Stake: make([]uint64, n), Weights: make([][]Weight, n), LastUpdate: make([]uint64, n),
		RegisteredAt: make([]uint64, n), PrevBonds: make([][]Bond, n), OwnerUID: -1, Emission: r.Uint64N(1_000_000_000_000)}
	for i := range validators {
		in.Stake[i] = r.Uint64N(1_000_000_000_000)
		in.LastUpdate[i] = 9_000 + r.Uint64N(1000)
		for j := range n {
			if r.IntN(3) == 0 {
				in.Weights[i] = append(in.Weights[i], Weight{uint16(j), uint16(r.IntN(65536))})
			}
			if r.IntN(4) == 0 {
				in.PrevBonds[i] = append(in.PrevBonds[i], Bond{uint16(j), Fixed(r.Uint64N(uint64(One)))})
			}
		}
	}
	for j := range n {
		in.RegisteredAt[j] = r.Uint64N(9_500)
	}
	return in
}

func TestEmissionSumsExactlyAndDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		in := randomInput(r, 2+r.IntN(40), 1+r.IntN(8))
		p := DefaultParams()
		if trial%2 == 1 {
			p.Version = Yuma2
		}
		a, err := Epoch(p, in)
		if err != nil {
			t.Fatal(err)
		}
		if got := sum(a.MinerEmission) + sum(a.ValidatorEmission) + a.Unallocated; got != in.Emission {
			t.Fatalf("trial %d: parts sum to %d, emission %d", trial, got, in.Emission)
		}
		if a.Unallocated != 0 {
			t.Fatalf("trial %d: %d unallocated with stake present", trial, a.Unallocated)
		}
		b, _ := Epoch(p, in)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("trial %d: two runs differ", trial)
		}
	}
}

func TestMatchesFloatReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	for trial := 0; trial < 100; trial++ {
		in := randomInput(r, 2+r.IntN(30), 1+r.IntN(6))
		p := DefaultParams()
		if trial%2 == 1 {
			p.Version = Yuma2
		}
		got, err := Epoch(p, in)
		if err != nil {
			t.Fatal(err)
		}
		want := referenceEpoch(p, in)
		for name, pair := range map[string][2][]float64{
			"consensus": {fs(got.Consensus), want.consensus}, "trust": {fs(got.ValidatorTrust), want.trust},
			"incentive": {fs(got.Incentive), want.incentive}, "dividends": {fs(got.Dividends), want.dividends},
		} {
			for j := range pair[0] {
				if math.Abs(pair[0][j]-pair[1][j]) > 1e-6 {
					t.Fatalf("trial %d (%v) %s[%d] = %.9f, reference %.9f", trial, p.Version, name, j, pair[0][j], pair[1][j])
				}
			}
		}
	}
}

func fs(v []Fixed) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = f(x)
	}
	return out
}

type refOut struct{ consensus, trust, incentive, dividends []float64 }

// referenceEpoch is a dense, float64, straight-from-the-text implementation of
// REFERENCE.md's algorithm, used only to check the fixed-point one.
func referenceEpoch(p Params, in Input) refOut {
	n := len(in.Stake)
	kappa, bma, beta := f(p.Kappa), f(p.BondsMovingAverage), f(p.BondsPenalty)
	active := make([]bool, n)
	for i := range n {
		active[i] = in.LastUpdate[i]+p.ActivityCutoff >= in.Block
	}
	permit := make([]bool, n)
	for i := range n {
		permit[i] = in.Stake[i] >= p.StakeThreshold && in.Stake[i] > 0
	}
	sa := make([]float64, n)
	var tot float64
	for i := range n {
		if active[i] && permit[i] {
			sa[i] = float64(in.Stake[i])
			tot += sa[i]
		}
	}
	for i := range sa {
		if tot > 0 {
			sa[i] /= tot
		}
	}
	W := make([][]float64, n)
	for i := range n {
		W[i] = make([]float64, n)
		if !permit[i] {
			continue
		}
		var s float64
		for _, w := range in.Weights[i] {
			j := int(w.UID)
			if j == i || in.LastUpdate[i] <= in.RegisteredAt[j] {
				continue
			}
			W[i][j] = float64(w.Value)
			s += W[i][j]
		}
		for j := range W[i] {
			if s > 0 {
				W[i][j] /= s
			}
		}
	}
	C := make([]float64, n)
	for j := range n {
		best := 0.0
		for i := range n {
			w := W[i][j]
			if w == 0 || sa[i] == 0 {
				continue
			}
			var st float64
			for k := range n {
				if W[k][j] >= w && sa[k] > 0 {
					st += sa[k]
				}
			}
			if st >= kappa && w > best {
				best = w
			}
		}
		C[j] = best
	}
	trust, R := make([]float64, n), make([]float64, n)
	clip := make([][]float64, n)
	for i := range n {
		clip[i] = make([]float64, n)
		for j := range n {
			clip[i][j] = math.Min(W[i][j], C[j])
			trust[i] += clip[i][j]
			R[j] += sa[i] * clip[i][j]
		}
	}
	I := norm(R)
	prev := make([][]float64, n)
	for i := range n {
		prev[i] = make([]float64, n)
		for _, b := range in.PrevBonds[i] {
			if in.RegisteredAt[b.UID] <= in.LastEpochBlock {
				prev[i][b.UID] = f(b.Value)
			}
		}
	}
	alpha := 1 - bma
	D := make([]float64, n)
	B := make([][]float64, n)
	for i := range n {
		B[i] = make([]float64, n)
	}
	tilde := func(i, j int) float64 { return (1-beta)*W[i][j] + beta*clip[i][j] }
	if p.Version == Yuma3 {
		col := make([]float64, n)
		for i := range n {
			for j := range n {
				B[i][j] = (1-alpha)*prev[i][j] + alpha*tilde(i, j)
				col[j] += B[i][j]
			}
		}
		for i := range n {
			for j := range n {
				if col[j] > 0 {
					D[i] += B[i][j] / col[j] * I[j]
				}
			}
			D[i] *= sa[i]
		}
	} else {
		delta := make([][]float64, n)
		for i := range n {
			delta[i] = make([]float64, n)
			for j := range n {
				delta[i][j] = sa[i] * tilde(i, j)
			}
		}
		colnorm(delta)
		colnorm(prev)
		for i := range n {
			for j := range n {
				B[i][j] = alpha*delta[i][j] + (1-alpha)*prev[i][j]
			}
		}
		colnorm(B)
		for i := range n {
			for j := range n {
				D[i] += B[i][j] * I[j]
			}
		}
	}
	return refOut{consensus: C, trust: trust, incentive: I, dividends: norm(D)}
}

func norm(v []float64) []float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	out := make([]float64, len(v))
	for i, x := range v {
		if s > 0 {
			out[i] = x / s
		}
	}
	return out
}

func colnorm(m [][]float64) {
	n := len(m)
	for j := range n {
		var s float64
		for i := range n {
			s += m[i][j]
		}
		for i := range n {
			if s > 0 {
				m[i][j] /= s
			}
		}
	}
}

func TestFixedParseFormat(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
	}{{"0.5", 0.5}, {"1", 1}, {"0.9", 0.9}, {".25", 0.25}, {"0.000000001", 1e-9}} {
		got, err := ParseFixed(c.in)
		if err != nil || math.Abs(f(got)-c.want) > 1e-9 {
			t.Errorf("ParseFixed(%q) = %v %v", c.in, got, err)
		}
	}
	for _, bad := range []string{"", "-1", "1e5", "abc", "99999999999"} {
		if _, err := ParseFixed(bad); err == nil {
			t.Errorf("ParseFixed(%q) accepted", bad)
		}
	}
	if One.String() != "1" || (One/2).String() != "0.5" {
		t.Fatalf("String: %s %s", One, One/2)
	}
}
