// What runs while a session lives: writing media, the read loop that
// demultiplexes interleaved frames, UDP readers and the keep-alive.

package rtspclient

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
)

// WritePacket sends an RTP packet of track while recording.
func (c *Client) WritePacket(track int, pkt []byte) error { return c.write(track, pkt, false) }

// WriteRTCP sends an RTCP packet of track.
func (c *Client) WriteRTCP(track int, pkt []byte) error { return c.write(track, pkt, true) }

func (c *Client) write(tr int, pkt []byte, rtcp bool) error {
	if tr < 0 || tr >= len(c.tracks) {
		return fmt.Errorf("rtsp %s: no track %d (set up %d)", c.url, tr, len(c.tracks))
	}
	if err := c.Err(); err != nil {
		return err
	}
	t := c.tracks[tr]
	if c.opts.Transport == Multicast {
		if !rtcp {
			return fmt.Errorf("rtsp %s: multicast is for playing; publish over TCP or UDP", c.url)
		}
		_, err := t.rtcp.WriteToUDPAddrPort(pkt, t.srvRTCP) // to the group (RFC 3550 section 6)
		return err
	}
	if c.opts.Transport == UDP {
		conn, to := t.rtp, t.srvRTP
		if rtcp {
			conn, to = t.rtcp, t.srvRTCP
		}
		_, err := conn.WriteToUDPAddrPort(pkt, to)
		return err
	}
	if len(pkt) > 65535 {
		return fmt.Errorf("rtsp %s: packet of %d bytes exceeds the interleaved frame limit of 65535", c.url, len(pkt))
	}
	ch := c.channelOf(tr, rtcp)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wbuf = append(c.wbuf[:0], '$', byte(ch), byte(len(pkt)>>8), byte(len(pkt)))
	c.wbuf = append(c.wbuf, pkt...)
	c.refreshWriteDeadlineLocked()
	_, err := c.conn.Write(c.wbuf)
	return err
}

func (c *Client) channelOf(tr int, rtcp bool) int {
	want := int16(tr << 1)
	if rtcp {
		want |= 1
	}
	for ch, v := range c.chanTrack {
		if v == want {
			return ch
		}
	}
	return 0
}

// refreshWriteDeadlineLocked moves the write deadline forward at most once
// a second: setting it per packet would cost a timer update each time.
func (c *Client) refreshWriteDeadlineLocked() {
	now := time.Now()
	if c.writeDL.Sub(now) < c.opts.Timeout-time.Second {
		c.writeDL = now.Add(c.opts.Timeout)
		c.conn.SetWriteDeadline(c.writeDL)
	}
}

// dispatch hands an interleaved frame to its callback.
func (c *Client) dispatch(ch uint8, payload []byte) {
	v := c.chanTrack[ch]
	if v < 0 {
		return // a channel nobody set up: ignore, as RFC 2326 10.12 allows
	}
	if v&1 == 0 {
		if c.OnPacket != nil {
			c.OnPacket(int(v>>1), payload)
		}
	} else if c.OnRTCP != nil {
		c.OnRTCP(int(v>>1), payload)
	}
}

// start launches the read loop (and UDP readers) and the housekeeping.
// It fails if the client was closed meanwhile (Close may run concurrently
// when Dial's context is cancelled).
func (c *Client) start() error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.failed.Load() {
		return c.err
	}
	c.running.Store(true)
	var wg sync.WaitGroup
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		c.readLoop()
	}()
	if c.opts.Transport != TCP {
		for i, t := range c.tracks {
			wg.Add(2)
			go func() { defer wg.Done(); c.udpLoop(i, t, t.rtp, false) }()
			go func() { defer wg.Done(); c.udpLoop(i, t, t.rtcp, true) }()
		}
	}
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.housekeeping(stop)
	}()
	// Every loop ends through fail, which closes the connection, so the
	// TCP read loop always ends; done closes only after every goroutine
	// has returned, so Wait's caller sees no callback after it.
	go func() {
		<-readDone
		close(stop)
		wg.Wait()
		close(c.done)
	}()
	return nil
}

func (c *Client) readLoop() {
	c.conn.SetReadDeadline(time.Time{})
	for {
		kind, ch, payload, res, req, err := c.dm.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("rtsp %s: the server closed the connection: %w", c.url, err)
			} else {
				err = fmt.Errorf("rtsp %s: reading: %w", c.url, err)
			}
			c.fail(err)
			return
		}
		c.rxCount.Add(1)
		switch kind {
		case msgFrame:
			c.dispatch(ch, payload)
		case msgRequest:
			c.answer(req)
		case msgResponse:
			if n, ok := cseqOf(res.Header); ok {
				c.pmu.Lock()
				pch := c.pending[n]
				c.pmu.Unlock()
				if pch != nil {
					pch <- res
				}
			}
		}
	}
}

