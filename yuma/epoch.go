// Package yuma is Yuma Consensus as a pure function: given a subnet's stake,
// weights and previous bonds, one epoch computes consensus, trust, incentive,
// dividends, new bonds and each UID's share of the epoch's emission.
//
// Everything is integer fixed-point (see Fixed) with deterministic ordering:
// no floats, no map iteration, no goroutines. Same input, same output, on
// every machine. The algorithm follows Bittensor's subtensor epoch as written
// down in shared/REFERENCE.md.
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
	// Yuma3 keeps each bond as an EMA of the clipped weight itself, in [0, 1].
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
	Kappa              Fixed  // consensus quantile; default 32767/65535 ≈ 0.5
	BondsMovingAverage Fixed  // default 0.9: α = 1 − BMA
	BondsPenalty       Fixed  // β; default 1 (bonds follow clipped weights)
	MaxValidators      int    // top-k stake holders get a validator permit
	ActivityCutoff     uint64 // blocks after which a silent validator is inactive
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

// Weight is one entry of a validator's weight row: UID and u16 value.
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
// have length n = len(Stake); optional ones may be nil.
type Input struct {
	Block uint64
	// LastEpochBlock is the block of the previous epoch: bond columns of UIDs
	// registered after it start from zero.
	LastEpochBlock uint64
	Stake          []uint64   // base units
	Weights        [][]Weight // row i: weights set by UID i (nil: none)
	LastUpdate     []uint64   // block of i's last weights; nil: see Active
	// Active overrides the activity cutoff when non-nil (simulations).
	Active []bool
	// RegisteredAt masks weights older than the target's registration; nil: no masking.
	RegisteredAt []uint64
	// FirstCommitBlock is, under commit-reveal, the block of i's earliest
	// pending commit (0: none); weights committed before j registered are masked.
	FirstCommitBlock []uint64
	// PrevPermit masks this epoch; nil: every UID with stake.
	PrevPermit []bool
	PrevBonds  [][]Bond // row i: bonds of validator i; nil: none
	OwnerUID   int      // the subnet owner's UID (exempt from self-weight and threshold); −1 none
	Emission   uint64   // base units to distribute this epoch
}

// Output is the epoch's result, indexed by UID.
type Output struct {
	Active            []bool
	NewPermit         []bool // permits for the next epoch
	StakeShare        []Fixed
	ActiveStake       []Fixed // Sa
	Consensus         []Fixed
	ValidatorTrust    []Fixed
	Rank              []Fixed
	Incentive         []Fixed
	Dividends         []Fixed
	Bonds             [][]Bond
	MinerEmission     []uint64
	ValidatorEmission []uint64
	// Unallocated is emission nobody could receive (no stake and no
	// incentive at all); the caller decides where it goes.
	Unallocated uint64
}

// ErrInput wraps every rejected input.
var ErrInput = errors.New("invalid yuma input")

// MaxUIDs bounds n so UIDs fit a uint16 with room to spare.
const MaxUIDs = 1 << 15

type entry struct {
	j int32
	w Fixed
}

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
	check := func(name string, l int, optional bool) error {
		if (optional && l == 0) || l == n {
			return nil
		}
		return fmt.Errorf("%w: %s has %d entries, want %d", ErrInput, name, l, n)
	}
	for _, c := range []struct {
		name string
		l    int
		opt  bool
	}{
		{"weights", len(in.Weights), true}, {"last_update", len(in.LastUpdate), in.Active != nil},
		{"active", len(in.Active), true}, {"registered_at", len(in.RegisteredAt), true},
		{"first_commit_block", len(in.FirstCommitBlock), true}, {"validator_permit", len(in.PrevPermit), true},
		{"bonds", len(in.PrevBonds), true},
	} {
		if err := check(c.name, c.l, c.opt); err != nil {
			return err
		}
	}
	if in.Active == nil && in.LastUpdate == nil {
		return fmt.Errorf("%w: need last_update or active", ErrInput)
	}
	var total uint64
	for _, s := range in.Stake {
		if total+s < total {
			return fmt.Errorf("%w: total stake overflows", ErrInput)
		}
		total += s
	}
	if in.OwnerUID >= n {
		return fmt.Errorf("%w: owner uid %d out of range", ErrInput, in.OwnerUID)
	}
	// seen[j] == i+1 marks j as already weighted by row i, without a map per row.
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
	for i, row := range in.PrevBonds {
		for _, b := range row {
			if int(b.UID) >= n || b.Value > One {
				return fmt.Errorf("%w: uid %d has bond %s on uid %d", ErrInput, i, b.Value, b.UID)
			}
		}
	}
	return nil
}

