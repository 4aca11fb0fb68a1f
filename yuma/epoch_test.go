package yuma

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

func f(x Fixed) float64 { return float64(x) / float64(One) }

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

// bondOf returns validator i's bond on j (0 if absent).
func bondOf(o *Output, i, j int) Fixed {
	for _, b := range o.Bonds[i] {
		if int(b.UID) == j {
			return b.Value
		}
	}
	return 0
}

// want is a check on one output value, hand-computed.
type want struct {
	what string
	get  func(*Output) Fixed
	val  float64
}

func C(j int) func(*Output) Fixed  { return func(o *Output) Fixed { return o.Consensus[j] } }
func I(j int) func(*Output) Fixed  { return func(o *Output) Fixed { return o.Incentive[j] } }
func D(i int) func(*Output) Fixed  { return func(o *Output) Fixed { return o.Dividends[i] } }
func Tv(i int) func(*Output) Fixed { return func(o *Output) Fixed { return o.ValidatorTrust[i] } }
func Sa(i int) func(*Output) Fixed { return func(o *Output) Fixed { return o.ActiveStake[i] } }
func B(i, j int) func(*Output) Fixed {
	return func(o *Output) Fixed { return bondOf(o, i, j) }
}

// agreeingInput has validators 0 (70%) and 1 (30%) agree on miners 2 and
// 3, validator 1 starting out holding all the bonds (one epoch of catching
// up).
func agreeingInput() Input {
	return Input{
		Stake:     []uint64{70, 30, 0, 0},
		Weights:   [][]Weight{{{2, 65535}, {3, 65535}}, {{2, 65535}, {3, 65535}}, nil, nil},
		Active:    allActive(4),
		PrevBonds: [][]Bond{nil, {{2, One}, {3, One}}, nil, nil},
		OwnerUID:  -1,
		Emission:  1000,
	}
}

