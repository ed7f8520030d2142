package httpstream

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gorilla/websocket"
)

// Sink is where a player's batches go. Write returns the bytes written.
type Sink interface {
	Write(bufs [][]byte) (int, error)
}

// HTTPSink writes a batch and flushes it as one chunk of a chunked
// response; a player that accepts nothing for Timeout fails the write.
type HTTPSink struct {
	W       http.ResponseWriter
	RC      *http.ResponseController
	Timeout time.Duration
}

func (s *HTTPSink) Write(bufs [][]byte) (int, error) {
	s.RC.SetWriteDeadline(time.Now().Add(s.Timeout))
	n := 0
	for _, b := range bufs {
		m, err := s.W.Write(b)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, s.RC.Flush()
}

// WSSink sends binary messages: a whole batch as one message (a byte
// stream such as FLV, which flv.js and mpegts.js take in any split), or,
// with PerBuffer, each buffer as its own message (fMP4 segments, which a
// page hands to SourceBuffer.appendBuffer one message at a time).
type WSSink struct {
	C         *websocket.Conn
	Timeout   time.Duration
	PerBuffer bool
}

func (s *WSSink) Write(bufs [][]byte) (int, error) {
	n, err := s.write(bufs)
	return n, deadlineErr(err)
}

// deadlineErr makes a write timeout match os.ErrDeadlineExceeded, as an
// HTTPSink's does, so a player stuck behind a full socket is logged as
// dropped: gorilla/websocket replaces a net.Error that is temporary (a
// timeout) by its own type with the same text, which hides it from
// errors.Is (seen as a WS-FLV player with a dead link ending at info with
// "i/o timeout" instead of the warning).
func deadlineErr(err error) error {
	var ne net.Error
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w (%v)", os.ErrDeadlineExceeded, err)
	}
	return err
}

func (s *WSSink) write(bufs [][]byte) (int, error) {
	s.C.SetWriteDeadline(time.Now().Add(s.Timeout))
	if s.PerBuffer {
		n := 0
		for _, b := range bufs {
			if err := s.C.WriteMessage(websocket.BinaryMessage, b); err != nil {
				return n, err
			}
			n += len(b)
		}
		return n, nil
	}
	w, err := s.C.NextWriter(websocket.BinaryMessage)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, b := range bufs {
		m, err := w.Write(b)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, w.Close()
}
