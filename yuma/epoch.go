// Package yuma is Yuma Consensus as a pure function: given a subnet's stake,
// weights and previous bonds, one epoch computes consensus, trust, incentive,
// dividends, new bonds and each UID's share of the epoch's emission.
//
// Everything is integer fixed-point (see Fixed) with deterministic ordering:
// no floats, no map iteration, no goroutines, no clock. Same input, same
// output, on every machine. The algorithm is Bittensor's subtensor epoch; the
// step numbers in comments below are the stages of Epoch, numbered 1–11 where
// Epoch runs them.
//
// Rounding: every fixed-point product and quotient rounds down, except the
// κ comparison in consensus, which is exact (done on integer stake), and the
// emission split, which is exact by construction (largest remainder, see
// Output.MinerEmission).
//
// It imports only the standard library: the chain calls it, and it knows
// nothing of state, transactions or the network.
package yuma

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// Version selects the bond model.
type Version uint8

// Bond models.
const (
	// Yuma3 keeps each bond as an EMA of the (penalized) weight itself, in
	// [0, 1]; dividends weigh column-normalized bonds by active stake.
	Yuma3 Version = iota
	// Yuma2 is Bittensor's classic model: bonds are an EMA of stake-weighted,
	// column-normalized weights.
	Yuma2
)

func (v Version) String() string {
	switch v {
	case Yuma3:
		return "yuma3"
	case Yuma2:
		return "yuma2"
	default:
		return fmt.Sprintf("version(%d)", uint8(v))
	}
}

// Params are the subnet hyperparameters Yuma reads.
type Params struct {
	Version            Version
	Kappa              Fixed  // consensus quantile κ in [0, 1]; default 32767/65535 ≈ 0.5
	BondsMovingAverage Fixed  // in [0, 1]; default 0.9, so α = 1 − BMA = 0.1
	BondsPenalty       Fixed  // β in [0, 1]; default 1 (bonds follow clipped weights)
	MaxValidators      int    // the top-k stake holders get a validator permit
	ActivityCutoff     uint64 // blocks after its last weights a validator counts as inactive
	StakeThreshold     uint64 // stake below this counts as zero (owner exempt)
}

// DefaultParams are Bittensor's defaults.
func DefaultParams() Params {
	return Params{
		Version:            Yuma3,
		Kappa:              FromU16(32767),
		BondsMovingAverage: FromRatio(9, 10),
		BondsPenalty:       One,
		MaxValidators:      64,
		ActivityCutoff:     5000,
	}
}

// Weight is one entry of a validator's weight row: target UID and u16 value.
// Only ratios within a row matter (rows are normalized), so a row need not
// be max-upscaled.
type Weight struct {
	UID   uint16
	Value uint16
}

// Bond is one entry of a validator's bond row.
type Bond struct {
	UID   uint16
	Value Fixed
}

// Input is one subnet's state at an epoch. Slices are indexed by UID and all
// have length n = len(Stake); optional ones may be nil. Rows (weights,
// bonds) are sparse: any order, no UID twice; sorted by UID is fastest.
type Input struct {
	Block uint64
	// LastEpochBlock is the block of the previous epoch: bond columns of UIDs
	// registered after it start from zero.
	LastEpochBlock uint64
	Stake          []uint64   // base units
	Weights        [][]Weight // row i: weights set by UID i (nil: none)
	// LastUpdate is the block of each UID's last weights. It drives the
	// activity cutoff and registration masking; it may be nil only when
	// Active is given (simulations), and then no registration masking is done.
	LastUpdate []uint64
	// Active overrides the activity cutoff when non-nil (simulations).
	Active []bool
	// RegisteredAt masks weights older than the target's registration and
	// resets bonds to UIDs registered since LastEpochBlock; nil: neither.
	RegisteredAt []uint64
	// FirstCommitBlock is, under commit-reveal, the block of i's earliest
	// pending commit (0: none); weights committed before j registered are
	// masked. nil: commit-reveal off.
	FirstCommitBlock []uint64
	// PrevPermit are the permits stored by the last epoch; they mask this
	// one. nil: every UID with (threshold-passing) stake holds one.
	PrevPermit []bool
	PrevBonds  [][]Bond // row i: bonds of validator i; nil: none
	OwnerUID   int      // the subnet owner's UID (exempt from self-weight and threshold); −1 none
	Emission   uint64   // base units to distribute this epoch
}