func TestHandComputed(t *testing.T) {
	yuma2 := func(p *Params) { p.Version = Yuma2 }
	agreeing := agreeingInput()
	cases := []struct {
		name    string
		params  func(*Params)
		in      Input
		checks  []want
		miner   []uint64 // nil: not checked
		valid   []uint64
		permits []bool
	}{{
		name: "lone honest validator",
		in: Input{
			Stake:    []uint64{100, 0, 0},
			Weights:  [][]Weight{{{1, 30000}, {2, 10000}}, nil, nil},
			Active:   allActive(3),
			OwnerUID: -1, Emission: 1000,
		},
		checks: []want{{"C1", C(1), 0.75}, {"C2", C(2), 0.25}, {"I1", I(1), 0.75}, {"I2", I(2), 0.25},
			{"Tv0", Tv(0), 1}, {"D0", D(0), 1}, {"B01", B(0, 1), 0.075}, {"B02", B(0, 2), 0.025}},
		miner: []uint64{0, 375, 125}, valid: []uint64{500, 0, 0}, permits: []bool{true, false, false},
	}, {
		name: "two validators disagree: the κ majority wins",
		in: Input{
			Stake:    []uint64{60, 40, 0, 0},
			Weights:  [][]Weight{{{2, 65535}}, {{3, 65535}}, nil, nil},
			Active:   allActive(4),
			OwnerUID: -1, Emission: 1_000_000,
		},
		checks: []want{{"C2", C(2), 1}, {"C3", C(3), 0}, {"I2", I(2), 1}, {"I3", I(3), 0},
			{"Tv0", Tv(0), 1}, {"Tv1", Tv(1), 0}, {"D0", D(0), 1}, {"D1", D(1), 0}},
		miner: []uint64{0, 0, 500_000, 0}, valid: []uint64{500_000, 0, 0, 0},
	}, {
		name: "colluding minority below κ does not lift its miner",
		// Honest 70% share weights 40000:25535 on miners 4, 5; the
		// colluder (30%) puts everything on miner 6.
		in: Input{
			Stake: []uint64{25, 25, 20, 30, 0, 0, 0},
			Weights: [][]Weight{
				{{4, 40000}, {5, 25535}}, {{4, 40000}, {5, 25535}}, {{4, 40000}, {5, 25535}},
				{{6, 65535}}, nil, nil, nil,
			},
			Active:   allActive(7),
			OwnerUID: -1, Emission: 1000,
		},
		checks: []want{{"C4", C(4), 40000.0 / 65535}, {"C5", C(5), 25535.0 / 65535}, {"C6", C(6), 0},
			{"I4", I(4), 40000.0 / 65535}, {"I6", I(6), 0}, {"Tv0", Tv(0), 1}, {"Tv3", Tv(3), 0},
			{"D0", D(0), 25.0 / 70}, {"D2", D(2), 20.0 / 70}, {"D3", D(3), 0}, {"B36", B(3, 6), 0}},
	}, {
		name:   "κ = 1 with everyone agreeing: exact threshold despite 1/3 shares",
		params: func(p *Params) { p.Kappa = One },
		in: Input{
			Stake:    []uint64{1, 1, 1, 0},
			Weights:  [][]Weight{{{3, 9}}, {{3, 9}}, {{3, 9}}, nil},
			Active:   allActive(4),
			OwnerUID: -1, Emission: 6,
		},
		checks: []want{{"C3", C(3), 1}, {"I3", I(3), 1}, {"D0", D(0), 1.0 / 3}},
		miner:  []uint64{0, 0, 0, 3}, valid: []uint64{1, 1, 1, 0},
	}, {
		name: "Yuma3 after one epoch of catching up",
		in:   agreeing,
		// B0 = 0.1·1 = 0.1·W̃ = 0.05, B1 = 0.9·1 + 0.05 = 0.95;
		// D ∝ Sa·B̂: 0.7·0.05 : 0.3·0.95 = 0.035 : 0.285.
		checks: []want{{"B02", B(0, 2), 0.05}, {"B12", B(1, 2), 0.95}, {"I2", I(2), 0.5},
			{"D0", D(0), 0.035 / 0.32}, {"D1", D(1), 0.285 / 0.32}},
		miner: []uint64{0, 0, 250, 250}, valid: []uint64{55, 445, 0, 0}, // 54.6875 and 445.3125
	}, {
		name:   "Yuma2 after one epoch of catching up",
		params: yuma2,
		in:     agreeing,
		// ΔB = colnorm(Sa⊙W) = 0.7, 0.3; B = 0.1·ΔB + 0.9·colnorm(B_prev).
		checks: []want{{"B02", B(0, 2), 0.07}, {"B12", B(1, 2), 0.93}, {"I2", I(2), 0.5},
			{"D0", D(0), 0.07}, {"D1", D(1), 0.93}},
		miner: []uint64{0, 0, 250, 250}, valid: []uint64{35, 465, 0, 0},
	}, {
		name: "bonds penalty 0 bonds the unclipped weight",
		params: func(p *Params) {
			p.BondsPenalty = 0
		},
		// Validator 1 (40%) also weights miner 3, which gets consensus 0.
		in: Input{
			Stake:    []uint64{60, 40, 0, 0},
			Weights:  [][]Weight{{{2, 65535}}, {{2, 65535}, {3, 65535}}, nil, nil},
			Active:   allActive(4),
			OwnerUID: -1,
		},
		checks: []want{{"C2", C(2), 1}, {"C3", C(3), 0}, {"B13", B(1, 3), 0.05}, {"B12", B(1, 2), 0.05},
			{"B02", B(0, 2), 0.1}, {"Tv1", Tv(1), 0.5}},
	}, {
		name: "bonds penalty 1 bonds only the clipped weight",
		in: Input{
			Stake:    []uint64{60, 40, 0, 0},
			Weights:  [][]Weight{{{2, 65535}}, {{2, 65535}, {3, 65535}}, nil, nil},
			Active:   allActive(4),
			OwnerUID: -1,
		},
		checks: []want{{"B13", B(1, 3), 0}, {"B12", B(1, 2), 0.05}, {"B02", B(0, 2), 0.1}, {"Tv1", Tv(1), 0.5}},
	}, {
		name: "owner's self-weight counts",
		in: Input{
			Stake:    []uint64{50, 50, 0},
			Weights:  [][]Weight{{{0, 65535}}, {{1, 65535}}, nil},
			Active:   allActive(3),
			OwnerUID: 0, Emission: 100,
		},
		checks: []want{{"C0", C(0), 1}, {"C1", C(1), 0}, {"I0", I(0), 1}, {"Tv1", Tv(1), 0}},
		miner:  []uint64{50, 0, 0}, valid: []uint64{50, 0, 0},
	}, {
		name: "without an owner self-weights are dropped and validators share by stake",
		in: Input{
			Stake:    []uint64{50, 50, 0},
			Weights:  [][]Weight{{{0, 65535}}, {{1, 65535}}, nil},
			Active:   allActive(3),
			OwnerUID: -1, Emission: 100,
		},
		checks: []want{{"C0", C(0), 0}, {"I0", I(0), 0}, {"Tv0", Tv(0), 0}},
		miner:  []uint64{0, 0, 0}, valid: []uint64{50, 50, 0},
	}, {
		name: "largest remainder: ties to the lower UID",
		// I = 1/3 each (rounded down), D0 = 1: miners get 1.67 each and the
		// validator 5.00; the two units left go to miners 1 and 2.
		in: Input{
			Stake:    []uint64{1, 0, 0, 0},
			Weights:  [][]Weight{{{1, 7}, {2, 7}, {3, 7}}, nil, nil, nil},
			Active:   allActive(4),
			OwnerUID: -1, Emission: 10,
		},
		miner: []uint64{0, 2, 2, 1}, valid: []uint64{5, 0, 0, 0},
	}, {
		name: "permits: top-k by stake, ties to the lower UID, owner exempt from the threshold",
		params: func(p *Params) {
			p.MaxValidators, p.StakeThreshold = 3, 10
		},
		in: Input{
			Stake:    []uint64{5, 30, 20, 20, 9, 0},
			Active:   allActive(6),
			OwnerUID: 0,
		},
		permits: []bool{false, true, true, true, false, false},
	}, {
		name: "permits: threshold drops small stake entirely",
		params: func(p *Params) {
			p.MaxValidators, p.StakeThreshold = 3, 10
		},
		in: Input{
			Stake:    []uint64{5, 30, 20, 20, 9, 0},
			Active:   allActive(6),
			OwnerUID: -1,
		},
		checks:  []want{{"Sa0", Sa(0), 0}, {"Sa1", Sa(1), 30.0 / 70}},
		permits: []bool{false, true, true, true, false, false},
	}, {
		name: "previous permits mask this epoch",
		in: Input{
			Stake:      []uint64{60, 40, 0, 0},
			Weights:    [][]Weight{{{2, 65535}}, {{3, 65535}}, nil, nil},
			Active:     allActive(4),
			PrevPermit: []bool{false, true, false, false},
			OwnerUID:   -1, Emission: 10,
		},
		checks:  []want{{"Sa0", Sa(0), 0}, {"Sa1", Sa(1), 1}, {"C2", C(2), 0}, {"C3", C(3), 1}, {"D1", D(1), 1}},
		permits: []bool{true, true, false, false},
	}, {
		name:   "activity cutoff: boundary block is still active",
		params: func(p *Params) { p.ActivityCutoff = 100 },
		in: Input{
			Block:      1000,
			Stake:      []uint64{60, 40, 0},
			Weights:    [][]Weight{{{2, 65535}}, {{2, 65535}}, nil},
			LastUpdate: []uint64{899, 900, 0}, // 899 + 100 < 1000 ≤ 900 + 100
			OwnerUID:   -1,
		},
		checks:  []want{{"Sa0", Sa(0), 0}, {"Sa1", Sa(1), 1}, {"D0", D(0), 0}, {"D1", D(1), 1}},
		permits: []bool{true, true, false},
	}, {
		name: "registration masking: weights set before the target registered",
		in: Input{
			Block:        1000,
			Stake:        []uint64{100, 0, 0, 0},
			Weights:      [][]Weight{{{1, 65535}, {2, 65535}, {3, 65535}}, nil, nil, nil},
			LastUpdate:   []uint64{900, 0, 0, 0},
			RegisteredAt: []uint64{0, 950, 900, 100}, // uid 2: last_update == registration is masked too
		},
		checks: []want{{"I1", I(1), 0}, {"I2", I(2), 0}, {"I3", I(3), 1}},
	}, {
		name: "registration masking under commit-reveal",
		in: Input{
			Block:            1000,
			Stake:            []uint64{100, 0, 0},
			Weights:          [][]Weight{{{1, 65535}, {2, 65535}}, nil, nil},
			LastUpdate:       []uint64{900, 0, 0},
			RegisteredAt:     []uint64{0, 50, 100},
			FirstCommitBlock: []uint64{80, 0, 0}, // committed after 1 registered, before 2
		},
		checks: []want{{"I1", I(1), 1}, {"I2", I(2), 0}},
	}, {
		name: "bond columns of newly registered UIDs restart at 0",
		in: Input{
			Block:          1000,
			LastEpochBlock: 940,
			Stake:          []uint64{100, 0, 0},
			Weights:        [][]Weight{{{2, 65535}}, nil, nil},
			LastUpdate:     []uint64{990, 0, 0},
			RegisteredAt:   []uint64{0, 950, 940}, // 1 since the last epoch; 2 in its block
			PrevBonds:      [][]Bond{{{1, One}, {2, One / 2}}, nil, nil},
		},
		checks: []want{{"B01", B(0, 1), 0}, {"B02", B(0, 2), 0.45 + 0.1}},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := DefaultParams()
			if c.params != nil {
				c.params(&p)
			}
			out, err := Epoch(p, c.in)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.checks {
				if got := f(w.get(out)); math.Abs(got-w.val) > 1e-8 {
					t.Errorf("%s = %.10f, want %.10f", w.what, got, w.val)
				}
			}
			if c.miner != nil && !reflect.DeepEqual(out.MinerEmission, c.miner) {
				t.Errorf("miner emission %v, want %v", out.MinerEmission, c.miner)
			}
			if c.valid != nil && !reflect.DeepEqual(out.ValidatorEmission, c.valid) {
				t.Errorf("validator emission %v, want %v", out.ValidatorEmission, c.valid)
			}
			if c.permits != nil && !reflect.DeepEqual(out.NewPermit, c.permits) {
				t.Errorf("new permits %v, want %v", out.NewPermit, c.permits)
			}
			if got := sum(out.MinerEmission) + sum(out.ValidatorEmission) + out.Unallocated; got != c.in.Emission {
				t.Errorf("emission parts sum to %d, want %d", got, c.in.Emission)
			}
		})
	}
}

