package agent

import (
	"bytes"
	"errors"
	"testing"

	"github.com/agoranet/agora/x402"
)

func TestReadStream(t *testing.T) {
	const pay = "event: agora-payment\ndata: {\"success\":true,\"extra\":{\"channelId\":\"7\",\"charged\":\"5\",\"owed\":\"9\"}}\n\n"
	for _, tc := range []struct {
		name     string
		stream   string
		data     int
		settled  bool
		wantErr  bool
		failData bool
	}{
		{name: "complete", stream: "data: a\n\ndata: b\n\nevent: agora-receipt\ndata: {}\n\n" + pay, data: 2, settled: true},
		{name: "no payment event", stream: "data: a\n\nevent: agora-receipt\ndata: {}\n\n", data: 1},
		{name: "no receipt", stream: "data: a\n\n", data: 1, wantErr: true},
		{name: "cut, still settled", stream: "data: a\n\n" + pay, data: 1, settled: true, wantErr: true},
		{name: "data after the receipt", stream: "event: agora-receipt\ndata: {}\n\ndata: late\n\n" + pay, settled: true, wantErr: true},
		{name: "error event, then payment", stream: "data: a\n\ndata: err\n\n" + pay, data: 2, settled: true, wantErr: true, failData: true},
		{name: "malformed payment", stream: "event: agora-receipt\ndata: {}\n\nevent: agora-payment\ndata: {\n\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n int
			sr, err := readStream(bytes.NewReader([]byte(tc.stream)), func(d []byte) error {
				n++
				if tc.failData && string(d) == "err" {
					return errors.New("error event")
				}
				return nil
			})
			if (err != nil) != tc.wantErr || (sr != nil) != tc.settled || n != tc.data {
				t.Fatalf("settled %+v, err %v, %d data; want settled %v, error %v, %d data", sr, err, n, tc.settled, tc.wantErr, tc.data)
			}
			if sr != nil && (sr.Extra.Owed != "9" || sr.Extra.Charged != "5") {
				t.Fatalf("settled %+v", sr)
			}
		})
	}
}

// FuzzReadStream feeds a gateway's stream bytes to the agent's reader.
func FuzzReadStream(f *testing.F) {
	f.Add([]byte("data: a\n\nevent: agora-receipt\ndata: {}\n\nevent: agora-payment\ndata: {\"success\":true,\"extra\":{\"channelId\":\"7\",\"charged\":\"5\",\"owed\":\"9\"}}\n\n"))
	f.Add([]byte("event: agora-payment\ndata: {\n"))
	f.Add([]byte("data: x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sr, _ := readStream(bytes.NewReader(data), func([]byte) error { return nil })
		if sr != nil {
			x402.ParseAmount(sr.Extra.Owed)
			x402.ParseAmount(sr.Extra.Charged)
		}
	})
}
