package explorer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/explorer"
	"github.com/agoranet/agora/internal/browser"
	"github.com/agoranet/agora/internal/testkit"
)

// TestSubnetPagesInBrowser loads the subnet half's pages in Chromium at
// desktop and phone size: content visible, no console error, nothing
// wider than the phone.
func TestSubnetPagesInBrowser(t *testing.T) {
	n := startSnNet(t, 3, 4, true, explorer.Config{Gateways: []string{snGateway(t) + "/v1"}})
	n.ch.Send(t, n.owner, tx.ChannelOpen(testkit.Addr(n.validator), 1, 5*agr.Unit, 100_000))
	snWaitEpochs(t, n, 3)
	const wait = 20 * time.Second
	pages := []struct {
		path, shot, sel, want string
	}{
		{"/subnets", "explorer-subnets", `tr[data-netuid="1"]`, "test-net"},
		{"/subnets/1", "explorer-subnet", `tr[data-uid="4"] td.incentive`, "0.5000"},
		{"/subnets/1/neurons/4", "explorer-neuron", "#hotkey", snAddr(n.miners[2])},
		{"/subnets/1/neurons/1", "explorer-validator", "#role", "validator"},
		{"/channels/1", "explorer-channel", "#remaining", "5 AGR"},
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
			// The page itself never scrolls sideways; wide tables scroll in their card.
			if w := browser.Get(b, wait, chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`)); w > 0 {
				t.Errorf("%s at %v is %dpx wider than the screen", p.path, size.size, w)
			}
			t.Log(b.Screenshot(p.shot + size.name))
		}
		if got := b.Text(wait, "body"); strings.Contains(got, "{{") {
			t.Errorf("unrendered template: %s", got)
		}
		b.NoProblems()
	}
}
