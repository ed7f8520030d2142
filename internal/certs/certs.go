// Package certs is the certificate Berth serves over TLS (HTTPS, RTSPS,
// RTMPS): loading it from ZLMediaKit's one PEM file (certificate and key, its
// -s flag) or a certificate and key pair, errors that name the file, the
// cause and the fix, and a Store that swaps the certificate under running
// listeners, so a renewed certificate applies on the next handshake.
package certs

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"
	"time"
)

// SelfSigned is the command that makes a certificate and key in one file
// for a first try (browsers warn about it; ffmpeg and curl -k accept it).
const SelfSigned = "openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=localhost " +
	"-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout berth.pem -out berth.pem"

// Error is a certificate Berth cannot serve, said so a human can act.
type Error struct {
	File  string // the file at fault
	Cause string // what is wrong with it, in plain words
	Fix   string
	Err   error // the underlying error, if any
}

func (e *Error) Error() string {
	return fmt.Sprintf("tls: cannot use the certificate %s: %s; %s", e.File, e.Cause, e.Fix)
}

func (e *Error) Unwrap() error { return e.Err }

// Cert is a loaded certificate and what it was loaded from.
type Cert struct {
	TLS      *tls.Certificate
	CertFile string
	KeyFile  string   // "" when the key is in CertFile
	Sum      [32]byte // of both files' bytes: a reload that reads the same bytes changes nothing
	NotAfter time.Time
	Names    []string // DNS names and IPs the leaf is valid for (or its CN when it has none)
}

// Load reads certFile (PEM: the chain, leaf first, and the private key
// unless keyFile is given) and keyFile. Every failure is an *Error.
func Load(certFile, keyFile string) (*Cert, error) {
	certPEM, err := readPEM(certFile, "[http] sslCert (flag -s)")
	if err != nil {
		return nil, err
	}
	keyPEM, keyName := certPEM, certFile
	if keyFile != "" {
		if keyPEM, err = readPEM(keyFile, "[http] sslKey (flag --ssl-key)"); err != nil {
			return nil, err
		}
		keyName = keyFile
	}
	if !hasBlock(certPEM, func(t string) bool { return t == "CERTIFICATE" }) {
		return nil, &Error{File: certFile, Cause: "it holds no PEM block \"CERTIFICATE\"",
			Fix: "give the certificate (a file starting -----BEGIN CERTIFICATE-----; certbot's fullchain.pem), or make a self-signed one: " + SelfSigned}
	}
	if !hasBlock(keyPEM, isKeyBlock) {
		fix := "append the private key to it (cat cert.pem key.pem > berth.pem), or name the key file with [http] sslKey (flag --ssl-key)"
		if keyFile != "" {
			fix = "give the private key of the certificate (a file starting -----BEGIN PRIVATE KEY-----; certbot's privkey.pem)"
		}
		return nil, &Error{File: keyName, Cause: "it holds no private key (no PEM block \"PRIVATE KEY\")", Fix: fix}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &Error{File: keyName, Cause: "the certificate and private key do not make a pair: " + err.Error(), Err: err,
			Fix: "give the key the certificate was made for (an encrypted key must be decrypted first: openssl pkey -in key.pem -out plain.pem)"}
	}
	c := &Cert{TLS: &pair, CertFile: certFile, KeyFile: keyFile, NotAfter: pair.Leaf.NotAfter, Names: names(pair.Leaf)}
	h := sha256.New()
	h.Write(certPEM)
	if keyFile != "" {
		h.Write(keyPEM)
	}
	copy(c.Sum[:], h.Sum(nil))
	return c, nil
}

// Problem is what is wrong with a certificate that loads but that clients
// will refuse (expired, not valid yet), "" when nothing is; it is worth a
// warning, not a refusal: a test setup may want exactly that.
func (c *Cert) Problem(now time.Time) string {
	switch {
	case now.After(c.NotAfter):
		return fmt.Sprintf("the certificate %s expired on %s; clients that verify it refuse it: renew it, then SIGHUP Berth",
			c.CertFile, c.NotAfter.UTC().Format(time.DateOnly))
	case now.Before(c.TLS.Leaf.NotBefore):
		return fmt.Sprintf("the certificate %s is valid only from %s; check this host's clock",
			c.CertFile, c.TLS.Leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return ""
}

func readPEM(file, key string) ([]byte, error) {
	if st, err := os.Stat(file); err == nil && st.IsDir() {
		// ZLMediaKit's -s also takes a folder of certificates, chosen by SNI.
		return nil, &Error{File: file, Cause: "it is a folder; Berth serves one certificate, from one PEM file",
			Fix: "set " + key + " to the PEM file of the certificate to serve (its chain and key)"}
	}
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &Error{File: file, Cause: "no such file", Err: err,
			Fix: "set " + key + " to the PEM file holding it, or make a self-signed one: " + SelfSigned}
	case errors.Is(err, fs.ErrPermission):
		return nil, &Error{File: file, Cause: "permission denied", Err: err,
			Fix: "let the user Berth runs as read it (chmod or chgrp the file)"}
	case err != nil:
		return nil, &Error{File: file, Cause: err.Error(), Err: err, Fix: "set " + key + " to a readable PEM file"}
	}
	return b, nil
}

func hasBlock(b []byte, want func(string) bool) bool {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return false
		}
		if want(blk.Type) {
			return true
		}
	}
}

func isKeyBlock(t string) bool {
	return t == "PRIVATE KEY" || t == "RSA PRIVATE KEY" || t == "EC PRIVATE KEY" || t == "ENCRYPTED PRIVATE KEY" ||
		bytes.HasSuffix([]byte(t), []byte(" PRIVATE KEY"))
}

func names(leaf *x509.Certificate) []string {
	out := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		out = append(out, ip.String())
	}
	if len(out) == 0 && leaf.Subject.CommonName != "" {
		out = append(out, leaf.Subject.CommonName)
	}
	return out
}

// Store holds the certificate every TLS listener serves. Set swaps it:
// handshakes from then on get the new one, connections already made keep
// theirs.
type Store struct {
	cur atomic.Pointer[Cert]
}

// Set makes c the certificate served from now on.
func (s *Store) Set(c *Cert) { s.cur.Store(c) }

// Get is the certificate served now, nil before Set.
func (s *Store) Get() *Cert { return s.cur.Load() }

// Config is the tls.Config of a listener serving the Store's certificate;
// alpn are the protocols it names in ALPN (RFC 7301), none for RTSPS and
// RTMPS, whose clients offer none. HTTPS names http/1.1 only: Berth's
// players take over their connections (WebSocket, FLV), which HTTP/2
// cannot give, and a browser offering h2 as well gets HTTP/1.1.
func (s *Store) Config(alpn ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: alpn,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := s.cur.Load(); c != nil {
				return c.TLS, nil
			}
			return nil, errors.New("no certificate loaded")
		},
	}
}