// TestBondsConverge feeds each epoch's bonds into the next, starting from
// validator 1 holding all the bonds, and checks the closed forms.
func TestBondsConverge(t *testing.T) {
	for _, v := range []Version{Yuma3, Yuma2} {
		p := DefaultParams()
		p.Version = v
		in := agreeingInput()
		for epoch := 1; epoch <= 80; epoch++ {
			out, err := Epoch(p, in)
			if err != nil {
				t.Fatal(err)
			}
			in.PrevBonds = out.Bonds
			decay := math.Pow(0.9, float64(epoch))
			var b0, b1, d0 float64
			switch v {
			case Yuma3: // B0 = 0.5(1−0.9^t), B1 = 0.5(1+0.9^t); D ∝ Sa·B̂
				b0, b1 = 0.5*(1-decay), 0.5*(1+decay)
				d0 = 0.7 * b0 / (0.7*b0 + 0.3*b1)
			case Yuma2: // B0 = 0.7(1−0.9^t): the stake share, approached by EMA
				b0, b1 = 0.7*(1-decay), 1-0.7*(1-decay)
				d0 = b0
			}
			for _, c := range []struct {
				what      string
				got, want float64
			}{{"B02", f(bondOf(out, 0, 2)), b0}, {"B13", f(bondOf(out, 1, 3)), b1}, {"D0", f(out.Dividends[0]), d0}} {
				if math.Abs(c.got-c.want) > 1e-7 {
					t.Fatalf("%v epoch %d: %s = %.9f, want %.9f", v, epoch, c.what, c.got, c.want)
				}
			}
		}
		// Converged: dividends follow stake.
		if d := f(in.PrevBonds[0][0].Value); v == Yuma3 && math.Abs(d-0.5) > 1e-3 {
			t.Errorf("yuma3 bond %.6f did not converge to 0.5", d)
		}
	}
}

