package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"github.com/berthmedia/berth/internal/rtspclient"
)

// Explain says in plain words why a pull failed, for the retry log line and
// the status ("401: the camera refused user admin", "no route to host").
// rawURL is the source's URL; its user is named, never its password.
func Explain(err error, rawURL string) string {
	if err == nil {
		return "the source ended the stream"
	}
	user := ""
	if u, perr := url.Parse(rawURL); perr == nil && u.User != nil {
		user = u.User.Username()
	}
	if errors.Is(err, errMulticastRefused) {
		return "461: the camera refuses multicast (it has none, or it is off in its settings); pull over TCP (rtp_type=0)"
	}
	if errors.Is(err, rtspclient.ErrNotMulticast) {
		return "the camera's answer to a multicast SETUP is not usable: " + err.Error()
	}
	var se *rtspclient.StatusError
	if errors.As(err, &se) {
		switch se.Code {
		case base.StatusUnauthorized:
			if user == "" {
				return "401: the source wants credentials; put user:password@ in the URL"
			}
			return "401: the camera refused user " + user + " (wrong password, or the user lacks the right to play)"
		case base.StatusForbidden:
			return "403: the source forbids this stream to user " + orNobody(user)
		case base.StatusNotFound:
			return "404: the source has no stream at this path (not published yet, or a typo)"
		case base.StatusUnsupportedTransport:
			return "461: the source refuses this transport; try the other rtp_type (0 TCP, 1 UDP)"
		}
		return statusText(se.Code) + " from the source to " + string(se.Method)
	}
	var he *httpStatusError
	if errors.As(err, &he) {
		return he.Error()
	}
	if errors.Is(err, errNoTracks) {
		return "SDP has no playable track: " + err.Error()
	}
	if errors.Is(err, errStreamClosed) || errors.Is(err, errSourceBye) {
		return err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out waiting for the source"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "the host name " + dnsErr.Name + " does not resolve"
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: nothing listens at the source's address and port"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to host"
	case errors.Is(err, syscall.ENETUNREACH):
		return "no route to the source's network"
	case errors.Is(err, syscall.ECONNRESET):
		return "the source reset the connection"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the source closed the connection"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out: the source did not answer"
	}
	msg := err.Error()
	if strings.Contains(msg, "nothing received for") {
		return "no media: " + msg
	}
	return msg
}

func orNobody(user string) string {
	if user == "" {
		return "(none)"
	}
	return user
}
