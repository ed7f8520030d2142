package rtmp

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Handshake (RTMP spec 5.2) and the digest ("complex") variant Flash Player
// era clients send: C1 carries an HMAC-SHA256 digest at a position given by
// an offset in one of two 764-byte blocks; such clients check that S2 is
// keyed on their digest. A plain client gets its C1 echoed.

const handshakeSize = 1536

var (
	fpKey            = append([]byte("Genuine Adobe Flash Player 001"), handshakeKeyTail...)
	fmsKey           = append([]byte("Genuine Adobe Flash Media Server 001"), handshakeKeyTail...)
	handshakeKeyTail = []byte{
		0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
		0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
	}
)

// ErrHandshake is returned for a C0 that is not RTMP.
var ErrHandshake = errors.New("rtmp: bad handshake")

func hmacSHA256(key []byte, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// digestOffset is where the digest sits in a 1536-byte C1/S1 for scheme 0
// (digest block second) or 1 (digest block first).
func digestOffset(b []byte, scheme int) int {
	base := 8
	if scheme == 0 {
		base = 772
	}
	return base + 4 + (int(b[base])+int(b[base+1])+int(b[base+2])+int(b[base+3]))%728
}

func computeDigest(b []byte, off int, key []byte) []byte {
	return hmacSHA256(key, b[:off], b[off+32:])
}

// findDigest returns C1's digest when it has a valid one.
func findDigest(c1 []byte) []byte {
	for _, scheme := range []int{1, 0} {
		off := digestOffset(c1, scheme)
		if bytes.Equal(c1[off:off+32], computeDigest(c1, off, fpKey[:30])) {
			return c1[off : off+32]
		}
	}
	return nil
}

// serverHandshake reads C0C1, answers S0S1S2 and reads C2.
func serverHandshake(rw io.ReadWriter) (complexHS bool, err error) {
	c0c1 := make([]byte, 1+handshakeSize)
	if _, err := io.ReadFull(rw, c0c1); err != nil {
		return false, fmt.Errorf("reading C0/C1: %w", err)
	}
	if c0c1[0] != 3 {
		if c0c1[0] == 6 || c0c1[0] == 8 {
			return false, fmt.Errorf("%w: encrypted RTMPE (version %d) is not supported; use plain rtmp://", ErrHandshake, c0c1[0])
		}
		return false, fmt.Errorf("%w: version byte %d (want 3); is the client speaking RTMP?", ErrHandshake, c0c1[0])
	}
	c1 := c0c1[1:]
	out := make([]byte, 1+2*handshakeSize)
	out[0] = 3
	s1 := out[1 : 1+handshakeSize]
	s2 := out[1+handshakeSize:]
	rand.Read(s1[8:])
	binary.BigEndian.PutUint32(s1[0:4], 0)
	var digest []byte
	if binary.BigEndian.Uint32(c1[4:8]) != 0 {
		digest = findDigest(c1)
	}
	if digest == nil {
		copy(s2, c1)
	} else {
		complexHS = true
		binary.BigEndian.PutUint32(s1[4:8], 0x04050001)
		off := digestOffset(s1, 1)
		copy(s1[off:], computeDigest(s1, off, fmsKey[:36]))
		rand.Read(s2)
		key := hmacSHA256(fmsKey, digest)
		copy(s2[handshakeSize-32:], hmacSHA256(key, s2[:handshakeSize-32]))
	}
	if _, err := rw.Write(out); err != nil {
		return complexHS, fmt.Errorf("writing S0/S1/S2: %w", err)
	}
	c2 := out[1 : 1+handshakeSize] // S1 has been sent; reuse its room
	if _, err := io.ReadFull(rw, c2); err != nil {
		return complexHS, fmt.Errorf("reading C2: %w", err)
	}
	return complexHS, nil
}

// clientHandshake performs a handshake as a client; digest asks for the
// complex variant and checks the server's S2.
func clientHandshake(rw io.ReadWriter, digest bool) error {
	c0c1 := make([]byte, 1+handshakeSize)
	c0c1[0] = 3
	c1 := c0c1[1:]
	rand.Read(c1[8:])
	var c1Digest []byte
	if digest {
		binary.BigEndian.PutUint32(c1[4:8], 0x80000702)
		off := digestOffset(c1, 1)
		c1Digest = computeDigest(c1, off, fpKey[:30])
		copy(c1[off:], c1Digest)
	}
	if _, err := rw.Write(c0c1); err != nil {
		return err
	}
	s := make([]byte, 1+2*handshakeSize)
	if _, err := io.ReadFull(rw, s); err != nil {
		return fmt.Errorf("reading S0/S1/S2: %w", err)
	}
	if s[0] != 3 {
		return fmt.Errorf("%w: server version %d", ErrHandshake, s[0])
	}
	s1, s2 := s[1:1+handshakeSize], s[1+handshakeSize:]
	if digest {
		key := hmacSHA256(fmsKey, c1Digest)
		if !bytes.Equal(s2[handshakeSize-32:], hmacSHA256(key, s2[:handshakeSize-32])) {
			return fmt.Errorf("%w: S2 digest does not match C1", ErrHandshake)
		}
	} else if !bytes.Equal(s2, c1) {
		return fmt.Errorf("%w: S2 does not echo C1", ErrHandshake)
	}
	_, err := rw.Write(s1)
	return err
}