// Output is the epoch's result, indexed by UID.
type Output struct {
	Active         []bool
	NewPermit      []bool  // permits for the next epoch: store them as the next PrevPermit
	StakeShare     []Fixed // S: thresholded stake, normalized
	ActiveStake    []Fixed // Sa = S ⊙ active ⊙ permit, normalized
	Consensus      []Fixed
	ValidatorTrust []Fixed
	Rank           []Fixed
	Incentive      []Fixed
	Dividends      []Fixed
	// Bonds are the new bonds, row i sorted by UID, zero entries omitted.
	// Store them and pass them back as the next PrevBonds.
	Bonds [][]Bond
	// MinerEmission and ValidatorEmission split Emission in base units:
	// miner_i = E·I_i/σ and validator_i = E·D_i/σ with σ = Σ(I + D) (if σ
	// is 0, validators by active stake, else by stake). Each part is first
	// rounded down; the units left over go one each to the largest
	// remainders, ties to miners before validators and then the lower UID.
	// So MinerEmission + ValidatorEmission + Unallocated = Emission exactly.
	MinerEmission     []uint64
	ValidatorEmission []uint64
	// Unallocated is emission nobody could receive (no stake and no
	// incentive at all); the caller decides where it goes. Otherwise 0.
	Unallocated uint64
}

// ErrInput wraps every rejected input.
var ErrInput = errors.New("invalid yuma input")

// MaxUIDs bounds n: UIDs are uint16 and consensus packs a voter's UID into
// 16 bits of a sort key.
const MaxUIDs = 1 << 15

func (p Params) validate() error {
	switch {
	case p.Version != Yuma3 && p.Version != Yuma2:
		return fmt.Errorf("%w: unknown version %d", ErrInput, p.Version)
	case p.Kappa > One:
		return fmt.Errorf("%w: kappa %s above 1", ErrInput, p.Kappa)
	case p.BondsMovingAverage > One:
		return fmt.Errorf("%w: bonds moving average %s above 1", ErrInput, p.BondsMovingAverage)
	case p.BondsPenalty > One:
		return fmt.Errorf("%w: bonds penalty %s above 1", ErrInput, p.BondsPenalty)
	case p.MaxValidators < 0:
		return fmt.Errorf("%w: negative max validators", ErrInput)
	}
	return nil
}

