package pusher

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/berthmedia/berth/internal/rtspclient"
)

// RefusedError is a target that answered but would not take the stream:
// an RTSP status other than 2xx, an RTMP onStatus error. Its text is what
// the retry log and listStreamPusherProxy show.
type RefusedError struct {
	Proto  string // "rtsp" or "rtmp"
	Step   string // ANNOUNCE, SETUP, RECORD, connect, publish
	Reason string // the server's words
}

func (e *RefusedError) Error() string {
	return e.Proto + " target refused " + e.Step + ": " + e.Reason
}

// Cause says in plain words why an attempt failed, for the retry log and
// the pusher's listed state: "connection refused", "rtmp target refused
// publish: ... already published ...". The words come first; callers log
// the error itself beside them.
func Cause(err error) string {
	var ref *RefusedError
	var st *rtspclient.StatusError
	var dns *net.DNSError
	var ne net.Error
	var op *net.OpError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ref):
		return ref.Error()
	case errors.As(err, &st):
		return "rtsp target refused " + string(st.Method) + ": " + strconv.Itoa(int(st.Code)) + " " + st.Reason
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (nothing listens at the target's address)"
	case errors.Is(err, syscall.ECONNRESET):
		return "the target reset the connection"
	case errors.Is(err, syscall.EPIPE):
		return "the target closed the connection"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to the target"
	case errors.As(err, &dns):
		return "the target's host name does not resolve (" + dns.Name + ")"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return "the target closed the connection"
	case errors.As(err, &op) && op.Op == "write" && op.Timeout():
		return "the target stopped taking data (a write waited timeout_sec)"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "the target did not answer in time"
	case errors.As(err, &ne) && ne.Timeout():
		return "the target did not answer in time"
	}
	return err.Error()
}
