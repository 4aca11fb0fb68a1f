package explorer

import (
	"github.com/agoranet/agora/chain/emission"
)

// The emission schedule is computed from chain/emission itself (a pure
// package: integers only, no state), so the curve on the home page is the
// rule the chain mints by, not a copy of it that could drift.

// emissionHorizon is how many halvings the chart and table show: after ten,
// 99.9% of the cap is out and the rest takes longer than everything before.
const emissionHorizon = 10

// emissionPhase is a stretch of blocks with one reward: the schedule is a
// straight line between phase starts.
type emissionPhase struct {
	Halvings uint   `json:"halvings"`
	Height   uint64 `json:"height"` // first block of the phase
	Issued   uint64 `json:"issued"` // genesis + minted before that block
	Reward   uint64 `json:"reward"` // base units per block in the phase
}

// emissionSchedule lists the phases from genesis (issued = genesis at height
// 0) until the cap is reached, the reward rounds down to nothing, or
// horizon halvings have happened; the last entry is where it stopped (its
// Reward is that of the next phase, 0 when emission has ended).
//
// Within a phase the reward is constant, so each phase is stepped in closed
// form: every block of it but the last is strictly below the next halving
// and cannot be clamped by the cap, and the last block is computed by
// emission.BlockReward itself. The result is block-for-block what the chain
// mints (TestEmissionScheduleMatchesBlocks checks it).
func emissionSchedule(base, capacity, genesis uint64, horizon uint) []emissionPhase {
	var out []emissionPhase
	issued, height := genesis, uint64(0)
	for {
		k := emission.Halvings(capacity, issued)
		reward := emission.BlockReward(base, capacity, issued)
		out = append(out, emissionPhase{Halvings: k, Height: height, Issued: issued, Reward: reward})
		if reward == 0 || issued >= capacity || k >= horizon {
			return out
		}
		// The next halving comes once issued reaches capacity − ⌊capacity/2^(k+1)⌋.
		next := capacity - capacity>>(k+1)
		n := (next - issued + reward - 1) / reward // blocks until issued ≥ next
		if n > 1 {
			issued += (n - 1) * reward
			height += n - 1
		}
		issued += emission.BlockReward(base, capacity, issued)
		height++
	}
}

// issuedAt is genesis + minted after block height under the schedule.
func issuedAt(base, capacity, genesis, height uint64) uint64 {
	phases := emissionSchedule(base, capacity, genesis, 64)
	for i := len(phases) - 1; i >= 0; i-- {
		p := phases[i]
		if p.Height <= height {
			// A phase's blocks all mint its reward (the cap clamps only a
			// last block, which starts the next phase).
			return min(p.Issued+(height-p.Height)*p.Reward, capacity)
		}
	}
	return genesis
}
