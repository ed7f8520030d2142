package srt

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/muxring"
)

// payloadSize is one SRT data packet's payload in live mode: 7 TS packets
// (1316 bytes), what libsrt and ffmpeg send. Writing exactly this much per
// packet keeps every packet a whole number of TS packets, so a receiver
// that drops a late packet loses whole TS packets, never half of one.
const payloadSize = 7 * 188

// play sends the stream's shared MPEG-TS to the caller, starting at a
// keyframe chunk. The player is counted through a hub registration that
// never reads (as HTTP-TS players are): the frames flow through the
// muxer's one reader.
func (s *Server) play(ss *session) {
	log := ss.log
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The caller hanging up (or the idle timeout) ends the play: a
	// goroutine reads (players send nothing but control packets, which
	// gosrt handles) until the connection closes.
	go func() {
		defer cancel()
		buf := make([]byte, 1500)
		for {
			if _, err := ss.conn.Read(buf); err != nil {
				return
			}
		}
	}()
	reg, err := s.Hub.SubscribeWait(ctx, ss.sid.Path(), hub.KindAU, s.origin(ss), s.StreamWait)
	if err != nil {
		log.Info("srt play refused", "err", err)
		return
	}
	defer reg.Close()
	if s.TS == nil {
		log.Warn("srt play refused: this server has no MPEG-TS muxer", "fix", "a Berth built with SRT always has one; report this")
		return
	}
	cur, err := s.TS(reg.Stream())
	if err != nil {
		log.Info("srt play refused", "err", err)
		return
	}
	defer cur.Close()
	readyCtx, readyCancel := context.WithTimeout(ctx, 10*time.Second)
	_, codecs, err := cur.Ready(readyCtx)
	readyCancel()
	if err != nil {
		log.Info("srt play refused: the stream has sent no keyframe with parameter sets yet", "err", err)
		return
	}
	log.Info("srt play started", "codecs", codecs)
	start := time.Now()
	sent, err := send(ctx, cur, ss.conn, reg)
	st := statsOf(ss.conn)
	d := time.Since(start).Round(time.Millisecond)
	switch {
	case errors.Is(err, muxring.ErrSlowReader), errors.Is(err, io.EOF) && ctx.Err() == nil:
		log.Warn("srt play stopped: the player fell behind (its link is slower than the stream); dropped it (the stream and other readers go on)",
			"duration", d, "bytes_out", sent, "packets_retransmitted", st.PktSentRetrans)
	case errors.Is(err, hub.ErrEnded):
		log.Info("srt play ended: the stream ended", "duration", d, "bytes_out", sent, "packets_retransmitted", st.PktSentRetrans)
	default:
		log.Info("srt play ended", "duration", d, "bytes_out", sent, "packets_retransmitted", st.PktSentRetrans)
	}
}

// send writes every chunk from the cursor in payloadSize packets. The
// chunks' bytes are shared with every other TS reader; a packet is copied
// once into pkt because gosrt queues what it is given.
func send(ctx context.Context, cur *muxring.Cursor, w io.Writer, reg *hub.Reader) (uint64, error) {
	var sent uint64
	chunks := make([]*muxring.Chunk, 0, 64)
	pkt := make([]byte, 0, payloadSize)
	flush := func() error {
		if len(pkt) == 0 {
			return nil
		}
		n, err := w.Write(pkt)
		sent += uint64(n)
		reg.AddBytes(uint64(n))
		pkt = pkt[:0]
		return err
	}
	for {
		var err error
		chunks, err = cur.Next(ctx, chunks[:0])
		for _, c := range chunks {
			for b := c.Data; len(b) > 0; {
				n := min(len(b), payloadSize-len(pkt))
				pkt = append(pkt, b[:n]...)
				b = b[n:]
				if len(pkt) == payloadSize {
					if werr := flush(); werr != nil {
						return sent, werr
					}
				}
			}
		}
		clear(chunks)
		// Batch end: send the rest (whole TS packets) rather than hold it
		// for the next frame, which would add a frame of delay.
		if werr := flush(); werr != nil {
			return sent, werr
		}
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return sent, net.ErrClosed
			}
			return sent, err
		}
	}
}
