package explorer_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/explorer"
	"github.com/agoranet/agora/internal/poll"
	"github.com/agoranet/agora/internal/testkit"
)

// The subnet half's tests share one kind of network: a chain with subnet 1
// ("test-net"), its owner at UID 0, a validator at UID 1 and miners after
// it; every miner publishes an endpoint and an X25519 key.

const snChainID = "agora-explorer-subnet-test"

type snNet struct {
	ch        *testkit.Chain
	url       string // the explorer
	owner     ed25519.PrivateKey
	ownerHot  ed25519.PrivateKey
	validator ed25519.PrivateKey
	miners    []ed25519.PrivateKey
	modelID   string
}

// snX25519 is miner i's published key: distinct, recognisable bytes.
func snX25519(i int) []byte {
	k := make([]byte, 32)
	for j := range k {
		k[j] = byte(i*16 + j)
	}
	return k
}

func snHot(n *snNet, uid int) ed25519.PrivateKey {
	switch uid {
	case 0:
		return n.ownerHot
	case 1:
		return n.validator
	}
	return n.miners[uid-2]
}

func snAddr(k ed25519.PrivateKey) string { return testkit.Addr(k).String() }

// startSnNet starts the network with miners miners and tempo tempo; with
// weights the validator sets weights after its first permit, so epochs pay
// the miners.
func startSnNet(t *testing.T, miners int, tempo uint64, weights bool, cfg explorer.Config) *snNet {
	t.Helper()
	owner, ownerAddr := testkit.Key(1)
	n := &snNet{owner: owner, modelID: strings.Repeat("ab", 32)}
	n.ownerHot, _ = testkit.Key(2)
	n.validator, _ = testkit.Key(3)
	for i := range miners {
		k, _ := testkit.Key(byte(10 + i))
		n.miners = append(n.miners, k)
	}
	g := chain.Genesis{Params: chain.DefaultParams(200), Devnet: true,
		Accounts: []chain.GenesisAccount{{Address: ownerAddr, Balance: 1_000_000 * agr.Unit}}}
	n.ch = testkit.StartChain(t, testkit.NodeOptions{ChainID: snChainID, Genesis: g, BlockTime: 150 * time.Millisecond})
	n.ch.RegisterSubnet(t, owner, n.ownerHot, "test-net")

	p := subnet.DefaultSubnetParams()
	p.Tempo, p.ImmunityPeriod, p.ActivityCutoff = tempo, 1000, 1000
	p.CommitReveal, p.WeightsRateLimit, p.ServingRateLimit = false, 1, 1
	p.MaxValidators = 4
	p.MinBurn, p.MaxBurn = agr.Unit/10, 10*agr.Unit
	p.ModelId, p.PricePer_1K = n.modelID, agr.Unit/1000
	// The chain pins only a registered model; royalty 0 leaves the
	// subnet's payouts as they were.
	msgs := []*tx.Msg{tx.ModelRegister(&tx.MsgModelRegister{ModelId: n.modelID, Name: "test-model", Shares: 1}), tx.SubnetSetParams(1, p)}
	for _, k := range append([]ed25519.PrivateKey{n.validator}, n.miners...) {
		msgs = append(msgs, tx.NeuronRegister(1, tx.ProveHotkey(k, snChainID, 1, ownerAddr), 0), tx.Transfer(testkit.Addr(k), 10*agr.Unit))
	}
	msgs = append(msgs, tx.StakeAdd(testkit.Addr(n.validator), 1, 1000*agr.Unit), tx.SubnetStart(1))
	n.ch.Send(t, owner, msgs...)
	for i, k := range n.miners {
		n.ch.Send(t, k, tx.NeuronServe(1, fmt.Sprintf("http://127.0.0.1:%d/v1", 9000+i), snX25519(i), n.modelID))
	}
	if weights {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := poll.Until(ctx, 100*time.Millisecond, func() bool {
			mg, err := n.ch.Client.Metagraph(ctx, 1, 0)
			return err == nil && mg.Neurons[1].ValidatorPermit
		}); err != nil {
			t.Fatal("the validator never got a permit:", err)
		}
		var uids, values []uint32
		for i := range n.miners {
			uids, values = append(uids, uint32(2+i)), append(values, uint32(1000*(i+1)))
		}
		n.ch.Send(t, n.validator, tx.WeightsSet(1, uids, values, 0))
	}
	cfg.Chain = n.ch.Client
	e, err := explorer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := testkit.Listen(t)
	srv := &http.Server{Handler: e.Handler()}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	n.url = "http://" + l.Addr().String()
	return n
}