func TestRejectsBadInput(t *testing.T) {
	good := func() (Input, Params) {
		return Input{Stake: []uint64{1, 1}, Active: allActive(2), OwnerUID: -1}, DefaultParams()
	}
	for _, c := range []struct {
		name   string
		mutate func(in *Input, p *Params)
	}{
		{"no uids", func(in *Input, _ *Params) { in.Stake = nil }},
		{"ragged weights", func(in *Input, _ *Params) { in.Weights = [][]Weight{nil} }},
		{"ragged bonds", func(in *Input, _ *Params) { in.PrevBonds = [][]Bond{nil, nil, nil} }},
		{"uid out of range", func(in *Input, _ *Params) { in.Weights = [][]Weight{{{5, 1}}, nil} }},
		{"duplicate weight", func(in *Input, _ *Params) { in.Weights = [][]Weight{{{1, 1}, {1, 2}}, nil} }},
		{"duplicate bond", func(in *Input, _ *Params) { in.PrevBonds = [][]Bond{{{1, 1}, {1, 2}}, nil} }},
		{"no activity", func(in *Input, _ *Params) { in.Active = nil }},
		{"bond above one", func(in *Input, _ *Params) { in.PrevBonds = [][]Bond{{{1, One + 1}}, nil} }},
		{"stake overflow", func(in *Input, _ *Params) { in.Stake = []uint64{math.MaxUint64, 1} }},
		{"kappa above one", func(_ *Input, p *Params) { p.Kappa = One + 1 }},
		{"bma above one", func(_ *Input, p *Params) { p.BondsMovingAverage = One + 1 }},
		{"penalty above one", func(_ *Input, p *Params) { p.BondsPenalty = One + 1 }},
		{"negative max validators", func(_ *Input, p *Params) { p.MaxValidators = -1 }},
		{"bad version", func(_ *Input, p *Params) { p.Version = 9 }},
		{"owner range", func(in *Input, _ *Params) { in.OwnerUID = 2 }},
	} {
		in, p := good()
		c.mutate(&in, &p)
		if _, err := Epoch(p, in); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", c.name, err)
		}
	}
	in, p := good()
	if _, err := Epoch(p, in); err != nil {
		t.Fatalf("the good input is rejected: %v", err)
	}
}

