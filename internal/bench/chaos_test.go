package bench

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/testutil"
)

// TestChaosAgainstBerth runs a short campaign against a Berth started here:
// 2,000 bad inputs over every listener, the TLS ones too (600 under the race detector, which
// makes each ten times dearer) while a publisher and 20 readers run. The
// server must live, the readers lose nothing, and goroutines and files
// come back.
func TestChaosAgainstBerth(t *testing.T) {
	if testing.Short() {
		t.Skip("a campaign of 2,000 inputs")
	}
	n := 2000
	if raceEnabled {
		n = 600
	}
	cert := testutil.NewTestCert(t, false)
	srv := startBerth(t, func(c *config.Config) {
		c.RTPProxy.TimeoutSec = 2 // what junk opens on the RTP ports ends within the settle time
		c.SRT.TimeoutSec = 2
		c.TLS = config.TLS{HTTPPort: 8443, RTSPPort: 322, RTMPPort: 1936, Cert: cert.File} // ephemeral ports all the same
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep, err := Chaos(ctx, ChaosConfig{
		RTSP: srv.Addr("rtsp"), RTMP: srv.Addr("rtmp"), HTTP: srv.Addr("http"),
		RTP: srv.Addr("rtp_proxy"), RTPUDP: "-", // the shared UDP socket's ephemeral port is not exported
		SRT: srv.Addr("srt"), RTC: srv.Addr("rtc"), Secret: srv.Config.API.Secret,
		HTTPS: srv.Addr("https"), RTSPS: srv.Addr("rtsps"), RTMPS: srv.Addr("rtmps"),
		N: n, Concurrency: 32, Seed: 7, Readers: 20, Settle: 30 * time.Second, Progress: &progress,
		// The server shares this process with the clients, and the race
		// detector's shadow memory: its RSS says little here.
		RSSSlackKiB: 1 << 30,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.Print(&out)
	t.Logf("%s%s", progress.String(), out.String())
	if rep.Inputs != n || rep.Crashes != 0 || !rep.ServerAlive {
		t.Fatalf("inputs %d, crashes %d, alive %v", rep.Inputs, rep.Crashes, rep.ServerAlive)
	}
	if rep.ReaderLost != 0 || rep.ReadersOK != 20 || rep.ReaderPackets == 0 || !rep.PublisherOK {
		t.Fatalf("legitimate clients: readers %d/20 ok, %d packets, %d lost, publisher ok %v: %v",
			rep.ReadersOK, rep.ReaderPackets, rep.ReaderLost, rep.PublisherOK, rep.Errors)
	}
	if len(rep.ByTarget) < 20 {
		t.Errorf("inputs reached %d kinds of target, want every listener's: %v", len(rep.ByTarget), rep.ByTarget)
	}
	if !rep.OK() {
		t.Fatalf("campaign failed: %v", rep.Failures)
	}
}

// TestChaosInputsAreReproducible: input i depends only on the seed and i,
// so -seed S -only i sends the very bytes the campaign sent.
func TestChaosInputsAreReproducible(t *testing.T) {
	c := &chaosRun{cfg: ChaosConfig{RTSP: "127.0.0.1:1", HTTP: "127.0.0.1:2", RTMP: "127.0.0.1:3", Path: "live/chaos", Secret: "s"}}
	gen := func(seed, i uint64) []byte {
		r := rand.New(rand.NewPCG(seed, i))
		var b []byte
		b = append(b, rtspRequest(r, c)...)
		b = append(b, c.httpRequest(r, r.IntN(2) == 0)...)
		b = append(b, c.apiRequest(r)...)
		b = append(b, rtpProxyPacket(r)...)
		b = append(b, mutate(r, []byte(chaosOffer))...)
		return b
	}
	for i := range uint64(20) {
		if !bytes.Equal(gen(1, i), gen(1, i)) {
			t.Fatalf("input %d differs between two runs with seed 1", i)
		}
	}
	if bytes.Equal(gen(1, 3), gen(2, 3)) {
		t.Fatal("seeds 1 and 2 made the same input 3")
	}
}

func TestMutateKeepsInputsBounded(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for range 10000 {
		if b := mutate(r, []byte("OPTIONS rtsp://h/a RTSP/1.0\r\nCSeq: 1\r\n\r\n")); len(b) > 3*4096+64*3+100 {
			t.Fatalf("a mutation grew an input to %d bytes", len(b))
		}
	}
}