func TestSubnetKeys(t *testing.T) {
	n := startSnNet(t, 3, 50, false, explorer.Config{})
	var got explorer.Keys
	getJSON(t, n.url+"/api/subnets/1/keys", http.StatusOK, &got)
	if got.Netuid != 1 || got.Height <= 0 {
		t.Fatalf("netuid %d height %d", got.Netuid, got.Height)
	}
	// The owner and the validator published nothing; every miner did.
	if len(got.Keys) != len(n.miners) {
		t.Fatalf("%d keys, want %d: %+v", len(got.Keys), len(n.miners), got.Keys)
	}
	for i, k := range got.Keys {
		want := explorer.NeuronKey{UID: uint32(2 + i), Hotkey: snAddr(n.miners[i]), X25519: hex.EncodeToString(snX25519(i))}
		if k != want {
			t.Errorf("key %d = %+v, want %+v", i, k, want)
		}
		if _, err := address.Parse(k.Hotkey); err != nil {
			t.Errorf("hotkey %q: %v", k.Hotkey, err)
		}
	}
	// The chat page is served from another origin.
	_, _, h := getPage(t, n.url+"/api/subnets/1/keys")
	if h.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("no CORS header: %v", h)
	}
	for _, c := range []struct {
		path string
		code int
	}{
		{"/api/subnets/7/keys", http.StatusNotFound},
		{"/api/subnets/x/keys", http.StatusBadRequest},
		{"/api/subnets/-1/keys", http.StatusBadRequest},
		{"/api/subnets/99999999999/keys", http.StatusBadRequest},
	} {
		var e struct {
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		getJSON(t, n.url+c.path, c.code, &e)
		if e.Error.Code != c.code || e.Error.Message == "" {
			t.Errorf("%s: error %+v", c.path, e.Error)
		}
	}
}

