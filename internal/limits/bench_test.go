package limits

import (
	"net/netip"
	"testing"
)

// BenchmarkAdmitRelease is the cost a connection pays at accept and close.
func BenchmarkAdmitRelease(b *testing.B) {
	c := &Conns{}
	c.Set(10000, 100, false)
	ip := netip.MustParseAddr("192.0.2.7")
	b.ReportAllocs()
	for b.Loop() {
		if c.admit(ip) != "" {
			b.Fatal("refused")
		}
		c.release(ip)
	}
}

// BenchmarkRateAllow is the cost of one API call's token.
func BenchmarkRateAllow(b *testing.B) {
	r := &Rate{}
	r.Set(1e9, 1e9, false)
	ip := netip.MustParseAddr("192.0.2.7")
	b.ReportAllocs()
	for b.Loop() {
		r.Allow(ip)
	}
}

// BenchmarkHTTPConnWrite is what the head watch adds to a write of an
// HTTP connection with no request pending: every write of a long response
// after its first (HTTP-fMP4, TS and HLS responses go through Write; the
// socket's own write is the same call as without the watch). A socket
// benchmark would measure the machine's load, not this.
func BenchmarkHTTPConnWrite(b *testing.B) {
	c := &headConn{w: &Warner{}}
	p := make([]byte, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		c.wrote(p)
	}
}
