package explorer

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"

	"github.com/agoranet/agora/chain/tx"
)

// chainValidatorsData is GET /chain-validators.
type chainValidatorsData struct {
	Height int64 `json:"height"`
	Active int   `json:"active"`
	// MaxActive is the size of the active set (top by bond).
	MaxActive uint32 `json:"max_active"`
	Bonded    uint64 `json:"bonded"`
	// Window is the downtime window in blocks; a validator missing more
	// than MaxMissed of it is jailed.
	Window     uint64              `json:"signed_blocks_window"`
	MaxMissed  uint64              `json:"max_missed_blocks"`
	Validators []chainValidatorRow `json:"validators"`
}

type chainValidatorRow struct {
	Moniker          string `json:"moniker"`
	Operator         string `json:"operator"`
	ConsensusAddress string `json:"consensus_address"`
	Bonded           uint64 `json:"bonded"`
	Power            uint64 `json:"power"` // in the set last sent to CometBFT
	Status           string `json:"status"`
	Missed           uint64 `json:"missed"`      // in the current downtime window
	WindowSeen       uint64 `json:"window_seen"` // blocks counted in it so far
	JailedUntil      uint64 `json:"jailed_until,omitempty"`
	Unbonding        uint64 `json:"unbonding"`
	Slashed          uint64 `json:"slashed"`
	Bootstrap        bool   `json:"bootstrap,omitempty"`
	CreatedAt        uint64 `json:"created_at"`
}

// StatusClass is the badge style of a status.
func (v chainValidatorRow) StatusClass() string {
	switch v.Status {
	case "active":
		return "ok"
	case "jailed", "tombstoned":
		return "fail"
	}
	return ""
}

// statusOrder sorts the active set first, then those that could join it.
var statusOrder = map[string]int{"active": 0, "candidate": 1, "jailed": 2, "unbonding": 3, "unbonded": 4, "tombstoned": 5}

func (e *Explorer) loadChainValidators(r *http.Request) (any, error) {
	ctx, c := r.Context(), e.cfg.Chain
	l, err := c.ChainValidators(ctx, false)
	if err != nil {
		return nil, err
	}
	p, err := c.Params(ctx, false)
	if err != nil {
		return nil, err
	}
	d := &chainValidatorsData{Height: l.Height, MaxActive: p.MaxChainValidators, Window: p.SignedBlocksWindow, MaxMissed: p.MaxMissedBlocks,
		Validators: []chainValidatorRow{}}
	for _, v := range l.Validators {
		row := chainValidatorRow{
			Moniker: v.Moniker, Operator: addrString(v.Operator),
			ConsensusAddress: fmt.Sprintf("%X", tx.ConsensusAddress(v.ConsensusPubKey)),
			Bonded:           v.Bonded, Power: v.Power, Status: validatorStatus(v), Missed: v.Missed, WindowSeen: v.WindowSeen,
			Slashed: v.Slashed, Bootstrap: v.Bootstrap, CreatedAt: v.CreatedAt,
		}
		if v.Jailed && !v.Tombstoned {
			row.JailedUntil = v.JailedUntil
		}
		for _, u := range v.Unbonding {
			row.Unbonding += u.Amount
		}
		if row.Status == "active" {
			d.Active++
		}
		d.Bonded += v.Bonded
		d.Validators = append(d.Validators, row)
	}
	slices.SortStableFunc(d.Validators, func(a, b chainValidatorRow) int {
		return cmp.Or(cmp.Compare(statusOrder[a.Status], statusOrder[b.Status]), cmp.Compare(b.Power, a.Power), cmp.Compare(b.Bonded, a.Bonded))
	})
	return d, nil
}