// snWaitEpochs waits until the subnet has run at least n epochs since the
// validator set its weights (the last of them paying the miners).
func snWaitEpochs(t *testing.T, n *snNet, epochs int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mg, err := n.ch.Client.Metagraph(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	start, seen := mg.Subnet.LastEpoch, 0
	if err := poll.Until(ctx, 100*time.Millisecond, func() bool {
		mg, err := n.ch.Client.Metagraph(ctx, 1, 0)
		if err != nil || mg.Subnet.LastEpoch == start {
			return false
		}
		start, seen = mg.Subnet.LastEpoch, seen+1
		return seen >= epochs
	}); err != nil {
		t.Fatalf("waited for %d epochs, saw %d: %v", epochs, seen, err)
	}
}

func TestSubnetPages(t *testing.T) {
	gw := snGateway(t)
	n := startSnNet(t, 3, 4, true, explorer.Config{Gateways: []string{gw + "/v1", "http://127.0.0.1:1/v1"}})
	snWaitEpochs(t, n, 3)
	ctx := context.Background()
	mg, err := n.ch.Client.Metagraph(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("subnets", func(t *testing.T) {
		var l explorer.SubnetsPage
		getJSON(t, n.url+"/api/subnets", http.StatusOK, &l)
		if len(l.Subnets) != 1 {
			t.Fatalf("%d subnets", len(l.Subnets))
		}
		s := l.Subnets[0]
		if s.Netuid != 1 || s.Name != "test-net" || !s.Started || s.Neurons != 5 || s.Owner != snAddr(n.owner) ||
			s.PricePer1K != agr.Unit/1000 || s.LastEpoch == 0 || s.EmissionShare != 1<<32 || s.Burn == 0 {
			t.Fatalf("subnet summary %+v", s)
		}
		code, body, _ := getPage(t, n.url+"/subnets")
		if code != http.StatusOK || !strings.Contains(body, `href="/subnets/1"`) || !strings.Contains(body, "test-net") {
			t.Fatalf("subnets page %d: %s", code, body)
		}
	})

	t.Run("subnet", func(t *testing.T) {
		var p struct {
			explorer.SubnetPage
			Metagraph []map[string]any `json:"metagraph"`
		}
		getJSON(t, n.url+"/api/subnets/1", http.StatusOK, &p)
		if p.Netuid != 1 || p.Params.Tempo != 4 || p.Params.ModelID != n.modelID || p.ModelID != n.modelID || p.OwnerHotkey != snAddr(n.ownerHot) {
			t.Fatalf("subnet page head %+v", p.SubnetPage.SubnetSummary)
		}
		if p.NextEpoch <= uint64(p.Height) || (p.NextEpoch+2)%5 != 0 {
			t.Errorf("next epoch %d at height %d (tempo 4, netuid 1)", p.NextEpoch, p.Height)
		}
		if len(p.Metagraph) != 5 || p.Neurons != 5 {
			t.Fatalf("%d rows, %d neurons", len(p.Metagraph), p.Neurons)
		}
		code, body, _ := getPage(t, n.url+"/subnets/1")
		if code != http.StatusOK {
			t.Fatalf("subnet page %d: %s", code, body)
		}
		for uid, row := range p.Metagraph {
			hot := snAddr(snHot(n, uid))
			if row["hotkey"] != hot || row["uid"] != float64(uid) {
				t.Errorf("row %d = %v, want hotkey %s", uid, row, hot)
			}
			// The JSON twin agrees with the chain, exactly.
			want := mg.Neurons[uid]
			if inc, _ := row["incentive"].(float64); uint64(inc*(1<<32)+0.5) != want.Incentive {
				t.Errorf("uid %d incentive %v, chain %d", uid, row["incentive"], want.Incentive)
			}
			if em, _ := row["emission"].(float64); uint64(em) != want.Emission {
				t.Errorf("uid %d emission %v, chain %d", uid, row["emission"], want.Emission)
			}
			// And the page shows the same row.
			tr := fmt.Sprintf(`<tr data-uid="%d">`, uid)
			i := strings.Index(body, tr)
			if i < 0 {
				t.Fatalf("no %s on the page", tr)
			}
			cells := body[i : i+strings.Index(body[i:], "</tr>")]
			if !strings.Contains(cells, hot) || !strings.Contains(cells, `class="num incentive">`+explorer.Frac(want.Incentive).String()+`<`) ||
				!strings.Contains(cells, `class="num emission" title="`+agr.Format(want.Emission)+`"`) {
				t.Errorf("uid %d row on the page: %s", uid, cells)
			}
		}
		// Miners were paid: the validator weighted them 1:2:3.
		for i := range n.miners {
			if mg.Neurons[2+i].Incentive == 0 || mg.Neurons[2+i].Emission == 0 {
				t.Fatalf("miner %d unpaid: %+v", i, mg.Neurons[2+i])
			}
		}
		// History: at least the epochs since the weights, each a real epoch.
		if len(p.Epochs) < 3 {
			t.Fatalf("%d epochs of history", len(p.Epochs))
		}
		for i, e := range p.Epochs {
			if (e.Height+2)%5 != 0 || (i > 0 && e.Height <= p.Epochs[i-1].Height) {
				t.Errorf("epoch %d at %d: not an epoch height in order", i, e.Height)
			}
		}
		if last := p.Epochs[len(p.Epochs)-1]; last.Height != p.LastEpoch || last.Emission != p.LastEpochEmission {
			t.Errorf("last epoch %+v, subnet says %d paying %d", last, p.LastEpoch, p.LastEpochEmission)
		}
		// Everyone paid is in the top five, the best-paid first.
		var top []uint32
		var prev uint64 = 1 << 63
		for _, u := range p.TopEmission {
			var sum uint64
			for _, v := range u.Emission {
				sum += v
			}
			if sum > prev {
				t.Errorf("top emission out of order: %+v", p.TopEmission)
			}
			prev = sum
			top = append(top, u.UID)
		}
		if fmt.Sprint(top) != "[1 4 3 2]" {
			t.Errorf("top emission UIDs %v, want the validator then miners by weight", top)
		}
		if !strings.Contains(body, "Incentive by UID (last epoch)") || !strings.Contains(body, "Emission per epoch") || !strings.Contains(body, "<rect") {
			t.Error("charts missing")
		}
	})

	t.Run("sort and page", func(t *testing.T) {
		var p explorer.SubnetPage
		getJSON(t, n.url+"/api/subnets/1?sort=incentive", http.StatusOK, &p)
		// Weights 1:2:3 make the last miner the best.
		if p.Metagraph[0].UID != 4 || p.Metagraph[1].UID != 3 || p.Metagraph[2].UID != 2 {
			t.Errorf("by incentive: %d %d %d", p.Metagraph[0].UID, p.Metagraph[1].UID, p.Metagraph[2].UID)
		}
		getJSON(t, n.url+"/api/subnets/1?sort=stake", http.StatusOK, &p)
		if p.Metagraph[0].UID != 1 {
			t.Errorf("by stake first %d", p.Metagraph[0].UID)
		}
		if p.Pages != 1 || p.Page != 1 || p.PerPage != 256 {
			t.Errorf("paging %d/%d per %d", p.Page, p.Pages, p.PerPage)
		}
	})

	t.Run("neuron", func(t *testing.T) {
		var p explorer.NeuronPage
		getJSON(t, n.url+"/api/subnets/1/neurons/4", http.StatusOK, &p)
		if p.UID != 4 || p.Hotkey != snAddr(n.miners[2]) || p.X25519 != hex.EncodeToString(snX25519(2)) || p.ModelID != n.modelID ||
			!p.ServesPinned() || p.Role() != "miner" || p.Endpoint != "http://127.0.0.1:9002/v1" {
			t.Fatalf("neuron %+v", p)
		}
		if len(p.History) < 3 || p.History[len(p.History)-1].Incentive != p.Incentive {
			t.Fatalf("history %+v", p.History)
		}
		// The validator (UID 1) gave it 3000 of 6000.
		if len(p.Scores) != 1 || p.Scores[0].UID != 1 {
			t.Fatalf("scores %+v", p.Scores)
		}
		last := p.Scores[0].Weights[len(p.Scores[0].Weights)-1]
		if last == nil || *last != 1<<31 {
			t.Fatalf("last weight from the validator %v, want 0.5", last)
		}
		if len(p.Gateways) != 2 || !p.Gateways[0].Reported || *p.Gateways[0].Score != 0.75 || *p.Gateways[0].TokensServed != 4200 ||
			p.Gateways[0].Checks != nil || p.Gateways[1].Reported || p.Gateways[1].Error == "" {
			t.Fatalf("gateways %+v", p.Gateways)
		}
		code, body, _ := getPage(t, n.url+"/subnets/1/neurons/4")
		for _, want := range []string{snAddr(n.miners[2]), "the pinned model", "Scores from validators", "4200", "not reported", "Results per epoch"} {
			if !strings.Contains(body, want) {
				t.Errorf("neuron page %d lacks %q", code, want)
			}
		}
		// The validator's page lists the weights it set, highest first.
		getJSON(t, n.url+"/api/subnets/1/neurons/1", http.StatusOK, &p)
		if p.Role() != "validator" || p.WeightsTotal != 3 || p.WeightsSet[0].UID != 4 || p.WeightsSet[0].Value != 3000 || p.WeightsSet[0].Share != 1<<31 {
			t.Fatalf("validator weights %+v", p.WeightsSet)
		}
		// Gateways score miners: a validator they do not list gets no section.
		if _, body, _ := getPage(t, n.url+"/subnets/1/neurons/1"); strings.Contains(body, `id="gateways"`) || !strings.Contains(body, "Weights it sets") {
			t.Error("the validator page shows a gateway section, or not its weights")
		}
		if p.Dividends == 0 || len(p.History) == 0 {
			t.Errorf("validator dividends %d history %d", p.Dividends, len(p.History))
		}
	})

	t.Run("channel", func(t *testing.T) {
		payee := testkit.Addr(n.validator)
		n.ch.Send(t, n.owner, tx.ChannelOpen(payee, 1, 5*agr.Unit, 100_000))
		var c explorer.ChannelPage
		getJSON(t, n.url+"/api/channels/1", http.StatusOK, &c)
		if c.ID != 1 || c.Payer != snAddr(n.owner) || c.Payee != payee.String() || c.Deposit != 5*agr.Unit || c.Remaining != 5*agr.Unit ||
			c.Netuid != 1 || c.SubnetName != "test-net" || c.ExpiryHeight != 100_000 || c.OpenedAt == 0 || c.Expired {
			t.Fatalf("channel %+v", c)
		}
		code, body, _ := getPage(t, n.url+"/channels/1")
		if code != http.StatusOK || !strings.Contains(body, `href="/accounts/`+payee.String()+`"`) || !strings.Contains(body, "5 AGR") {
			t.Fatalf("channel page %d: %s", code, body)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, c := range []struct {
			path string
			code int
		}{
			{"/subnets/9", http.StatusNotFound},
			{"/subnets/1/neurons/5", http.StatusNotFound},
			{"/subnets/9/neurons/0", http.StatusNotFound},
			{"/channels/77", http.StatusNotFound},
			{"/subnets/one", http.StatusBadRequest},
			{"/subnets/1/neurons/x", http.StatusBadRequest},
			{"/subnets/1/neurons/70000", http.StatusBadRequest},
			{"/channels/-3", http.StatusBadRequest},
			{"/subnets/1?sort=luck", http.StatusBadRequest},
			{"/subnets/1?page=0", http.StatusBadRequest},
			{"/subnets/1?page=2", http.StatusNotFound},
		} {
			code, body, _ := getPage(t, n.url+c.path)
			if code != c.code {
				t.Errorf("%s: %d, want %d: %s", c.path, code, c.code, body)
			}
			code, body, _ = getPage(t, n.url+"/api"+c.path)
			if code != c.code || !strings.Contains(body, `"error"`) {
				t.Errorf("/api%s: %d, want %d: %s", c.path, code, c.code, body)
			}
		}
		_, body, _ := getPage(t, n.url+"/channels/77")
		if !strings.Contains(body, "closed or was never opened") {
			t.Errorf("channel 404 says: %s", body)
		}
	})
}

// snGateway is a validator gateway's miners list as the brief describes
// it: UID 4 scored with tokens served but no checks reported.
func snGateway(t *testing.T) string {
	t.Helper()
	l := testkit.Listen(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/agora/miners" {
			http.NotFound(w, r)
			return
		}
		_, k := testkit.Key(12) // miner 2, UID 4
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"object":"list","data":[{"uid":4,"hotkey":%q,"score":0.75,"tokens_served":4200},{"uid":3,"hotkey":"someone else","score":0.5}]}`, k)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

// TestSubnetMetagraphPaging pages a 600-UID metagraph (from the stand-in
// node of bench_test.go): 256 rows a page, sorted across pages.
func TestSubnetMetagraphPaging(t *testing.T) {
	url := benchExplorer(t, 600)
	var all []explorer.NeuronRow
	for page, want := range []int{256, 256, 88} {
		var p explorer.SubnetPage
		getJSON(t, fmt.Sprintf("%s/api/subnets/1?sort=emission&page=%d", url, page+1), http.StatusOK, &p)
		if len(p.Metagraph) != want || p.Pages != 3 || p.Page != page+1 || p.Neurons != 600 {
			t.Fatalf("page %d: %d rows of %d, page %d of %d", page+1, len(p.Metagraph), p.Neurons, p.Page, p.Pages)
		}
		all = append(all, p.Metagraph...)
	}
	seen := map[uint32]bool{}
	for i, r := range all {
		if seen[r.UID] {
			t.Fatalf("uid %d twice", r.UID)
		}
		seen[r.UID] = true
		if i > 0 && (r.Emission > all[i-1].Emission || r.Emission == all[i-1].Emission && r.UID < all[i-1].UID) {
			t.Fatalf("row %d (uid %d, %d) out of order after uid %d, %d", i, r.UID, r.Emission, all[i-1].UID, all[i-1].Emission)
		}
	}
	code, body, _ := getPage(t, url+"/subnets/1?sort=emission&page=2")
	if code != http.StatusOK || !strings.Contains(body, `page=1" rel="prev"`) || !strings.Contains(body, `page=3" rel="next"`) || strings.Count(body, "<tr data-uid=") != 256 {
		t.Errorf("page 2 of the HTML: %d, pager or rows wrong", code)
	}
	if code, _, _ := getPage(t, url+"/api/subnets/1?page=4"); code != http.StatusNotFound {
		t.Errorf("page 4 of 3: %d", code)
	}
	// 600 UIDs are drawn in groups of 3 (at most 256 bars).
	if !strings.Contains(body, "UIDs in groups of 3") || strings.Count(body, "<rect x=") > 256+8 {
		t.Error("the incentive chart does not group UIDs")
	}
}