func TestNoStakeLeavesEmissionUnallocated(t *testing.T) {
	out, err := Epoch(DefaultParams(), Input{Stake: []uint64{0, 0}, Active: allActive(2), OwnerUID: -1, Emission: 77})
	if err != nil {
		t.Fatal(err)
	}
	if out.Unallocated != 77 || sum(out.MinerEmission)+sum(out.ValidatorEmission) != 0 {
		t.Fatalf("unallocated %d, paid %v %v", out.Unallocated, out.MinerEmission, out.ValidatorEmission)
	}
}

// TestUnsortedRowsAndNoMutation: row order must not matter and the input
// must come back untouched.
func TestUnsortedRowsAndNoMutation(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 50 {
		in := randomInput(r, 2+r.IntN(30), 1+r.IntN(6))
		p := DefaultParams()
		p.Version = Version(trial % 2)
		sorted, err := Epoch(p, in)
		if err != nil {
			t.Fatal(err)
		}
		shuffled := in
		shuffled.Weights = make([][]Weight, len(in.Weights))
		shuffled.PrevBonds = make([][]Bond, len(in.PrevBonds))
		for i := range in.Weights {
			shuffled.Weights[i] = slices.Clone(in.Weights[i])
			r.Shuffle(len(shuffled.Weights[i]), func(a, b int) {
				shuffled.Weights[i][a], shuffled.Weights[i][b] = shuffled.Weights[i][b], shuffled.Weights[i][a]
			})
			shuffled.PrevBonds[i] = slices.Clone(in.PrevBonds[i])
			slices.Reverse(shuffled.PrevBonds[i])
		}
		keepW, keepB := deepCloneW(shuffled.Weights), deepCloneB(shuffled.PrevBonds)
		got, err := Epoch(p, shuffled)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, sorted) {
			t.Fatalf("trial %d: shuffled rows changed the result", trial)
		}
		if !reflect.DeepEqual(keepW, shuffled.Weights) || !reflect.DeepEqual(keepB, shuffled.PrevBonds) {
			t.Fatalf("trial %d: Epoch modified its input", trial)
		}
	}
}

func deepCloneW(m [][]Weight) [][]Weight {
	out := make([][]Weight, len(m))
	for i := range m {
		out[i] = slices.Clone(m[i])
	}
	return out
}

func deepCloneB(m [][]Bond) [][]Bond {
	out := make([][]Bond, len(m))
	for i := range m {
		out[i] = slices.Clone(m[i])
	}
	return out
}