func (in *Input) validate() error {
	n := len(in.Stake)
	if n == 0 {
		return fmt.Errorf("%w: no UIDs", ErrInput)
	}
	if n > MaxUIDs {
		return fmt.Errorf("%w: %d UIDs, limit %d", ErrInput, n, MaxUIDs)
	}
	for _, c := range []struct {
		name string
		l    int
	}{
		{"weights", len(in.Weights)}, {"last_update", len(in.LastUpdate)},
		{"active", len(in.Active)}, {"registered_at", len(in.RegisteredAt)},
		{"first_commit_block", len(in.FirstCommitBlock)}, {"validator_permit", len(in.PrevPermit)},
		{"bonds", len(in.PrevBonds)},
	} {
		if c.l != 0 && c.l != n {
			return fmt.Errorf("%w: %s has %d entries, want %d", ErrInput, c.name, c.l, n)
		}
	}
	if in.Active == nil && in.LastUpdate == nil {
		return fmt.Errorf("%w: need last_update or active", ErrInput)
	}
	if in.OwnerUID < -1 || in.OwnerUID >= n {
		return fmt.Errorf("%w: owner uid %d out of range", ErrInput, in.OwnerUID)
	}
	var total uint64
	for _, s := range in.Stake {
		var carry uint64
		if total, carry = bits.Add64(total, s, 0); carry != 0 {
			return fmt.Errorf("%w: total stake overflows 64 bits", ErrInput)
		}
	}
	// seen[j] == i+1 marks j as already in row i, without a map per row.
	seen := make([]int32, n)
	for i, row := range in.Weights {
		for _, w := range row {
			if int(w.UID) >= n {
				return fmt.Errorf("%w: uid %d sets weight on uid %d, only %d exist", ErrInput, i, w.UID, n)
			}
			if seen[w.UID] == int32(i+1) {
				return fmt.Errorf("%w: uid %d sets weight on uid %d twice", ErrInput, i, w.UID)
			}
			seen[w.UID] = int32(i + 1)
		}
	}
	clear(seen)
	for i, row := range in.PrevBonds {
		for _, b := range row {
			if int(b.UID) >= n || b.Value > One {
				return fmt.Errorf("%w: uid %d has bond %s on uid %d", ErrInput, i, b.Value, b.UID)
			}
			if seen[b.UID] == int32(i+1) {
				return fmt.Errorf("%w: uid %d has two bonds on uid %d", ErrInput, i, b.UID)
			}
			seen[b.UID] = int32(i + 1)
		}
	}
	return nil
}

// matrix is a sparse n×n matrix in compressed-row form: row i's columns are
// col[start[i]:start[i+1]] in ascending order, with values val[...].
type matrix struct {
	start []int
	col   []int32
	val   []Fixed
}

func (m *matrix) row(i int) ([]int32, []Fixed) {
	a, b := m.start[i], m.start[i+1]
	return m.col[a:b], m.val[a:b]
}

type entry struct {
	j int32
	w Fixed
}

// Epoch runs one epoch of Yuma Consensus. It returns an error wrapping
// ErrInput, and nothing else, for inputs of the wrong shape.
func Epoch(p Params, in Input) (*Output, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	n := len(in.Stake)
	out := &Output{
		Active: make([]bool, n), NewPermit: make([]bool, n),
		Consensus: make([]Fixed, n), ValidatorTrust: make([]Fixed, n), Rank: make([]Fixed, n),
		Bonds: make([][]Bond, n),
	}

	// 1. Activity: last_update + cutoff ≥ block, without overflowing.
	for i := range n {
		if in.Active != nil {
			out.Active[i] = in.Active[i]
		} else {
			lu := in.LastUpdate[i]
			out.Active[i] = lu >= in.Block || in.Block-lu <= p.ActivityCutoff
		}
	}

	// 2. Stake, with the threshold (the owner is exempt).
	stake := make([]uint64, n)
	for i, s := range in.Stake {
		if s >= p.StakeThreshold || i == in.OwnerUID {
			stake[i] = s
		}
	}
	out.StakeShare = normalizeU64(stake)

	// 3. Permits for the next epoch: top-k by non-zero stake, ties to the
	// lower UID. This epoch is masked by the previous ones.
	order := make([]int, 0, n)
	for i := range n {
		if stake[i] > 0 {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		switch {
		case stake[a] > stake[b]:
			return -1
		case stake[a] < stake[b]:
			return 1
		}
		return a - b
	})
	for _, i := range order[:min(len(order), p.MaxValidators)] {
		out.NewPermit[i] = true
	}
	permit := in.PrevPermit
	if permit == nil {
		permit = make([]bool, n)
		for i := range n {
			permit[i] = stake[i] > 0
		}
	}

	// 4. Active stake Sa = S ⊙ active ⊙ permit, normalized. activeStake keeps
	// the integer amounts: consensus compares them exactly.
	activeStake := make([]uint64, n)
	var activeTotal uint64
	for i := range n {
		if out.Active[i] && permit[i] {
			activeStake[i] = stake[i]
			activeTotal += stake[i]
		}
	}
	out.ActiveStake = normalizeU64(activeStake)
	sa := out.ActiveStake

	// 5. Weights, masked and row-normalized.
	W := maskedWeights(in, permit)

	// 6. Consensus per column; 7–8. clipping, trust, rank, incentive.
	consensus(W, activeStake, kappaThreshold(p.Kappa, activeTotal), out.Consensus)
	for i := range n {
		cols, vals := W.row(i)
		var trust Fixed
		for k, j := range cols {
			v := min(vals[k], out.Consensus[j])
			trust += v
			out.Rank[j] += sa[i].Mul(v)
		}
		out.ValidatorTrust[i] = trust
	}
	out.Incentive = normalizeFixed(out.Rank)

	// 9–10. Bonds (from W̃ = (1−β)W + βW̄) and dividends.
	b := bonder{p: p, in: &in, W: W, C: out.Consensus, sa: sa, inc: out.Incentive}
	var div []Fixed
	switch p.Version {
	case Yuma3:
		out.Bonds, div = b.yuma3()
	case Yuma2:
		out.Bonds, div = b.yuma2()
	}
	out.Dividends = normalizeFixed(div)

	// 11. Emission split.
	out.MinerEmission, out.ValidatorEmission = split(in.Emission, out.Incentive, out.Dividends, sa, out.StakeShare)
	out.Unallocated = in.Emission - sumU64(out.MinerEmission) - sumU64(out.ValidatorEmission)
	return out, nil
}

