package certs

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/testutil"
)

func TestLoadSaysWhichFileWhatAndHow(t *testing.T) {
	tc := testutil.NewTestCert(t, false)
	other := testutil.NewTestCert(t, false)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	for _, c := range []struct {
		name      string
		cert, key string
		file      string   // the file the error names; "" = loads
		parts     []string // in the error
	}{
		{"one file", tc.File, "", "", nil},
		{"pair", tc.Cert, tc.Key, "", nil},
		{"missing", filepath.Join(dir, "nope.pem"), "", filepath.Join(dir, "nope.pem"), []string{"no such file", "openssl req -x509"}},
		{"folder", dir, "", dir, []string{"it is a folder"}},
		{"missing key file", tc.Cert, filepath.Join(dir, "nokey.pem"), filepath.Join(dir, "nokey.pem"), []string{"no such file", "[http] sslKey"}},
		{"not PEM", write("junk.pem", "hello"), "", filepath.Join(dir, "junk.pem"), []string{`no PEM block "CERTIFICATE"`}},
		{"cert without key", tc.Cert, "", tc.Cert, []string{"no private key", "cat cert.pem key.pem"}},
		{"key file without key", tc.Cert, tc.Cert, tc.Cert, []string{"no private key", "privkey.pem"}},
		{"key of another cert", tc.Cert, other.Key, other.Key, []string{"do not make a pair"}},
		{"key only", write("keyonly.pem", read(tc.Key)), "", filepath.Join(dir, "keyonly.pem"), []string{`no PEM block "CERTIFICATE"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Load(c.cert, c.key)
			if c.file == "" {
				if err != nil || got.TLS == nil || got.NotAfter.IsZero() {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err %v, want *Error", err)
			}
			if e.File != c.file {
				t.Errorf("names %s, want %s", e.File, c.file)
			}
			for _, p := range append(c.parts, "tls: cannot use the certificate "+c.file) {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("%q lacks %q", err, p)
				}
			}
		})
	}
}

func TestProblemNamesExpiry(t *testing.T) {
	for _, c := range []struct {
		expired bool
		want    string
	}{{false, ""}, {true, "expired on"}} {
		tc := testutil.NewTestCert(t, c.expired)
		cert, err := Load(tc.File, "")
		if err != nil {
			t.Fatal(err)
		}
		p := cert.Problem(time.Now())
		if (c.want == "") != (p == "") || !strings.Contains(p, c.want) {
			t.Errorf("expired=%v: problem %q, want %q", c.expired, p, c.want)
		}
	}
}

// TestStoreSwapsForNewHandshakes: a client that trusts only the second
// certificate fails before Set and succeeds after, on the same listener.
func TestStoreSwapsForNewHandshakes(t *testing.T) {
	a, b := testutil.NewTestCert(t, false), testutil.NewTestCert(t, false)
	var s Store
	ca, _ := Load(a.File, "")
	cb, _ := Load(b.File, "")
	s.Set(ca)
	l, err := tls.Listen("tcp", "127.0.0.1:0", s.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	dial := func() error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", l.Addr().String(), b.ClientConfig())
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); err == nil {
		t.Fatal("a client trusting only the other certificate connected")
	}
	s.Set(cb)
	if err := dial(); err != nil {
		t.Fatalf("after Set: %v", err)
	}
}
