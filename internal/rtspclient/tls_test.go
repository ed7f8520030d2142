package rtspclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
)

// selfSigned is a certificate for 127.0.0.1, as a camera's own.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "camera"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestRTSPSPublishAndPlay: over rtsps:// (TLS, interleaved RTP) a stream
// published through gortsplib's server plays back; a client that verifies
// refuses the self-signed certificate, naming the handshake.
func TestRTSPSPublishAndPlay(t *testing.T) {
	h := &peerServer{}
	var tcpL net.Listener
	h.srv = &gortsplib.Server{
		Handler: h, RTSPAddress: "127.0.0.1:0",
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}},
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			tcpL = l
			return l, err
		},
	}
	if err := h.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.srv.Close)
	url := "rtsps://" + tcpL.Addr().String() + "/live/s"
	ctx := context.Background()
	trust := &tls.Config{InsecureSkipVerify: true}

	pub, err := Dial(ctx, url, Options{Timeout: 5 * time.Second, TLSConfig: trust})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	desc, err := pub.Announce([]byte(testSDP))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.SetupAll(desc); err != nil {
		t.Fatal(err)
	}
	if err := pub.Record(); err != nil {
		t.Fatal(err)
	}
	rd, err := Dial(ctx, url, Options{Timeout: 5 * time.Second, TLSConfig: trust})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rdesc, _, err := rd.Describe()
	if err != nil {
		t.Fatal(err)
	}
	if err := rd.SetupAll(rdesc); err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 64)
	rd.OnPacket = func(tr int, pkt []byte) {
		select {
		case got <- len(pkt):
		default:
		}
	}
	if _, err := rd.Play(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for i := 0; ; i++ {
		if err := pub.WritePacket(0, rtpPacket(96, uint16(i), uint32(i*3600), 500)); err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-got:
			if n != 512 {
				t.Fatalf("a packet of %d bytes; want 512", n)
			}
			_, err = Dial(ctx, url, Options{Timeout: 5 * time.Second})
			if err == nil || !strings.Contains(err.Error(), "TLS handshake") {
				t.Errorf("a verifying client and a self-signed camera: %v", err)
			}
			return
		case <-deadline:
			t.Fatal("no packet over rtsps in 5 s")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