func (c *Client) udpLoop(i int, t *track, conn *net.UDPConn, rtcp bool) {
	size := 16 << 10
	if rtcp {
		size = 2 << 10
	}
	buf := make([]byte, size)
	mcast := t.mrtp != nil
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			c.fail(fmt.Errorf("rtsp %s: reading UDP: %w", c.url, err))
			return
		}
		pkt := buf[:n]
		if mcast && (!t.fromSource(from) || rtcp && !t.senderRTCP(pkt)) {
			continue // another sender or receiver on the group
		}
		c.rxCount.Add(1)
		if mcast {
			c.mediaRx.Add(1)
		}
		if rtcp {
			if c.OnRTCP != nil {
				c.OnRTCP(i, pkt)
			}
			continue
		}
		if n >= 12 {
			t.ssrc.Store(binary.BigEndian.Uint32(pkt[8:]))
			seq := uint32(binary.BigEndian.Uint16(pkt[2:]))
			old := t.extSeq.Load()
			if t.received.Add(1) == 1 {
				t.extSeq.Store(seq)
			} else if d := int16(seq - old&0xffff); d > 0 {
				t.extSeq.Store(old + uint32(d))
			}
		}
		if c.OnPacket != nil {
			c.OnPacket(i, pkt)
		}
	}
}

// housekeeping sends keep-alives, RTCP receiver reports over UDP (so the
// server sees the session alive on its media ports too; with multicast to
// the group's RTCP port, RFC 3550 section 6.3), and ends a
// playing session that receives nothing for ReadTimeout.
func (c *Client) housekeeping(stop <-chan struct{}) {
	c.mu.Lock()
	ka := c.opts.KeepAlive
	if ka <= 0 {
		ka = c.sessionTTL / 2
		if ka <= 0 {
			ka = 30 * time.Second
		}
	}
	useGet := strings.Contains(c.public, string(base.GetParameter))
	c.mu.Unlock()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastKA, lastRR, lastRx := time.Now(), time.Time{}, time.Now()
	rx := c.rxCount.Load()
	if c.opts.Transport == Multicast {
		rx = c.mediaRx.Load()
	}
	var ourSSRC [4]byte
	rand.Read(ourSSRC[:])
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			n := c.rxCount.Load()
			if c.opts.Transport == Multicast {
				// Keep-alive answers on the connection say nothing
				// about the group: only its packets count.
				n = c.mediaRx.Load()
			}
			if n != rx {
				rx, lastRx = n, now
			} else if !c.recording && now.Sub(lastRx) >= c.opts.ReadTimeout {
				if c.opts.Transport == Multicast {
					c.fail(c.multicastSilence())
					return
				}
				hint := ""
				if c.opts.Transport == UDP {
					hint = "; no UDP packets arrive: a firewall or NAT is likely, try TCP"
				}
				c.fail(fmt.Errorf("rtsp %s: nothing received for %s%s", c.url, c.opts.ReadTimeout, hint))
				return
			}
			if now.Sub(lastKA) >= ka {
				lastKA = now
				m := base.Options
				if useGet {
					m = base.GetParameter
				}
				c.mu.Lock()
				c.refreshWriteDeadlineLocked()
				c.writeRequestLocked(m, c.url, nil, nil) // answer consumed by the read loop
				c.mu.Unlock()
			}
			if c.opts.Transport != TCP && !c.recording && now.Sub(lastRR) >= 5*time.Second {
				lastRR = now
				for _, t := range c.tracks {
					if t.received.Load() == 0 {
						continue
					}
					rr := receiverReport(ourSSRC, t.ssrc.Load(), t.extSeq.Load())
					t.rtcp.WriteToUDPAddrPort(rr[:], t.srvRTCP)
				}
			}
		}
	}
}

// receiverReport builds an RTCP RR with one report block (RFC 3550 6.4.2).
// Loss and jitter are left 0: the report keeps the session alive; the
// caller measures loss itself.
func receiverReport(our [4]byte, ssrc, extSeq uint32) [32]byte {
	var b [32]byte
	b[0] = 0x81 // V=2, RC=1
	b[1] = 201  // RR
	binary.BigEndian.PutUint16(b[2:], 7)
	copy(b[4:], our[:])
	binary.BigEndian.PutUint32(b[8:], ssrc)
	binary.BigEndian.PutUint32(b[16:], extSeq)
	return b
}

// listenPair binds an even RTP port and the odd RTCP port above it
// (RFC 3550 section 11) on ip.
func listenPair(ip net.IP) (*net.UDPConn, *net.UDPConn, error) {
	var lastErr error
	for range 64 {
		a, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
		if err != nil {
			return nil, nil, err
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		if p%2 != 0 || p == 65534 {
			a.Close()
			continue
		}
		b, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: p + 1})
		if err != nil {
			a.Close()
			lastErr = err
			continue
		}
		a.SetReadBuffer(1 << 20)
		return a, b, nil
	}
	if lastErr == nil {
		lastErr = errors.New("no even port came up in 64 tries")
	}
	return nil, nil, lastErr
}
