package srtclient

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/datarhei/gosrt/packet"
)

// TestDialSurvivesAMalformedHandshake: an SRT peer (a pull source or a
// push target the user named) that answers the caller with a conclusion
// whose extensions leave 2 bytes over made gosrt's parser read past the
// end in its dialer's goroutine, which no recover of Berth's can reach: the
// process ended. Berth builds gosrt with the parser's bounds check
// (third_party/gosrt): the answer is dropped and Dial fails by its timeout.
func TestDialSurvivesAMalformedHandshake(t *testing.T) {
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := peer.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if n < 16+48 || buf[0] != 0x80 {
				continue
			}
			socketID := binary.BigEndian.Uint32(buf[16+24:])
			// A conclusion (type -1) to the caller's socket, with an HSRSP
			// extension and 2 bytes over.
			reply := make([]byte, 16+48)
			reply[0] = 0x80
			binary.BigEndian.PutUint32(reply[12:], socketID)
			hs := reply[16:]
			binary.BigEndian.PutUint32(hs[0:], 5)
			binary.BigEndian.PutUint16(hs[6:], 1)
			binary.BigEndian.PutUint32(hs[12:], 1500)
			binary.BigEndian.PutUint32(hs[16:], 8192)
			binary.BigEndian.PutUint32(hs[20:], 0xffffffff)
			copy(hs[32:], net.IPv4(127, 0, 0, 1).To4())
			reply = append(reply, 0, 2, 0, 3, 0, 1, 4, 0, 0, 0, 0, 0xbf, 0, 120, 0, 120, 0xab, 0xcd)
			peer.WriteToUDP(reply, from)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := Dial(ctx, Options{Addr: peer.LocalAddr().String(), StreamID: "live/s"}, time.Second)
	if err == nil {
		conn.Close()
		t.Fatal("Dial succeeded against a malformed handshake")
	}
	t.Logf("Dial: %v (and the process lives)", err)
}

// FuzzHandshakeCIF: gosrt's handshake parser, which both Berth's listener
// and its caller run on datagrams from the network, returns an error for
// any bytes instead of panicking (third_party/gosrt's bounds check; the
// listener also recovers, the caller cannot).
func FuzzHandshakeCIF(f *testing.F) {
	conclusion := func(ext ...byte) []byte {
		hs := make([]byte, 48)
		binary.BigEndian.PutUint32(hs[0:], 5)
		binary.BigEndian.PutUint16(hs[6:], 1)
		binary.BigEndian.PutUint32(hs[20:], 0xffffffff)
		return append(hs, ext...)
	}
	f.Add(conclusion(0, 2, 0, 3, 0, 1, 4, 0, 0, 0, 0, 0xbf, 0, 120, 0, 120))
	f.Add(conclusion(0, 2, 0, 3, 0, 1, 4, 0, 0, 0, 0, 0xbf, 0, 120, 0, 120, 0xab, 0xcd))
	f.Add(conclusion(0, 3, 0, 4, 0x12, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
	f.Add(conclusion(0, 5, 0, 2, 'e', 'v', 'i', 'l', '/', 'x', 0, 0))
	f.Fuzz(func(t *testing.T, cif []byte) {
		pkt := make([]byte, 16, 16+len(cif))
		pkt[0] = 0x80
		p, err := packet.NewPacketFromData(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, append(pkt, cif...))
		if err != nil {
			return
		}
		defer p.Decommission()
		var hs packet.CIFHandshake
		p.UnmarshalCIF(&hs)
	})
}