// maskedWeights applies step 5: rows of UIDs without a permit are dropped,
// self-weights are zeroed (except the owner's), weights set before the
// target registered are zeroed (the validator judged a previous occupant of
// the UID), and likewise under commit-reveal for commits made before the
// target registered. Each row is then normalized to sum to 1.
func maskedWeights(in Input, permit []bool) matrix {
	n := len(in.Stake)
	nnz := 0
	for i, row := range in.Weights {
		if permit[i] {
			nnz += len(row)
		}
	}
	m := matrix{start: make([]int, n+1), col: make([]int32, 0, nnz), val: make([]Fixed, 0, nnz)}
	var scratch []entry
	for i := range n {
		m.start[i] = len(m.col)
		if !permit[i] || i >= len(in.Weights) {
			continue
		}
		scratch = scratch[:0]
		var sum uint64
		sorted := true
		for _, w := range in.Weights[i] {
			j := int(w.UID)
			switch {
			case w.Value == 0, j == i && i != in.OwnerUID:
				continue
			case in.RegisteredAt != nil && in.LastUpdate != nil && in.LastUpdate[i] <= in.RegisteredAt[j]:
				continue
			case in.RegisteredAt != nil && in.FirstCommitBlock != nil && in.FirstCommitBlock[i] > 0 &&
				in.FirstCommitBlock[i] < in.RegisteredAt[j]:
				continue
			}
			if len(scratch) > 0 && scratch[len(scratch)-1].j > int32(j) {
				sorted = false
			}
			scratch = append(scratch, entry{int32(j), Fixed(w.Value)})
			sum += uint64(w.Value)
		}
		if sum == 0 {
			continue
		}
		if !sorted {
			slices.SortFunc(scratch, func(a, b entry) int { return int(a.j - b.j) })
		}
		// Exact floor of v/sum, so representable ratios (3:1 → 0.75)
		// come out exact. v·2^32 < 2^48 and sum < 2^31, so a plain
		// 64-bit division suffices.
		for _, e := range scratch {
			m.col = append(m.col, e.j)
			m.val = append(m.val, Fixed(uint64(e.w)<<fracBits/sum))
		}
	}
	m.start[n] = len(m.col)
	return m
}

