package explorer_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/dataset"
	"github.com/agoranet/agora/explorer"
	"github.com/agoranet/agora/internal/browser"
	"github.com/agoranet/agora/internal/poll"
	"github.com/agoranet/agora/internal/testkit"
)

// The royalty pages' network: alice registers a two-file dataset (crediting
// herself outright; carol's leaf is proved in after), a model citing it,
// gives bob a quarter of the model's shares, pins the model on subnet 1
// with royalty on emission until the model has earned, then opens an
// offering that bob buys into.

const rtChainID = "agora-explorer-royalty-test"

const (
	rtShares     = 1_000_000
	rtToBob      = 250_000
	rtRoyaltyBps = 1500
	rtDataBps    = 2000
	rtOffered    = 1000
	rtPrice      = agr.Unit / 100
	rtStep       = 1000
	rtBought     = 4
)

type rtNet struct {
	ch       *testkit.Chain
	url      string
	modelID  string
	root     string // hex
	register string // the model_register transaction's hash, upper hex
	alice    string
	bob      string
	carol    string
}

func startRtNet(t *testing.T) *rtNet {
	t.Helper()
	alice, aliceAddr := testkit.Key(1)
	bob, bobAddr := testkit.Key(2)
	aliceHot, _ := testkit.Key(3)
	_, carol := testkit.Key(4)
	_, dave := testkit.Key(5)
	gp := chain.DefaultParams(100)
	gp.RoyaltyStreamBlocks = 3 // released within a few blocks, so claimable settles fast
	ch := testkit.StartChain(t, testkit.NodeOptions{ChainID: rtChainID, BlockTime: 100 * time.Millisecond, Genesis: chain.Genesis{
		Params: gp, Devnet: true,
		Accounts: []chain.GenesisAccount{{Address: aliceAddr, Balance: 1_000_000 * agr.Unit}, {Address: bobAddr, Balance: 1_000 * agr.Unit}},
	}})
	sum := sha256.Sum256([]byte("a GGUF file"))
	n := &rtNet{ch: ch, modelID: hex.EncodeToString(sum[:]), alice: aliceAddr.String(), bob: bobAddr.String(), carol: carol.String()}

	// Two leaves: carol's (weight 5) and dave's (weight 2, never proved).
	leaves := []*tx.DataLeaf{
		{FileSha256: bytes32(1), Size: 3000, Contributor: carol.Bytes(), Weight: 5},
		{FileSha256: bytes32(2), Size: 2000, Contributor: dave.Bytes(), Weight: 2},
	}
	hashes := make([][32]byte, len(leaves))
	for i, l := range leaves {
		hashes[i] = dataset.LeafHash(l)
	}
	root, err := dataset.Root(hashes)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := dataset.Prove(hashes, 0)
	if err != nil {
		t.Fatal(err)
	}
	var proofBytes [][]byte
	for _, p := range proof {
		proofBytes = append(proofBytes, append([]byte(nil), p[:]...))
	}
	n.root = hex.EncodeToString(root[:])
	ch.Send(t, alice,
		tx.DataRegister(&tx.MsgDataRegister{Root: root[:], Name: "tiny-corpus", License: "CC-BY-4.0", Urls: []string{"https://data.example.org/tiny"},
			Size: 5000, Files: 2, Contributors: []*tx.Contributor{{Address: aliceAddr.Bytes(), Weight: 3}}}),
		tx.DataContribute(root[:], leaves[0], 0, proofBytes))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hash, err := ch.Client.SignAndSend(ctx, alice, []*tx.Msg{tx.ModelRegister(&tx.MsgModelRegister{
		ModelId: n.modelID, Name: "tiny-llama", License: "apache-2.0",
		Urls:       []string{"https://models.example.org/tiny.gguf", "javascript:alert(1)"},
		RoyaltyBps: rtRoyaltyBps, DataBps: rtDataBps, Shares: rtShares,
		Citations: []*tx.Citation{{Dataset: root[:], Weight: 1}},
	})}, client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Client.WaitTx(ctx, hash); err != nil {
		t.Fatal(err)
	}
	n.register = fmt.Sprintf("%X", hash)
	ch.Send(t, alice, tx.ModelSharesTransfer(n.modelID, bobAddr, rtToBob))

	// Royalty on emission makes the model earn without channel traffic.
	ch.RegisterSubnet(t, alice, aliceHot, "royalty-net")
	p := subnet.DefaultSubnetParams()
	p.Tempo, p.ModelId, p.RoyaltyOnEmission = 3, n.modelID, true
	ch.Send(t, alice, tx.SubnetSetParams(1, p), tx.SubnetStart(1))
	if err := poll.Until(ctx, 100*time.Millisecond, func() bool {
		m, err := ch.Client.Model(ctx, n.modelID, false)
		return err == nil && m.Pool.GetEarned() > 0 && m.DataPaid > 0
	}); err != nil {
		t.Fatal("the model never earned:", err)
	}
	// Then stop it, so the figures hold still for the assertions.
	p.RoyaltyOnEmission = false
	ch.Send(t, alice, tx.SubnetSetParams(1, p))
	m, err := ch.Client.Model(ctx, n.modelID, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := poll.Until(ctx, 100*time.Millisecond, func() bool {
		h, err := ch.Client.Height(ctx)
		return err == nil && uint64(h) > m.Pool.StreamEnd
	}); err != nil {
		t.Fatal(err)
	}
	h, err := ch.Client.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch.Send(t, alice, tx.ModelOffer(&tx.MsgModelOffer{ModelId: n.modelID, Shares: rtOffered, Price: rtPrice, PriceStep: rtStep,
		MinShares: 10, EndHeight: uint64(h) + 100_000}))
	ch.Send(t, bob, tx.ModelBuy(n.modelID, rtBought, 0))

	srv, err := explorer.Start(testkit.Listen(t), explorer.Config{Chain: ch.Client})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	n.url = srv.URL()
	return n
}

func bytes32(b byte) []byte {
	out := make([]byte, 32)
	for i := range out {
		out[i] = b
	}
	return out
}

func TestRoyaltyPages(t *testing.T) {
	n := startRtNet(t)
	ctx := context.Background()
	m, err := n.ch.Client.Model(ctx, n.modelID, false)
	if err != nil {
		t.Fatal(err)
	}
	d, err := n.ch.Client.Dataset(ctx, mustHex(t, n.root), false)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("models", func(t *testing.T) {
		var l explorer.ModelsPage
		getJSON(t, n.url+"/api/models", http.StatusOK, &l)
		if len(l.Models) != 1 || l.Height <= 0 {
			t.Fatalf("models %+v", l)
		}
		s := l.Models[0]
		if s.ID != n.modelID || s.Name != "tiny-llama" || s.Owner != n.alice || s.RoyaltyBps != rtRoyaltyBps || s.DataBps != rtDataBps ||
			s.Shares != rtShares || s.Earned != m.Pool.Earned || s.Earned == 0 || s.DataPaid != m.DataPaid || fmt.Sprint(s.Subnets) != "[1]" {
			t.Fatalf("model summary %+v, chain earned %d data paid %d", s, m.Pool.Earned, m.DataPaid)
		}
		code, body, _ := getPage(t, n.url+"/models")
		row := rowOf(t, body, `<tr data-model="`+n.modelID+`">`)
		for _, want := range []string{`href="/models/` + n.modelID + `"`, "tiny-llama", `class="num royalty">15.00%<`, `class="num data">20.00%<`,
			`class="num shares">1000000<`, `href="/subnets/1"`} {
			if !strings.Contains(row, want) {
				t.Errorf("models page %d: row lacks %q: %s", code, want, row)
			}
		}
		if !strings.Contains(body, `href="/models">Models</a>`) || !strings.Contains(body, `href="/datasets">Datasets</a>`) {
			t.Error("no Models and Datasets links in the header")
		}
	})

	t.Run("model", func(t *testing.T) {
		var p explorer.ModelPage
		getJSON(t, n.url+"/api/models/"+n.modelID, http.StatusOK, &p)
		if p.ID != n.modelID || p.License != "apache-2.0" || len(p.URLs) != 2 || p.URLs[0].URL != "https://models.example.org/tiny.gguf" ||
			p.RoyaltyBps != rtRoyaltyBps || p.DataBps != rtDataBps || p.Seq != 1 || p.RegisteredAt != m.RegisteredAt || p.Holder != nil {
			t.Fatalf("model page head %+v", p)
		}
		// Emission no longer pays it and the stream has ended: the pool is still.
		if p.Pool.Shares != rtShares || p.Pool.Earned != m.Pool.Earned || p.Pool.Held != m.Pool.Held || p.Pool.Streaming != 0 || p.Pool.StreamEnd != 0 {
			t.Errorf("pool %+v, chain %+v", p.Pool, m.Pool)
		}
		if len(p.Citations) != 1 || p.Citations[0].Dataset != n.root || p.Citations[0].Name != "tiny-corpus" || p.Citations[0].Weight != 1 ||
			p.Citations[0].Share != 1<<32 || p.CitationWeight != 1 {
			t.Errorf("citations %+v", p.Citations)
		}
		if len(p.PinnedBy) != 1 || p.PinnedBy[0] != (explorer.SubnetRef{Netuid: 1, Name: "royalty-net"}) {
			t.Errorf("pinned by %+v", p.PinnedBy)
		}
		cost, err := tx.OfferingCost(rtPrice, rtStep, 0, rtBought)
		if err != nil {
			t.Fatal(err)
		}
		o := p.Offering
		if o == nil || o.Shares != rtOffered || o.Sold != rtBought || o.Price != rtPrice || o.PriceStep != rtStep ||
			o.PriceNow != rtPrice+rtBought*rtStep || o.MinShares != 10 || o.Raised != cost || o.Buyers != 1 || o.Seller != n.alice || o.MinReached() {
			t.Fatalf("offering %+v, want %d raised", o, cost)
		}

		code, body, _ := getPage(t, n.url+"/models/"+n.modelID)
		for _, want := range []string{
			`<a href="https://models.example.org/tiny.gguf" rel="nofollow noopener noreferrer">`,
			`href="/datasets/` + n.root + `">tiny-corpus</a>`, `href="/subnets/1">royalty-net</a>`,
			`id="royalty">15.00%<`, `id="shares">1000000<`, `<progress value="4" max="1000">`,
			`id="offering-sold">4 of 1000 sold<`, `id="price-now">` + agr.Format(rtPrice+rtBought*rtStep) + ` `,
			`id="earned">` + agr.Format(m.Pool.Earned) + `<`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("model page %d lacks %q", code, want)
			}
		}
		// A URL that is not http(s) is text, never a link.
		if strings.Contains(body, `href="javascript`) || strings.Contains(body, "#ZgotmplZ") || !strings.Contains(body, "javascript:alert(1)") {
			t.Error("the javascript: URL is linked, or missing")
		}
	})

	t.Run("holder", func(t *testing.T) {
		for _, c := range []struct {
			who            string
			shares, locked uint64
		}{
			{n.alice, rtShares - rtToBob, rtOffered},
			{n.bob, rtToBob, 0}, // the shares bought wait in escrow until the offering closes
			{n.carol, 0, 0},
		} {
			pos, err := n.ch.Client.ModelPosition(ctx, n.modelID, mustAddr(t, c.who), false)
			if err != nil {
				t.Fatal(err)
			}
			var p explorer.ModelPage
			getJSON(t, n.url+"/api/models/"+n.modelID+"?holder="+url.QueryEscape(c.who), http.StatusOK, &p)
			h := p.Holder
			if h == nil || h.Address != c.who || h.Shares != c.shares || h.Locked != c.locked || h.Share != explorer.Frac((c.shares<<32)/rtShares) {
				t.Fatalf("holder %s: %+v, want %d shares %d locked", c.who, h, c.shares, c.locked)
			}
			// The pool is still, so the claimable amount is the same at any later height.
			if h.Claimable != pos.Claimable || (c.shares > 0) != (h.Claimable > 0) {
				t.Errorf("holder %s claimable %d, SDK %d", c.who, h.Claimable, pos.Claimable)
			}
			_, body, _ := getPage(t, n.url+"/models/"+n.modelID+"?holder="+c.who)
			if !strings.Contains(body, fmt.Sprintf(`id="holder-shares">%d `, c.shares)) || !strings.Contains(body, `value="`+c.who+`"`) ||
				!strings.Contains(body, `id="holder-claimable">`+agr.Format(h.Claimable)+` `) {
				t.Errorf("model page for holder %s lacks its figures", c.who)
			}
		}
	})

	t.Run("datasets", func(t *testing.T) {
		var l explorer.DatasetsPage
		getJSON(t, n.url+"/api/datasets", http.StatusOK, &l)
		if len(l.Datasets) != 1 {
			t.Fatalf("datasets %+v", l)
		}
		s := l.Datasets[0]
		// Alice's 3 at registration and carol's proved 5; dave's 2 unproved.
		if s.Root != n.root || s.Name != "tiny-corpus" || s.Owner != n.alice || s.Files != 2 || s.Size != 5000 || s.Contributors != 2 ||
			s.TotalWeight != 8 || s.CitedBy != 1 || s.Earned != d.Pool.Earned || s.Earned != m.DataPaid {
			t.Fatalf("dataset summary %+v; the model paid data %d", s, m.DataPaid)
		}
		code, body, _ := getPage(t, n.url+"/datasets")
		row := rowOf(t, body, `<tr data-dataset="`+n.root+`">`)
		for _, want := range []string{`href="/datasets/` + n.root + `"`, `class="num files">2<`, `class="num size" title="5000 bytes">4.8 KiB<`,
			`class="num contributors">2<`, `class="num weight">8<`, "1 model<"} {
			if !strings.Contains(row, want) {
				t.Errorf("datasets page %d: row lacks %q: %s", code, want, row)
			}
		}
	})

	t.Run("dataset", func(t *testing.T) {
		var p explorer.DatasetPage
		getJSON(t, n.url+"/api/datasets/"+n.root+"?holder="+n.carol, http.StatusOK, &p)
		if p.Root != n.root || p.License != "CC-BY-4.0" || p.TotalWeight != 8 || p.Pool.Shares != 8 || p.Pool.Earned != d.Pool.Earned ||
			len(p.Models) != 1 || p.Models[0].ID != n.modelID || p.Models[0].Weight != 1 || p.Models[0].Share != 1<<32 {
			t.Fatalf("dataset page %+v", p)
		}
		pos, err := n.ch.Client.DatasetPosition(ctx, mustHex(t, n.root), mustAddr(t, n.carol), false)
		if err != nil {
			t.Fatal(err)
		}
		if h := p.Holder; h == nil || h.Shares != 5 || h.Share != explorer.Frac((5<<32)/8) || h.Claimable != pos.Claimable || h.Claimable == 0 {
			t.Fatalf("carol in the dataset: %+v, SDK claimable %d", h, pos.Claimable)
		}
		code, body, _ := getPage(t, n.url+"/datasets/"+n.root+"?holder="+n.carol)
		for _, want := range []string{`href="/models/` + n.modelID + `">tiny-llama</a>`, `id="weight">8<`, `id="contributors">2<`,
			`id="holder-shares">5 `, `rel="nofollow noopener noreferrer">https://data.example.org/tiny</a>`} {
			if !strings.Contains(body, want) {
				t.Errorf("dataset page %d lacks %q", code, want)
			}
		}
	})

	t.Run("subnet links its model", func(t *testing.T) {
		_, body, _ := getPage(t, n.url+"/subnets/1")
		if !strings.Contains(body, `id="model-id"><a href="/models/`+n.modelID+`"`) {
			t.Error("the subnet page does not link its pinned model")
		}
	})

	t.Run("model_register on its tx page", func(t *testing.T) {
		code, body, _ := getPage(t, n.url+"/txs/"+n.register)
		for _, want := range []string{"Model register", "royalty_bps", "15.00%", n.modelID, "tiny-llama",
			"issues all its shares", `href="/models/` + n.modelID + `"`} {
			if !strings.Contains(body, want) {
				t.Errorf("tx page %d lacks %q", code, want)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		unknown := strings.Repeat("cd", 32)
		for _, c := range []struct {
			path string
			code int
			says string
		}{
			{"/models/" + unknown, http.StatusNotFound, "no such model"},
			{"/datasets/" + unknown, http.StatusNotFound, "no such dataset"},
			{"/models/" + unknown + "?holder=" + n.alice, http.StatusNotFound, "no such model"},
			{"/models/zz", http.StatusBadRequest, "not a model id"},
			{"/models/" + strings.ToUpper(n.modelID), http.StatusBadRequest, "lowercase hex"},
			{"/models/" + n.modelID[:62], http.StatusBadRequest, "not a model id"},
			{"/datasets/xyz", http.StatusBadRequest, "not a dataset root"},
			{"/datasets/" + n.root + "00", http.StatusBadRequest, "not a dataset root"},
			{"/models/" + n.modelID + "?holder=bogus", http.StatusBadRequest, "not an Agora address"},
			{"/datasets/" + n.root + "?holder=agora1xyz", http.StatusBadRequest, "not an Agora address"},
		} {
			code, body, _ := getPage(t, n.url+c.path)
			if code != c.code || !strings.Contains(body, c.says) {
				t.Errorf("%s: %d, want %d saying %q: %s", c.path, code, c.code, c.says, body)
			}
			code, body, _ = getPage(t, n.url+"/api"+c.path)
			if code != c.code || !strings.Contains(body, `"error"`) {
				t.Errorf("/api%s: %d, want %d: %s", c.path, code, c.code, body)
			}
		}
	})
}

// rowOf returns the table row starting with tr on a page.
func rowOf(t *testing.T, body, tr string) string {
	t.Helper()
	i := strings.Index(body, tr)
	if i < 0 {
		t.Fatalf("no %s on the page", tr)
	}
	return body[i : i+strings.Index(body[i:], "</tr>")]
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustAddr(t *testing.T, s string) address.Address {
	t.Helper()
	a, err := address.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestRoyaltyPagesInBrowser loads the model and dataset pages in Chromium
// at desktop and phone size: content visible, no console error (the CSP
// allows everything they use), nothing wider than the phone.
func TestRoyaltyPagesInBrowser(t *testing.T) {
	n := startRtNet(t)
	const wait = 20 * time.Second
	pages := []struct {
		path, shot, sel, want string
	}{
		{"/models", "explorer-models", `tr[data-model="` + n.modelID + `"] td.royalty`, "15.00%"},
		{"/models/" + n.modelID + "?holder=" + n.bob, "explorer-model", "#holder-shares", "250000"},
		{"/datasets", "explorer-datasets", `tr[data-dataset="` + n.root + `"] td.weight`, "8"},
		{"/datasets/" + n.root + "?holder=" + n.carol, "explorer-dataset", "#holder-shares", "5"},
	}
	for _, size := range []struct {
		name string
		size browser.Size
	}{{"", browser.Desktop}, {"-phone", browser.Phone}} {
		b := browser.New(t, size.size)
		for _, p := range pages {
			b.MustDo(wait, chromedp.Navigate(n.url+p.path))
			if got := b.Text(wait, p.sel); !strings.Contains(got, p.want) {
				t.Errorf("%s at %v: %s says %q, want %q", p.path, size.size, p.sel, got, p.want)
			}
			if w := browser.Get(b, wait, chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`)); w > 0 {
				t.Errorf("%s at %v is %dpx wider than the screen", p.path, size.size, w)
			}
			t.Log(b.Screenshot(p.shot + size.name))
		}
		// The lookup form submits to the page itself.
		b.MustDo(wait, chromedp.Navigate(n.url+"/models/"+n.modelID),
			chromedp.SendKeys(`#holder input[name="holder"]`, n.alice),
			chromedp.Submit(`#holder form`))
		b.WaitAcrossNavigation(wait, fmt.Sprintf(`(() => { const e = document.querySelector("#holder-locked");
			return location.search.includes("holder=") && e !== null && e.textContent.includes(%q); })()`, fmt.Sprint(rtOffered)))
		b.NoProblems()
	}
}