// Epoch runs one epoch of Yuma Consensus.
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
		Incentive: make([]Fixed, n), Dividends: make([]Fixed, n), Bonds: make([][]Bond, n),
	}

	// 1. Activity.
	for i := range n {
		if in.Active != nil {
			out.Active[i] = in.Active[i]
		} else {
			out.Active[i] = in.LastUpdate[i]+p.ActivityCutoff >= in.Block
		}
	}
	// 2. Stake, with the threshold (the owner is exempt).
	stake := make([]uint64, n)
	for i, s := range in.Stake {
		if s >= p.StakeThreshold || i == in.OwnerUID {
			stake[i] = s
		}
	}
	out.StakeShare = normalizeU64(stake, nil)
	// 3. Permits for the next epoch: top-k by stake; ties go to the lower UID.
	order := make([]int, 0, n)
	for i := range n {
		if stake[i] > 0 {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
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
	// 4. Active stake Sa = S ⊙ active ⊙ permit, normalized.
	out.ActiveStake = normalizeU64(stake, func(i int) bool { return out.Active[i] && permit[i] })
	sa := out.ActiveStake

	// 5. Weights: masked, then row-normalized.
	W := make([][]entry, n)
	for i := range n {
		if !permit[i] || i >= len(in.Weights) {
			continue
		}
		row := make([]entry, 0, len(in.Weights[i]))
		var sum uint64
		for _, w := range in.Weights[i] {
			j := int(w.UID)
			if w.Value == 0 || (j == i && i != in.OwnerUID) {
				continue
			}
			if in.RegisteredAt != nil && in.LastUpdate != nil && in.LastUpdate[i] <= in.RegisteredAt[j] {
				continue // set before j (re)registered: it judged a previous occupant
			}
			if in.FirstCommitBlock != nil && in.RegisteredAt != nil && in.FirstCommitBlock[i] > 0 && in.FirstCommitBlock[i] < in.RegisteredAt[j] {
				continue
			}
			row = append(row, entry{int32(j), Fixed(w.Value)})
			sum += uint64(w.Value)
		}
		if sum == 0 {
			continue
		}
		// One division per row: w = v·2^32/sum ≈ v·⌊2^63/sum⌋ / 2^31.
		inv := (uint64(1) << 63) / sum
		for k := range row {
			hi, lo := bits.Mul64(uint64(row[k].w), inv)
			row[k].w = Fixed(hi<<33 | lo>>31)
		}
		slices.SortFunc(row, func(a, b entry) int { return int(a.j - b.j) })
		W[i] = row
	}

	// 6. Consensus: stake-weighted κ-quantile of each column. Each column's
	// votes are packed as (One−w)<<16 | validator into a uint64, so a plain
	// integer sort orders them by weight descending, then UID ascending.
	colLen := make([]int, n)
	for i, row := range W {
		if sa[i] == 0 {
			continue
		}
		for _, e := range row {
			colLen[e.j]++
		}
	}
	colStart := make([]int, n+1)
	for j := range n {
		colStart[j+1] = colStart[j] + colLen[j]
	}
	votes := make([]uint64, colStart[n])
	fill := slices.Clone(colStart[:n])
	for i, row := range W {
		if sa[i] == 0 {
			continue
		}
		for _, e := range row {
			votes[fill[e.j]] = uint64(One-e.w)<<16 | uint64(i)
			fill[e.j]++
		}
	}
	for j := range n {
		col := votes[colStart[j]:colStart[j+1]]
		slices.Sort(col)
		var cum Fixed
		for _, v := range col {
			cum += sa[v&0xFFFF]
			if cum >= p.Kappa {
				out.Consensus[j] = One - Fixed(v>>16)
				break
			}
		}
	}

	// 7–8. Clip to consensus; validator trust; rank and incentive.
	clipped := make([][]entry, n)
	rank := make([]Fixed, n)
	for i, row := range W {
		if len(row) == 0 {
			continue
		}
		c := make([]entry, len(row))
		var trust Fixed
		for k, e := range row {
			v := min(e.w, out.Consensus[e.j])
			c[k] = entry{e.j, v}
			trust += v
			rank[e.j] += sa[i].Mul(v)
		}
		clipped[i] = c
		out.ValidatorTrust[i] = trust
	}
	out.Rank = rank
	out.Incentive = normalizeFixed(rank)

	// 9. Bond weights W̃ = W − β(W − W̄), per entry.
	bw := make([][]entry, n)
	for i, row := range W {
		if len(row) == 0 {
			continue
		}
		r := make([]entry, len(row))
		for k, e := range row {
			r[k] = entry{e.j, e.w - p.BondsPenalty.Mul(e.w-clipped[i][k].w)}
		}
		bw[i] = r
	}

	// 10. Bonds and dividends.
	prev := prevBonds(in, n)
	alpha := One - p.BondsMovingAverage
	var div []Fixed
	switch p.Version {
	case Yuma3:
		out.Bonds, div = yuma3Bonds(n, prev, bw, alpha, sa, out.Incentive)
	case Yuma2:
		out.Bonds, div = yuma2Bonds(n, prev, bw, alpha, sa, out.Incentive)
	}
	out.Dividends = normalizeFixed(div)

	// 11. Emission split.
	out.MinerEmission, out.ValidatorEmission = split(in.Emission, out.Incentive, out.Dividends, sa, out.StakeShare)
	out.Unallocated = in.Emission - sumU64(out.MinerEmission) - sumU64(out.ValidatorEmission)
	return out, nil
}

// prevBonds returns the previous bond rows as sorted entries, with the
// columns of UIDs registered since the last epoch reset to zero.
func prevBonds(in Input, n int) [][]entry {
	out := make([][]entry, n)
	for i := range min(n, len(in.PrevBonds)) {
		row := make([]entry, 0, len(in.PrevBonds[i]))
		for _, b := range in.PrevBonds[i] {
			j := int(b.UID)
			if b.Value == 0 || (in.RegisteredAt != nil && in.RegisteredAt[j] > in.LastEpochBlock) {
				continue
			}
			row = append(row, entry{int32(j), b.Value})
		}
		slices.SortFunc(row, func(a, b entry) int { return int(a.j - b.j) })
		out[i] = row
	}
	return out
}

// mergeRows walks two UID-sorted rows together, calling f with both values
// (0 where a row has no entry) for every UID in either.
func mergeRows(a, b []entry, f func(j int32, x, y Fixed)) {
	ia, ib := 0, 0
	for ia < len(a) || ib < len(b) {
		switch {
		case ib == len(b) || (ia < len(a) && a[ia].j < b[ib].j):
			f(a[ia].j, a[ia].w, 0)
			ia++
		case ia == len(a) || b[ib].j < a[ia].j:
			f(b[ib].j, 0, b[ib].w)
			ib++
		default:
			f(a[ia].j, a[ia].w, b[ib].w)
			ia++
			ib++
		}
	}
}

// yuma3Bonds: B = (1−α)B_prev + αW̃ per entry; D_i = Sa_i · Σ_j B̂_ij I_j with
// B̂ the column-normalized bonds.
func yuma3Bonds(n int, prev, bw [][]entry, alpha Fixed, sa, incentive []Fixed) ([][]Bond, []Fixed) {
	bonds := make([][]entry, n)
	colSum := make([]Fixed, n)
	for i := range n {
		row := make([]entry, 0, len(prev[i])+len(bw[i]))
		mergeRows(prev[i], bw[i], func(j int32, old, w Fixed) {
			v := (One - alpha).Mul(old) + alpha.Mul(w)
			if v > 0 {
				row = append(row, entry{j, v})
				colSum[j] += v
			}
		})
		bonds[i] = row
	}
	// B̂_ij·I_j = B_ij · (I_j / colsum_j): one division per column.
	perBond := make([]Fixed, n)
	for j := range n {
		perBond[j] = incentive[j].Div(colSum[j])
	}
	div := make([]Fixed, n)
	for i, row := range bonds {
		if sa[i] == 0 {
			continue
		}
		var d Fixed
		for _, e := range row {
			d += e.w.Mul(perBond[e.j])
		}
		div[i] = sa[i].Mul(d)
	}
	return toBonds(bonds), div
}

// yuma2Bonds: ΔB = colnorm(Sa ⊙ W̃); B = colnorm(α·ΔB + (1−α)·colnorm(B_prev));
// D = Bᵀ·I.
func yuma2Bonds(n int, prev, bw [][]entry, alpha Fixed, sa, incentive []Fixed) ([][]Bond, []Fixed) {
	delta := make([][]entry, n)
	for i, row := range bw {
		if sa[i] == 0 {
			continue
		}
		d := make([]entry, 0, len(row))
		for _, e := range row {
			if v := sa[i].Mul(e.w); v > 0 {
				d = append(d, entry{e.j, v})
			}
		}
		delta[i] = d
	}
	colNormalize(delta, n)
	prevN := make([][]entry, n)
	for i := range prev {
		prevN[i] = slices.Clone(prev[i])
	}
	colNormalize(prevN, n)
	bonds := make([][]entry, n)
	for i := range n {
		row := make([]entry, 0, len(prevN[i])+len(delta[i]))
		mergeRows(prevN[i], delta[i], func(j int32, old, d Fixed) {
			if v := alpha.Mul(d) + (One - alpha).Mul(old); v > 0 {
				row = append(row, entry{j, v})
			}
		})
		bonds[i] = row
	}
	colNormalize(bonds, n)
	div := make([]Fixed, n)
	for i, row := range bonds {
		var d Fixed
		for _, e := range row {
			d += e.w.Mul(incentive[e.j])
		}
		div[i] = d
	}
	return toBonds(bonds), div
}

func colNormalize(m [][]entry, n int) {
	sum := make([]Fixed, n)
	for _, row := range m {
		for _, e := range row {
			sum[e.j] += e.w
		}
	}
	for _, row := range m {
		for k := range row {
			row[k].w = row[k].w.Div(sum[row[k].j])
		}
	}
}

func toBonds(m [][]entry) [][]Bond {
	out := make([][]Bond, len(m))
	for i, row := range m {
		if len(row) == 0 {
			continue
		}
		r := make([]Bond, len(row))
		for k, e := range row {
			r[k] = Bond{UID: uint16(e.j), Value: e.w}
		}
		out[i] = r
	}
	return out
}

// normalizeU64 returns v_i/Σv over the indices keep accepts (nil: all).
func normalizeU64(v []uint64, keep func(int) bool) []Fixed {
	var sum uint64
	for i, x := range v {
		if keep == nil || keep(i) {
			sum += x
		}
	}
	out := make([]Fixed, len(v))
	if sum == 0 {
		return out
	}
	for i, x := range v {
		if keep == nil || keep(i) {
			out[i] = FromRatio(x, sum)
		}
	}
	return out
}

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
// (dividends): miner_i = E·I_i/σ, validator_i = E·D_i/σ with σ = Σ(I+D). With
// σ = 0 validators get everything by active stake (else by stake). The parts
// sum to E exactly: floors first, then the leftover units one each to the
// largest remainders (ties: miners before validators, lower UID first).
func split(e uint64, inc, div, sa, s []Fixed) (miner, validator []uint64) {
	n := len(inc)
	parts := make([]uint64, 0, 2*n) // miners then validators, as weights
	for _, x := range inc {
		parts = append(parts, uint64(x))
	}
	for _, x := range div {
		parts = append(parts, uint64(x))
	}
	if sumU64(parts) == 0 {
		basis := sa
		if sumU64(fixedU64(sa)) == 0 {
			basis = s
		}
		for i := range n {
			parts[i] = 0
			parts[n+i] = uint64(basis[i])
		}
	}
	alloc := largestRemainder(e, parts)
	return alloc[:n], alloc[n:]
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