// kappaThreshold is the least integer stake τ with τ ≥ κ·total: a set of
// voters reaches κ of the active stake exactly when its stake is ≥ τ.
func kappaThreshold(kappa Fixed, total uint64) uint64 {
	hi, lo := bits.Mul64(uint64(kappa), total)
	// ⌈(hi:lo)/2^32⌉; fits 64 bits since κ ≤ 1.
	lo, c := bits.Add64(lo, uint64(One)-1, 0)
	hi += c
	return hi<<(64-fracBits) | lo>>fracBits
}

// Vote keys pack a weight and the voter's UID so a plain integer order ranks
// votes by weight (then UID, which only breaks ties among equal weights and
// so cannot change a quantile).
const voterBits = 16

// consensus sets C_j = max{w : Σ_{i: W_ij ≥ w} stake_i ≥ τ} for each column
// (step 6), over voters with active stake. A voter without weight on j votes
// 0, which never lifts C_j, so only non-zero votes are collected.
func consensus(W matrix, activeStake []uint64, tau uint64, C []Fixed) {
	n := len(C)
	start := make([]int, n+1)
	for i := range n {
		if activeStake[i] == 0 {
			continue
		}
		cols, _ := W.row(i)
		for _, j := range cols {
			start[j+1]++
		}
	}
	for j := range n {
		start[j+1] += start[j]
	}
	votes := make([]uint64, start[n])
	fill := slices.Clone(start[:n])
	for i := range n {
		if activeStake[i] == 0 {
			continue
		}
		cols, vals := W.row(i)
		for k, j := range cols {
			votes[fill[j]] = uint64(vals[k])<<voterBits | uint64(i)
			fill[j]++
		}
	}
	for j := range n {
		C[j] = kappaQuantile(votes[start[j]:start[j+1]], activeStake, tau)
	}
}

// kappaQuantile returns the weight of the vote at which the stake of votes
// at least as high first reaches need, or 0 if all of them fall short. It is
// a weighted quickselect (expected linear time; it reorders keys), falling
// back to sorting small or stubborn ranges so adversarial weights cannot
// make it quadratic. The answer does not depend on the pivots chosen.
func kappaQuantile(keys []uint64, stake []uint64, need uint64) Fixed {
	const mask = 1<<voterBits - 1
	lo, hi := 0, len(keys)
	budget := 2 * bits.Len(uint(len(keys)))
	for {
		if hi-lo <= 16 || budget == 0 {
			slices.Sort(keys[lo:hi])
			var cum uint64
			for k := hi - 1; k >= lo; k-- {
				cum += stake[keys[k]&mask]
				if cum >= need {
					return Fixed(keys[k] >> voterBits)
				}
			}
			return 0
		}
		budget--
		pivot := median3(keys[lo], keys[lo+(hi-lo)/2], keys[hi-1])
		// Move keys above the pivot to the front, summing their stake.
		g := lo
		var above uint64
		for k := lo; k < hi; k++ {
			if keys[k] > pivot {
				keys[g], keys[k] = keys[k], keys[g]
				above += stake[keys[g]&mask]
				g++
			}
		}
		if above >= need && g > lo {
			hi = g
			continue
		}
		at := above + stake[pivot&mask]
		if at >= need {
			return Fixed(pivot >> voterBits)
		}
		// Drop everything at or above the pivot (keys are distinct, so
		// exactly one key equals it) and look below.
		for k := g; k < hi; k++ {
			if keys[k] == pivot {
				keys[g], keys[k] = keys[k], keys[g]
				break
			}
		}
		need -= at
		lo = g + 1
	}
}

func median3(a, b, c uint64) uint64 {
	if a > b {
		a, b = b, a
	}
	if b > c {
		b = c
	}
	return max(a, b)
}

// bonder computes steps 9–10.
type bonder struct {
	p   Params
	in  *Input
	W   matrix
	C   []Fixed // consensus
	sa  []Fixed // active stake
	inc []Fixed // incentive
}

