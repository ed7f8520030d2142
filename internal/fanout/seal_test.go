package fanout

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/testutil"
)

// TestSealWritesWhatTLSWouldHave: a batch sealed into memory and written
// to the socket raw reads back at the TLS client as the batch, between
// writes that pass through the TLS layer as usual; the sealed bytes are
// few records, not one per buffer.
func TestSealWritesWhatTLSWouldHave(t *testing.T) {
	tc := testutil.NewTestCert(t, false)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pair, err := tls.LoadX509KeyPair(tc.Cert, tc.Key)
	if err != nil {
		t.Fatal(err)
	}
	srvCfg := &tls.Config{Certificates: []tls.Certificate{pair}}
	tl := tls.NewListener(SealListener(l), srvCfg)
	accepted := make(chan *tls.Conn, 1)
	go func() {
		c, err := tl.Accept()
		if err != nil {
			close(accepted)
			return
		}
		tc := c.(*tls.Conn)
		tc.Handshake()
		accepted <- tc
	}()
	cli, err := tls.Dial("tcp", l.Addr().String(), tc.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv := <-accepted
	if srv == nil {
		t.Fatal("no TLS connection accepted")
	}
	defer srv.Close()
	sc, ok := srv.NetConn().(*SealConn)
	if !ok {
		t.Fatalf("under the TLS layer: %T, want *SealConn", srv.NetConn())
	}
	var bufs [][]byte
	var want []byte
	for i := range 200 {
		b := bytes.Repeat([]byte{byte(i)}, 100+i)
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	if _, err := srv.Write([]byte("before|")); err != nil { // passes through
		t.Fatal(err)
	}
	s, err := sc.Seal(srv, bufs)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Bytes) < len(want) || len(s.Bytes) > len(want)+len(want)/20+200 {
		t.Errorf("sealed %d bytes for %d: want a few records' overhead, not one per buffer", len(s.Bytes), len(want))
	}
	if _, err := sc.Conn.Write(s.Bytes); err != nil {
		t.Fatal(err)
	}
	s.Release()
	if _, err := srv.Write([]byte("|after")); err != nil {
		t.Fatal(err)
	}
	cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	all := append(append([]byte("before|"), want...), "|after"...)
	got := make([]byte, len(all))
	if _, err := io.ReadFull(cli, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, all) {
		t.Fatal("the client read other bytes than were sealed")
	}
}
