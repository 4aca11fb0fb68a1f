// Package route holds the routing types a validator and a gateway share: the
// scored miners a gateway may send a request to. A validator produces them
// from its own measurements and a gateway consumes them, so this package sits
// below both and imports nothing but address; it must never import a server
// (gateway, miner, validator) or the chain.
package route

import "github.com/agoranet/agora/address"

// Candidate is a miner a gateway may route to: where it serves, the hotkey
// that signs its answers, and the score that weights its share of traffic.
type Candidate struct {
	UID      int
	Hotkey   address.Address
	Endpoint string
	Score    float64
	// Checks and FailedChecks count the validator's challenges of this
	// miner that verified and that did not, for those who watch it (the
	// explorer); routing uses only Score.
	Checks, FailedChecks int
}
