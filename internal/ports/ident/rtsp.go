package ident

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
)

// Reply is an answer to an RTSP request: an RTSP response, or whatever else
// the peer sent back (an HTTP error page, an SSH banner).
type Reply struct {
	Identity
	Header map[string]string // canonical first values; RTSP and HTTP replies
	// WWWAuth holds every WWW-Authenticate value (Digest and Basic offers).
	WWWAuth []string
	Body    []byte
}

// ErrNoAnswer means the peer accepted the connection and sent nothing back.
var ErrNoAnswer = errors.New("connected, but no reply came")

// RTSPRequest sends one RTSP request (OPTIONS, DESCRIBE) on conn and reads
// the reply, whatever protocol it is in. The deadline of ctx bounds the
// exchange.
func RTSPRequest(ctx context.Context, conn net.Conn, method, url string, cseq int, header map[string]string) (*Reply, error) {
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
		defer conn.SetDeadline(time.Time{})
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s RTSP/1.0\r\nCSeq: %d\r\nUser-Agent: berth-probe\r\n", method, url, cseq)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := conn.Write(b.Bytes()); err != nil {
		return nil, err
	}
	return ReadReply(bufio.NewReaderSize(conn, 4096))
}

// ReadReply reads one reply: RTSP through gortsplib's parser, HTTP through
// net/textproto, and anything else as a quoted head of the bytes.
func ReadReply(br *bufio.Reader) (*Reply, error) {
	head, err := br.Peek(5)
	if len(head) == 0 {
		if errors.Is(err, io.EOF) || isTimeout(err) {
			return nil, ErrNoAnswer
		}
		return nil, err
	}
	switch {
	case bytes.Equal(head, []byte("RTSP/")):
		var res base.Response
		if err := res.Unmarshal(br); err != nil {
			return nil, fmt.Errorf("RTSP reply does not parse: %w", err)
		}
		r := &Reply{Identity: Identity{Protocol: "RTSP", Code: int(res.StatusCode),
			Status: fmt.Sprintf("RTSP/1.0 %d %s", res.StatusCode, res.StatusMessage)}, Header: map[string]string{}}
		for k, v := range res.Header {
			if len(v) > 0 {
				r.Header[textproto.CanonicalMIMEHeaderKey(k)] = v[0]
			}
		}
		r.Server = r.Header["Server"]
		r.Instance = r.Header["X-Berth-Instance"]
		for k, v := range res.Header {
			if textproto.CanonicalMIMEHeaderKey(k) == "Www-Authenticate" {
				r.WWWAuth = append(r.WWWAuth, v...)
			}
		}
		r.Body = res.Body
		return r, nil
	case bytes.Equal(head, []byte("HTTP/")):
		tp := textproto.NewReader(br)
		line, err := tp.ReadLine()
		if err != nil {
			return nil, err
		}
		r := &Reply{Identity: Identity{Protocol: "HTTP", Status: truncate(line, 200)}, Header: map[string]string{}}
		if f := strings.Fields(line); len(f) >= 2 {
			r.Code, _ = strconv.Atoi(f[1])
		}
		h, _ := tp.ReadMIMEHeader() // a torn header still names the server
		for k, v := range h {
			r.Header[k] = v[0]
		}
		r.Server = r.Header["Server"]
		r.Instance = r.Header["X-Berth-Instance"]
		return r, nil
	}
	buf := make([]byte, 64)
	n, _ := io.ReadAtLeast(br, buf, 1)
	return &Reply{Identity: Identity{Raw: quoteHead(buf[:n])}}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// RTSPOptions dials addr and identifies the server with an OPTIONS request.
func RTSPOptions(ctx context.Context, addr string) (*Reply, error) {
	conn, err := dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return RTSPRequest(ctx, conn, "OPTIONS", "rtsp://"+addr+"/", 1, nil)
}
