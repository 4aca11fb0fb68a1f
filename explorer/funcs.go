package explorer

import (
	"encoding/hex"
	"fmt"
	"html/template"
	"math/big"
	"time"

	"github.com/agoranet/agora/agr"
)

// funcs are the template helpers every page may use.
var funcs = template.FuncMap{
	// agr renders base units as AGR ("1.5 AGR"); agrFull groups the
	// whole AGR by thousands; agrShort rounds for dense tables.
	"agr":      func(n uint64) string { return agr.Format(n) },
	"agrFull":  agrFull,
	"agrShort": agrShort,
	"digits":   digits,
	// share renders a 32.32 fixed-point fraction of one (Yuma's incentive,
	// consensus, dividends, trust) as a decimal with 4 places.
	"share": share,
	// pct renders a 32.32 fraction as a percentage with 2 places.
	"pct": func(v uint64) string { return percent(v, 1<<32) },
	// ratio renders a/b as a percentage with 2 places ("—" when b is 0).
	"ratio":   func(a, b uint64) string { return percent(a, b) },
	"short":   short,
	"hex":     func(b []byte) string { return hex.EncodeToString(b) },
	"since":   since,
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
}

// share is exact: no float touches a chain value on its way to the page.
func share(v uint64) string {
	r := new(big.Rat).SetFrac(new(big.Int).SetUint64(v), new(big.Int).Lsh(big.NewInt(1), 32))
	return r.FloatString(4)
}

func percent(a, b uint64) string {
	if b == 0 {
		return "—"
	}
	r := new(big.Rat).SetFrac(new(big.Int).Mul(new(big.Int).SetUint64(a), big.NewInt(100)), new(big.Int).SetUint64(b))
	return r.FloatString(2) + "%"
}

// short abbreviates a long identifier (address, hash) to its ends; the
// full value stays in the link and the title attribute.
func short(s string) string {
	if len(s) <= 20 {
		return s
	}
	return s[:10] + "…" + s[len(s)-6:]
}

// since renders how long ago t was, coarsely ("4s ago", "3m ago").
func since(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
