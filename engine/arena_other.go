//go:build !unix

package engine

import "errors"

func mapAnon(int) ([]byte, error) { return nil, errors.ErrUnsupported }

func unmapAnon([]byte) error { return nil }