// randomInput exercises every input: owner, threshold, previous permits,
// commit-reveal, registration masking and bond resets are all switched on
// at random.
func randomInput(r *rand.Rand, n, validators int) Input {
	validators = min(validators, n)
	in := Input{Block: 10_000, LastEpochBlock: 9_000 + r.Uint64N(500), Stake: make([]uint64, n), Weights: make([][]Weight, n),
		LastUpdate: make([]uint64, n), RegisteredAt: make([]uint64, n), PrevBonds: make([][]Bond, n),
		OwnerUID: -1, Emission: r.Uint64N(1_000_000_000_000)}
	if r.IntN(2) == 0 {
		in.OwnerUID = r.IntN(n)
	}
	for i := range validators {
		in.Stake[i] = r.Uint64N(1_000_000_000_000)
		in.LastUpdate[i] = 4_000 + r.Uint64N(6_000)
		for j := range n {
			if r.IntN(3) == 0 {
				in.Weights[i] = append(in.Weights[i], Weight{uint16(j), uint16(r.IntN(65536))})
			}
			if r.IntN(4) == 0 {
				in.PrevBonds[i] = append(in.PrevBonds[i], Bond{uint16(j), Fixed(r.Uint64N(uint64(One) + 1))})
			}
		}
	}
	for j := range n {
		in.RegisteredAt[j] = r.Uint64N(9_700)
	}
	if r.IntN(2) == 0 {
		in.PrevPermit = make([]bool, n)
		for i := range n {
			in.PrevPermit[i] = r.IntN(4) != 0
		}
	}
	if r.IntN(3) == 0 {
		in.FirstCommitBlock = make([]uint64, n)
		for i := range n {
			in.FirstCommitBlock[i] = r.Uint64N(9_000)
		}
	}
	return in
}

func randomParams(r *rand.Rand) Params {
	p := DefaultParams()
	p.Version = Version(r.IntN(2))
	p.Kappa = []Fixed{0, One / 4, p.Kappa, One / 2, 3 * One / 4, One}[r.IntN(6)]
	p.BondsMovingAverage = []Fixed{0, One / 2, p.BondsMovingAverage, FromRatio(99, 100), One}[r.IntN(5)]
	p.BondsPenalty = []Fixed{0, One / 3, One}[r.IntN(3)]
	p.MaxValidators = 1 + r.IntN(8)
	p.ActivityCutoff = []uint64{1000, 5000}[r.IntN(2)]
	p.StakeThreshold = []uint64{0, 100_000_000_000}[r.IntN(2)]
	return p
}

func TestEmissionSumsExactlyAndDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		in := randomInput(r, 1+r.IntN(40), 1+r.IntN(8))
		if trial%10 == 0 {
			in.Emission = math.MaxUint64 - r.Uint64N(3)
		}
		p := randomParams(r)
		a, err := Epoch(p, in)
		if err != nil {
			t.Fatal(err)
		}
		if got := sum(a.MinerEmission) + sum(a.ValidatorEmission) + a.Unallocated; got != in.Emission {
			t.Fatalf("trial %d: parts sum to %d, emission %d", trial, got, in.Emission)
		}
		if a.Unallocated != 0 && sum(in.Stake) > 0 && p.StakeThreshold == 0 {
			t.Fatalf("trial %d: %d unallocated with stake present", trial, a.Unallocated)
		}
		b, _ := Epoch(p, in)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("trial %d: two runs differ", trial)
		}
	}
}