// bondWeight is W̃_ij = (1−β)·W_ij + β·W̄_ij = W_ij − β·(W_ij − min(W_ij, C_j)).
func (b *bonder) bondWeight(w Fixed, j int32) Fixed {
	return w - b.p.BondsPenalty.Mul(w-min(w, b.C[j]))
}

// prevRow returns validator i's previous bonds sorted by UID. Entries on
// UIDs registered since the last epoch are skipped by keepPrev.
func (b *bonder) prevRow(i int) []Bond {
	if i >= len(b.in.PrevBonds) {
		return nil
	}
	row := b.in.PrevBonds[i]
	if !slices.IsSortedFunc(row, func(x, y Bond) int { return int(x.UID) - int(y.UID) }) {
		row = slices.Clone(row)
		slices.SortFunc(row, func(x, y Bond) int { return int(x.UID) - int(y.UID) })
	}
	return row
}

// keepPrev reports whether a previous bond on column j survives: bonds on a
// UID registered since the last epoch belong to its previous occupant.
func (b *bonder) keepPrev(j int) bool {
	return b.in.RegisteredAt == nil || b.in.RegisteredAt[j] <= b.in.LastEpochBlock
}

// merge walks validator i's previous bonds and weight row together in UID
// order, calling f with the surviving previous bond and W̃_ij (0 where
// absent) for every UID present in either.
func (b *bonder) merge(i int, f func(j int32, old, w Fixed)) {
	prev := b.prevRow(i)
	cols, vals := b.W.row(i)
	ip, iw := 0, 0
	for ip < len(prev) || iw < len(cols) {
		var j int32
		var old, w Fixed
		switch {
		case iw == len(cols) || (ip < len(prev) && int32(prev[ip].UID) < cols[iw]):
			j, old = int32(prev[ip].UID), prev[ip].Value
			ip++
		case ip == len(prev) || cols[iw] < int32(prev[ip].UID):
			j, w = cols[iw], vals[iw]
			iw++
		default:
			j, old, w = cols[iw], prev[ip].Value, vals[iw]
			ip++
			iw++
		}
		if old != 0 && !b.keepPrev(int(j)) {
			old = 0
		}
		if w != 0 {
			w = b.bondWeight(w, j)
		}
		if old != 0 || w != 0 {
			f(j, old, w)
		}
	}
}

// rowsBuffer is one backing array for all output bond rows, sized to the
// union of each row's previous bonds and weights, so an epoch allocates once
// for them; rows are capped so appending to one cannot overwrite the next.
func (b *bonder) rowsBuffer() []Bond {
	size := 0
	for i := range len(b.C) {
		b.merge(i, func(int32, Fixed, Fixed) { size++ })
	}
	return make([]Bond, 0, size)
}

// yuma3 is B = min(1, (1−α)·B_prev + α·W̃) per entry; D_i = Sa_i·Σ_j B̂_ij·I_j
// with B̂ the column-normalized bonds.
func (b *bonder) yuma3() ([][]Bond, []Fixed) {
	n := len(b.C)
	alpha := One - b.p.BondsMovingAverage
	keep := b.p.BondsMovingAverage
	bonds := make([][]Bond, n)
	colSum := make([]uint64, n) // ≤ n·One: fits, n ≤ 2^15
	buf := b.rowsBuffer()
	for i := range n {
		start := len(buf)
		b.merge(i, func(j int32, old, w Fixed) {
			v := min(keep.Mul(old)+alpha.Mul(w), One)
			if v > 0 {
				buf = append(buf, Bond{UID: uint16(j), Value: v})
				colSum[j] += uint64(v)
			}
		})
		if len(buf) > start {
			bonds[i] = buf[start:len(buf):len(buf)]
		}
	}
	// B̂_ij·I_j = B_ij·(I_j/colsum_j): one division per column.
	perBond := make([]Fixed, n)
	for j := range n {
		perBond[j] = FromRatio(uint64(b.inc[j]), colSum[j])
	}
	div := make([]Fixed, n)
	for i, row := range bonds {
		if b.sa[i] == 0 {
			continue
		}
		var d Fixed
		for _, e := range row {
			d += e.Value.Mul(perBond[e.UID])
		}
		div[i] = b.sa[i].Mul(d)
	}
	return bonds, div
}

