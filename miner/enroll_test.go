package miner

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/internal/testkit"
)

// TestEnrollmentJoinsAndPublishes brings a hotkey with no balance and no
// UID onto a real chain the way `agora miner --from` and the devnet do.
func TestEnrollmentJoinsAndPublishes(t *testing.T) {
	const chainID = "agora-enroll-test"
	cold, coldAddr := testkit.Key(1)
	ownerHot, _ := testkit.Key(2)
	hot, hotAddr := testkit.Key(3)
	g := chain.Genesis{Params: chain.DefaultParams(200), Devnet: true,
		Accounts: []chain.GenesisAccount{{Address: coldAddr, Balance: 10_000 * agr.Unit}}}
	ch := testkit.StartChain(t, testkit.NodeOptions{ChainID: chainID, Genesis: g})
	c := ch.Client
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ch.RegisterSubnet(t, cold, ownerHot, "enroll")

	if _, err := (Enrollment{Chain: c, Netuid: 1, Hotkey: hot}).Join(ctx); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("join without a coldkey: %v, want ErrNotRegistered", err)
	}
	e := Enrollment{Chain: c, Netuid: 1, Hotkey: hot, Coldkey: cold}
	if _, err := e.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if acc, _, err := c.Account(ctx, hotAddr, false); err != nil || acc.Balance < FeeFloor {
		t.Fatalf("hotkey not funded: %v %v", acc, err)
	}
	if _, err := e.Join(ctx); err != nil { // already registered and funded: nothing to do
		t.Fatal(err)
	}
	x := make([]byte, 32)
	if err := e.Publish(ctx, "http://127.0.0.1:1", x, "model"); err != nil {
		t.Fatal(err)
	}
	mg, err := c.Metagraph(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(mg.Neurons) != 2 || mg.Neurons[1].Endpoint != "http://127.0.0.1:1" || mg.Neurons[1].ModelId != "model" {
		t.Fatalf("metagraph %+v", mg.Neurons)
	}
}
