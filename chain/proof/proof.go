// Package proof checks the chain's state proofs: ICS-23 IAVL commitment
// proofs of one key against an app hash. It is what a light client needs to
// trust a query answer without trusting the node.
//
// It imports only the ICS-23 verifier, never the store (cosmos/iavl,
// goleveldb) that produces the proofs, so SDK builds stay small.
package proof

import (
	"errors"
	"fmt"

	ics23 "github.com/cosmos/ics23/go"
)

// OpType names the single proof op the chain returns with a proven query:
// an ICS-23 IAVL proof of the key against the app hash.
const OpType = "ics23:iavl"

// Verify checks an ICS-23 IAVL proof of key=value (value nil: absence)
// against root.
func Verify(root []byte, p *ics23.CommitmentProof, key, value []byte) error {
	if p == nil {
		return errors.New("no proof")
	}
	if value == nil {
		if !ics23.VerifyNonMembership(ics23.IavlSpec, root, p, key) {
			return fmt.Errorf("non-membership proof of %x does not verify against root %X", key, root)
		}
		return nil
	}
	if !ics23.VerifyMembership(ics23.IavlSpec, root, p, key, value) {
		return fmt.Errorf("membership proof of %x does not verify against root %X", key, root)
	}
	return nil
}