// yuma2 is ΔB = colnorm(Sa ⊙ W̃); B = colnorm(α·ΔB + (1−α)·colnorm(B_prev));
// D = Bᵀ·I.
func (b *bonder) yuma2() ([][]Bond, []Fixed) {
	n := len(b.C)
	alpha := One - b.p.BondsMovingAverage
	keep := b.p.BondsMovingAverage
	deltaSum := make([]uint64, n)
	prevSum := make([]uint64, n)
	for i := range n {
		b.merge(i, func(j int32, old, w Fixed) {
			deltaSum[j] += uint64(b.sa[i].Mul(w))
			prevSum[j] += uint64(old)
		})
	}
	bonds := make([][]Bond, n)
	colSum := make([]uint64, n)
	buf := b.rowsBuffer()
	for i := range n {
		start := len(buf)
		b.merge(i, func(j int32, old, w Fixed) {
			d := FromRatio(uint64(b.sa[i].Mul(w)), deltaSum[j])
			o := FromRatio(uint64(old), prevSum[j])
			if v := alpha.Mul(d) + keep.Mul(o); v > 0 {
				buf = append(buf, Bond{UID: uint16(j), Value: v})
				colSum[j] += uint64(v)
			}
		})
		if len(buf) > start {
			bonds[i] = buf[start:len(buf):len(buf)]
		}
	}
	div := make([]Fixed, n)
	for i, row := range bonds {
		var d Fixed
		for k := range row {
			row[k].Value = FromRatio(uint64(row[k].Value), colSum[row[k].UID])
			d += row[k].Value.Mul(b.inc[row[k].UID])
		}
		div[i] = d
	}
	return bonds, div
}

// normalizeU64 returns v_i/Σv (all zero if Σv is 0). Σv must fit 64 bits.
func normalizeU64(v []uint64) []Fixed {
	sum := sumU64(v)
	out := make([]Fixed, len(v))
	if sum == 0 {
		return out
	}
	for i, x := range v {
		out[i] = FromRatio(x, sum)
	}
	return out
}

// normalizeFixed returns v_i/Σv (all zero if Σv is 0). Σv must fit 64 bits,
// which it does for Yuma's vectors: each entry is at most a few units.
func normalizeFixed(v []Fixed) []Fixed {
	var sum uint64
	for _, x := range v {
		sum += uint64(x)
	}
	out := make([]Fixed, len(v))
	if sum == 0 {
		return out
	}
	for i, x := range v {
		out[i] = FromRatio(uint64(x), sum)
	}
	return out
}

// split divides emission between miners (incentive) and validators
// (dividends), see Output.MinerEmission.
func split(e uint64, inc, div, sa, s []Fixed) (miner, validator []uint64) {
	n := len(inc)
	parts := make([]uint64, 2*n) // miners then validators, as weights
	for i := range n {
		parts[i], parts[n+i] = uint64(inc[i]), uint64(div[i])
	}
	if sumU64(parts) == 0 {
		basis := sa
		if sumU64(fixedU64(sa)) == 0 {
			basis = s
		}
		for i := range n {
			parts[n+i] = uint64(basis[i])
		}
	}
	alloc := largestRemainder(e, parts)
	return alloc[:n:n], alloc[n:]
}

func fixedU64(v []Fixed) []uint64 {
	out := make([]uint64, len(v))
	for i, x := range v {
		out[i] = uint64(x)
	}
	return out
}

func sumU64(v []uint64) uint64 {
	var s uint64
	for _, x := range v {
		s += x
	}
	return s
}
