package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/client/lightclient"
	"github.com/agoranet/agora/keys"
)

// openKeystore opens --home's keystore.
func openKeystore(cmd *cobra.Command) (*keys.Keystore, error) {
	return keys.Open(filepath.Join(homeDir(cmd), "keys"))
}

// loadSigner unlocks the named key with the password from flag, env or prompt.
func loadSigner(cmd *cobra.Command, name string) (ed25519.PrivateKey, error) {
	ks, _, err := lookupKey(cmd, name)
	if err != nil {
		return nil, err
	}
	pw, err := readPassword(cmd, false)
	if err != nil {
		return nil, err
	}
	priv, err := ks.Unlock(name, pw)
	if err != nil {
		return nil, fmt.Errorf("unlock key %q: %w", name, err)
	}
	return priv, nil
}

// resolveAddress accepts a bech32 address or the name of a key in the keystore.
func resolveAddress(cmd *cobra.Command, s string) (address.Address, error) {
	if a, err := address.Parse(s); err == nil {
		return a, nil
	}
	ks, err := openKeystore(cmd)
	if err == nil {
		if info, err := ks.Get(s); err == nil {
			return info.Address, nil
		}
	}
	return address.Address{}, usageErrorf("%q is neither an agora1… address nor a key name in %s", s, filepath.Join(homeDir(cmd), "keys"))
}

// newClient connects to --node. Given --trust-height and --trust-hash it
// checks every proven answer with a light client that starts from that
// header, the first node its primary and every node a witness.
func newClient(cmd *cobra.Command) (*client.Client, error) {
	urls := nodeAddrs(cmd)
	if len(urls) == 0 {
		return nil, usageErrorf("--node: give at least one RPC URL")
	}
	c, err := client.New(urls...)
	if err != nil {
		return nil, usageErrorf("--node: %v", err)
	}
	height, _ := cmd.Flags().GetInt64(flagTrustHeight)
	hashText, _ := cmd.Flags().GetString(flagTrustHash)
	if height == 0 && hashText == "" {
		return c, nil
	}
	hash, err := hex.DecodeString(hashText)
	if err != nil || len(hash) != 32 || height <= 0 {
		return nil, usageErrorf("--trust-height and --trust-hash go together: a positive height and the 64-hex-digit hash of that block")
	}
	period, _ := cmd.Flags().GetDuration(flagTrustPeriod)
	ctx := cmd.Context()
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	var witnesses []*client.Client
	for _, u := range urls {
		w, err := client.New(u)
		if err != nil {
			return nil, usageErrorf("--node: %v", err)
		}
		witnesses = append(witnesses, w)
	}
	v, err := lightclient.New(ctx, chainID, c, witnesses, lightclient.Options{TrustHeight: height, TrustHash: hash, TrustPeriod: period})
	if err != nil {
		return nil, err
	}
	c.SetVerifier(v)
	return c, nil
}

// signerOnChain unlocks the named key and connects to --node, for commands
// that sign something bound to the chain's id without sending it.
func signerOnChain(cmd *cobra.Command, name string) (ed25519.PrivateKey, *client.Client, string, error) {
	priv, err := loadSigner(cmd, name)
	if err != nil {
		return nil, nil, "", err
	}
	c, err := newClient(cmd)
	if err != nil {
		return nil, nil, "", err
	}
	chainID, err := c.ChainID(cmd.Context())
	if err != nil {
		return nil, nil, "", err
	}
	return priv, c, chainID, nil
}

// positiveAmount parses a command-line amount that must name its unit and be above zero.
func positiveAmount(s string) (uint64, error) {
	v, err := agr.Parse(s)
	if err != nil {
		return 0, usageError{err}
	}
	if v == 0 {
		return 0, usageErrorf("amount %q must be positive", s)
	}
	return v, nil
}
