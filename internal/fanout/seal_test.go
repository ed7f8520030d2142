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

// TestSealWritesWhatTLSWouldHave: batches a Writer seals and writes raw
// read back at the TLS client as they were, in order with the TLS layer's
// own writes, also when the socket took one in part: its sealed rest goes
// out before the next write through the TLS layer.
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
	_, ok := srv.NetConn().(*SealConn)
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
	w, ok := NewWriter(srv, 8)
	if !ok {
		t.Fatal("NewWriter declined a TLS connection over a SealConn")
	}
	if _, err := srv.Write([]byte("before|")); err != nil { // passes through
		t.Fatal(err)
	}
	all := []byte("before|")
	// Batches until the socket, which the client does not read yet, takes
	// one in part; each batch counts whole.
	full := false
	for k := 0; k < 2000 && !full; k++ {
		n, ok := w.TryWrite(bufs)
		if n != len(want) {
			t.Fatalf("batch %d: TryWrite counted %d bytes, want the batch's %d", k, n, len(want))
		}
		all = append(all, want...)
		full = !ok
	}
	if !full {
		t.Fatal("the socket never filled")
	}
	// What the socket did not take goes out before the TLS layer's next
	// write, which waits for the reader.
	done := make(chan error, 1)
	go func() {
		srv.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := srv.Write([]byte("|after"))
		if err == nil {
			err = w.Flush()
		}
		done <- err
	}()
	all = append(all, "|after"...)
	cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(all))
	if _, err := io.ReadFull(cli, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, all) {
		t.Fatal("the client read other bytes than were written")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