// TestGoldenDigest pins the exact output of a fixed set of scenarios. The
// arithmetic is integer-only, so the digest must be the same on every
// architecture (CI: GOARCH=386 and arm64 run this too). If the algorithm is
// changed on purpose, update the digest.
func TestGoldenDigest(t *testing.T) {
	const golden = "dea1496a397d40a198e3aa55adc25b89cd0c55060a142024757fe3f3a4b84735"
	r := rand.New(rand.NewPCG(2026, 11))
	h := sha256.New()
	put := func(v uint64) { h.Write(binary.BigEndian.AppendUint64(nil, v)) }
	for range 40 {
		in := randomInput(r, 1+r.IntN(64), 1+r.IntN(12))
		out, err := Epoch(randomParams(r), in)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range [][]Fixed{out.Consensus, out.ValidatorTrust, out.Incentive, out.Dividends, out.ActiveStake} {
			for _, x := range v {
				put(uint64(x))
			}
		}
		for i, row := range out.Bonds {
			put(uint64(i))
			for _, b := range row {
				put(uint64(b.UID))
				put(uint64(b.Value))
			}
		}
		for i := range out.MinerEmission {
			put(out.MinerEmission[i])
			put(out.ValidatorEmission[i])
			if out.NewPermit[i] {
				put(1)
			}
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != golden {
		t.Fatalf("digest %s, want %s", got, golden)
	}
}

func TestKappaQuantileMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for trial := range 2000 {
		m := r.IntN(300)
		stake := make([]uint64, 1<<voterBits)
		keys := make([]uint64, m)
		var total uint64
		levels := 1 + r.IntN(1+m) // few levels: many equal weights
		for k := range keys {
			idx := uint64(r.IntN(1 << 15))
			for stake[idx] != 0 {
				idx = (idx + 1) % (1 << 15)
			}
			stake[idx] = 1 + r.Uint64N(1000)
			total += stake[idx]
			w := uint64(r.IntN(levels)) * (uint64(One) / uint64(levels))
			keys[k] = w<<voterBits | idx
		}
		switch trial % 4 { // patterns that defeat naive pivots
		case 1:
			slices.Sort(keys)
		case 2:
			slices.Sort(keys)
			slices.Reverse(keys)
		}
		need := r.Uint64N(total + 2)
		sorted := slices.Clone(keys)
		slices.Sort(sorted)
		var wantC Fixed
		var cum uint64
		for k := len(sorted) - 1; k >= 0; k-- {
			cum += stake[sorted[k]&(1<<voterBits-1)]
			if cum >= need {
				wantC = Fixed(sorted[k] >> voterBits)
				break
			}
		}
		if got := kappaQuantile(keys, stake, need); got != wantC {
			t.Fatalf("trial %d (m=%d, need %d): %d, want %d", trial, m, need, got, wantC)
		}
	}
}

func TestMatchesFloatReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	for trial := range 400 {
		in := randomInput(r, 1+r.IntN(30), 1+r.IntN(8))
		p := randomParams(r)
		if trial%5 == 0 {
			in.Active = make([]bool, len(in.Stake))
			for i := range in.Active {
				in.Active[i] = r.IntN(3) != 0
			}
		}
		got, err := Epoch(p, in)
		if err != nil {
			t.Fatal(err)
		}
		want := referenceEpoch(p, in)
		fail := func(what string, j int, g, w float64) {
			t.Fatalf("trial %d (%v κ=%s bma=%s β=%s) %s[%d] = %.10f, reference %.10f",
				trial, p.Version, p.Kappa, p.BondsMovingAverage, p.BondsPenalty, what, j, g, w)
		}
		for _, c := range []struct {
			what      string
			got, want []float64
		}{
			{"consensus", fs(got.Consensus), want.consensus}, {"trust", fs(got.ValidatorTrust), want.trust},
			{"incentive", fs(got.Incentive), want.incentive}, {"dividends", fs(got.Dividends), want.dividends},
		} {
			for j := range c.got {
				if math.Abs(c.got[j]-c.want[j]) > 1e-6 {
					fail(c.what, j, c.got[j], c.want[j])
				}
			}
		}
		n := len(in.Stake)
		for i := range n {
			for j := range n {
				if g, w := f(bondOf(got, i, j)), want.bonds[i][j]; math.Abs(g-w) > 1e-6 {
					fail(fmt.Sprintf("bonds row %d", i), j, g, w)
				}
			}
		}
		tol := float64(in.Emission)*1e-6 + 2
		for i := range n {
			if g, w := float64(got.MinerEmission[i]), want.miner[i]; math.Abs(g-w) > tol {
				fail("miner emission", i, g, w)
			}
			if g, w := float64(got.ValidatorEmission[i]), want.validator[i]; math.Abs(g-w) > tol {
				fail("validator emission", i, g, w)
			}
			if got.NewPermit[i] != want.permit[i] || got.Active[i] != want.active[i] {
				t.Fatalf("trial %d: uid %d permit %v active %v, reference %v %v", trial, i,
					got.NewPermit[i], got.Active[i], want.permit[i], want.active[i])
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

type refOut struct {
	consensus, trust, incentive, dividends []float64
	bonds                                  [][]float64
	miner, validator                       []float64
	permit, active                         []bool
}

// referenceEpoch is a dense, float64, straight-from-the-definition
// implementation of the same epoch, used only to check the fixed-point one. The κ
// comparison is done on integer stake with math/big (it is a threshold, and
// exactness there is part of the definition, not of the arithmetic).
func referenceEpoch(p Params, in Input) refOut {
	n := len(in.Stake)
	bma, beta := f(p.BondsMovingAverage), f(p.BondsPenalty)
	alpha := 1 - bma
	var o refOut
	o.active = make([]bool, n)
	for i := range n {
		if in.Active != nil {
			o.active[i] = in.Active[i]
		} else {
			o.active[i] = in.LastUpdate[i]+p.ActivityCutoff >= in.Block
		}
	}
	stake := make([]uint64, n)
	for i, s := range in.Stake {
		if s >= p.StakeThreshold || i == in.OwnerUID {
			stake[i] = s
		}
	}
	// Permits: the k largest non-zero stakes, ties to the lower UID.
	o.permit = make([]bool, n)
	for i := range n {
		better := 0
		for k := range n {
			if stake[k] > stake[i] || (stake[k] == stake[i] && k < i) {
				better++
			}
		}
		o.permit[i] = stake[i] > 0 && better < p.MaxValidators
	}
	permit := in.PrevPermit
	if permit == nil {
		permit = make([]bool, n)
		for i := range n {
			permit[i] = stake[i] > 0
		}
	}
	sraw := make([]uint64, n)
	sa := make([]float64, n)
	var tot uint64
	for i := range n {
		if o.active[i] && permit[i] {
			sraw[i] = stake[i]
			tot += stake[i]
		}
	}
	for i := range n {
		if tot > 0 {
			sa[i] = float64(sraw[i]) / float64(tot)
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
			if j == i && i != in.OwnerUID || in.LastUpdate[i] <= in.RegisteredAt[j] ||
				in.FirstCommitBlock != nil && in.FirstCommitBlock[i] > 0 && in.FirstCommitBlock[i] < in.RegisteredAt[j] {
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
	// C_j = max{w : Σ_{i: W_ij ≥ w} Sa_i ≥ κ}, w over the column's votes.
	need := new(big.Int).Mul(new(big.Int).SetUint64(uint64(p.Kappa)), new(big.Int).SetUint64(tot))
	o.consensus = make([]float64, n)
	for j := range n {
		for i := range n {
			w := W[i][j]
			if w == 0 || sraw[i] == 0 || w <= o.consensus[j] {
				continue
			}
			var st uint64
			for k := range n {
				if sraw[k] > 0 && W[k][j] >= w {
					st += sraw[k]
				}
			}
			if new(big.Int).Lsh(new(big.Int).SetUint64(st), 32).Cmp(need) >= 0 {
				o.consensus[j] = w
			}
		}
	}
	o.trust = make([]float64, n)
	R := make([]float64, n)
	clip := make([][]float64, n)
	for i := range n {
		clip[i] = make([]float64, n)
		for j := range n {
			clip[i][j] = math.Min(W[i][j], o.consensus[j])
			o.trust[i] += clip[i][j]
			R[j] += sa[i] * clip[i][j]
		}
	}
	o.incentive = norm(R)
	prev := make([][]float64, n)
	for i := range n {
		prev[i] = make([]float64, n)
		for _, b := range in.PrevBonds[i] {
			if in.RegisteredAt[b.UID] <= in.LastEpochBlock {
				prev[i][b.UID] = f(b.Value)
			}
		}
	}
	D := make([]float64, n)
	o.bonds = make([][]float64, n)
	for i := range n {
		o.bonds[i] = make([]float64, n)
	}
	B := o.bonds
	tilde := func(i, j int) float64 { return (1-beta)*W[i][j] + beta*clip[i][j] }
	if p.Version == Yuma3 {
		col := make([]float64, n)
		for i := range n {
			for j := range n {
				B[i][j] = math.Min(1, (1-alpha)*prev[i][j]+alpha*tilde(i, j))
				col[j] += B[i][j]
			}
		}
		for i := range n {
			for j := range n {
				if col[j] > 0 {
					D[i] += B[i][j] / col[j] * o.incentive[j]
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
				D[i] += B[i][j] * o.incentive[j]
			}
		}
	}
	o.dividends = norm(D)
	// Emission: E·I/σ and E·D/σ; σ = 0 → validators by Sa, else by S.
	e := float64(in.Emission)
	o.miner, o.validator = make([]float64, n), make([]float64, n)
	var sigma float64
	for i := range n {
		sigma += o.incentive[i] + o.dividends[i]
	}
	if sigma > 0 {
		for i := range n {
			o.miner[i] = e * o.incentive[i] / sigma
			o.validator[i] = e * o.dividends[i] / sigma
		}
		return o
	}
	basis := sa
	if tot == 0 {
		basis = make([]float64, n)
		for i := range n {
			basis[i] = float64(stake[i])
		}
	}
	basis = norm(basis)
	for i := range n {
		o.validator[i] = e * basis[i]
	}
	return o
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
