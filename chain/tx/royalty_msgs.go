package tx

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/agoranet/agora/address"
)

// validateRoyaltyMsg checks the structure of the models-and-data messages:
// sizes, ids and the presence of what the chain needs, before any state is read.
func validateRoyaltyMsg(m *Msg) error {
	switch s := m.GetSum().(type) {
	case *Msg_ModelRegister:
		r := s.ModelRegister
		if r == nil {
			return errors.New("empty model_register")
		}
		if err := validateModelMeta(r.ModelId, r.Name, r.License, r.Urls); err != nil {
			return err
		}
		switch {
		case r.RoyaltyBps > 10_000 || r.DataBps > 10_000:
			return errors.New("royalty_bps and data_bps are at most 10000")
		case r.Shares == 0:
			return errors.New("a model needs a positive share supply")
		case len(r.Citations) > MaxCitations:
			return fmt.Errorf("%d citations, limit %d", len(r.Citations), MaxCitations)
		case r.DataBps > 0 && len(r.Citations) == 0:
			return errors.New("data_bps without citations")
		}
		for i, c := range r.Citations {
			if c == nil || len(c.Dataset) != 32 || c.Weight == 0 {
				return fmt.Errorf("citation %d needs a 32-byte dataset root and a positive weight", i)
			}
			for _, d := range r.Citations[:i] {
				if string(d.Dataset) == string(c.Dataset) {
					return fmt.Errorf("citation %d repeats a dataset", i)
				}
			}
		}
		return nil
	case *Msg_ModelUpdate:
		u := s.ModelUpdate
		if u == nil {
			return errors.New("empty model_update")
		}
		return validateModelMeta(u.ModelId, u.Name, u.License, u.Urls)
	case *Msg_ModelSharesTransfer:
		t := s.ModelSharesTransfer
		if t == nil || len(t.To) != address.Len || t.Shares == 0 {
			return errors.New("model_shares_transfer needs a 20-byte recipient and a positive share count")
		}
		_, err := ModelIDBytes(t.ModelId)
		return err
	case *Msg_ModelClaim:
		if s.ModelClaim == nil {
			return errors.New("empty model_claim")
		}
		_, err := ModelIDBytes(s.ModelClaim.ModelId)
		return err
	case *Msg_ModelOffer:
		o := s.ModelOffer
		if o == nil || o.Shares == 0 || o.EndHeight == 0 {
			return errors.New("model_offer needs a positive share count and an end height")
		}
		if o.MinShares > o.Shares {
			return errors.New("model_offer min_shares above the shares offered")
		}
		_, err := ModelIDBytes(o.ModelId)
		return err
	case *Msg_ModelBuy:
		b := s.ModelBuy
		if b == nil || b.Shares == 0 {
			return errors.New("model_buy needs a positive share count")
		}
		_, err := ModelIDBytes(b.ModelId)
		return err
	case *Msg_DataRegister:
		d := s.DataRegister
		if d == nil || len(d.Root) != 32 || d.Files == 0 {
			return errors.New("data_register needs a 32-byte root and at least one file")
		}
		if err := validateMeta(d.Name, d.License, d.Urls); err != nil {
			return err
		}
		if len(d.Contributors) > MaxContributors {
			return fmt.Errorf("%d contributors, limit %d", len(d.Contributors), MaxContributors)
		}
		for i, c := range d.Contributors {
			if c == nil || len(c.Address) != address.Len || c.Weight == 0 {
				return fmt.Errorf("contributor %d needs a 20-byte address and a positive weight", i)
			}
		}
		return nil
	case *Msg_DataContribute:
		c := s.DataContribute
		if c == nil || len(c.Root) != 32 || c.Leaf == nil {
			return errors.New("data_contribute needs a 32-byte root and a leaf")
		}
		if len(c.Leaf.FileSha256) != 32 || len(c.Leaf.Contributor) != address.Len || c.Leaf.Weight == 0 {
			return errors.New("data_contribute's leaf needs a 32-byte file hash, a 20-byte contributor and a positive weight")
		}
		if len(c.Proof) > MaxProofHashes {
			return fmt.Errorf("proof of %d hashes, limit %d", len(c.Proof), MaxProofHashes)
		}
		for i, h := range c.Proof {
			if len(h) != 32 {
				return fmt.Errorf("proof hash %d is %d bytes, want 32", i, len(h))
			}
		}
		return nil
	case *Msg_DataClaim:
		if s.DataClaim == nil || len(s.DataClaim.Root) != 32 {
			return errors.New("data_claim needs a 32-byte root")
		}
		return nil
	}
	return fmt.Errorf("not a royalty message: %T", m.GetSum())
}

func validateModelMeta(id, name, license string, urls []string) error {
	if _, err := ModelIDBytes(id); err != nil {
		return err
	}
	return validateMeta(name, license, urls)
}

func validateMeta(name, license string, urls []string) error {
	switch {
	case len(name) > MaxNameBytes || !utf8.ValidString(name):
		return fmt.Errorf("name must be UTF-8 of at most %d bytes", MaxNameBytes)
	case len(license) > MaxLicenseBytes || !utf8.ValidString(license):
		return fmt.Errorf("license must be UTF-8 of at most %d bytes", MaxLicenseBytes)
	case len(urls) > MaxModelURLs:
		return fmt.Errorf("%d URLs, limit %d", len(urls), MaxModelURLs)
	}
	for i, u := range urls {
		if len(u) == 0 || len(u) > MaxURLBytes || !utf8.ValidString(u) {
			return fmt.Errorf("url %d must be UTF-8 of 1 to %d bytes", i, MaxURLBytes)
		}
	}
	return nil
}
